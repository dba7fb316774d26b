//! Command-line front ends. The binaries are thin: they parse arguments with these types and
//! call [`manifest::run`], which prints errors as one line on stderr and returns the exit code.

pub mod manifest;
pub mod user;
