//! `frameserver user create | passwd | list`: manage users in a data directory's database
//! (the server may be running: SQLite handles the concurrent access).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::auth::{hash_password, valid_username};
use crate::store::Store;

/// The user subcommands.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user.
    Create(UserArgs),
    /// Set a user's password (ends their sessions and revokes their access tokens).
    Passwd(UserArgs),
    /// List users.
    List(DataDir),
}

/// Where the database is.
#[derive(Args, Debug)]
pub struct DataDir {
    /// The server's data directory.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
}

/// Arguments naming a user.
#[derive(Args, Debug)]
pub struct UserArgs {
    /// The user name (letters, digits and . @ + - _).
    pub name: String,
    /// Make the user an administrator (create only).
    #[arg(long)]
    pub admin: bool,
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub dir: DataDir,
}

fn read_password(from_stdin: bool) -> Result<String, String> {
    let stdin = std::io::stdin();
    if !from_stdin && stdin.is_terminal() {
        eprint!("Password: ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let p = line.trim_end_matches(['\n', '\r']).to_owned();
    if p.len() < 8 {
        return Err("the password must have at least 8 characters".into());
    }
    Ok(p)
}

fn open(dir: &DataDir) -> Result<Store, String> {
    std::fs::create_dir_all(&dir.data_dir)
        .map_err(|e| format!("{}: {e}", dir.data_dir.display()))?;
    Store::open(&dir.data_dir.join("frameserver.sqlite3")).map_err(|e| e.to_string())
}

/// Runs a user subcommand; errors go to stderr as one line. Returns the exit code.
pub fn run(cmd: UserCommand) -> i32 {
    let r = match cmd {
        UserCommand::Create(a) => (|| {
            if !valid_username(&a.name) {
                return Err(format!(
                    "invalid user name '{}': use letters, digits and . @ + - _",
                    a.name
                ));
            }
            let store = open(&a.dir)?;
            let password = read_password(a.password_stdin)?;
            match store
                .create_user(&a.name, &hash_password(&password), a.admin)
                .map_err(|e| e.to_string())?
            {
                Some(u) => {
                    println!(
                        "created user '{}' (id {}){}",
                        u.username,
                        u.id,
                        if u.is_admin { ", administrator" } else { "" }
                    );
                    Ok(())
                }
                None => Err(format!("user '{}' already exists", a.name)),
            }
        })(),
        UserCommand::Passwd(a) => (|| {
            let store = open(&a.dir)?;
            let user = store
                .user_by_name(&a.name)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user '{}'", a.name))?;
            let password = read_password(a.password_stdin)?;
            store
                .set_password(user.id, &hash_password(&password))
                .map_err(|e| e.to_string())?;
            println!(
                "password of '{}' changed; their sessions and access tokens are revoked",
                user.username
            );
            Ok(())
        })(),
        UserCommand::List(d) => (|| {
            let store = open(&d)?;
            for u in store.users().map_err(|e| e.to_string())? {
                println!(
                    "{}\t{}\t{}",
                    u.id,
                    u.username,
                    if u.is_admin { "admin" } else { "user" }
                );
            }
            Ok(())
        })(),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
