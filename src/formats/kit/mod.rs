//! The formats kit: small modules every dataset format uses.
pub mod mask;
