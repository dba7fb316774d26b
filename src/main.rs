//! `frameserver`: the media service's command line: `serve` runs the CVAT-compatible chunk
//! server; `manifest` offers the manifest tools (the same as the standalone `manifest` binary).

use clap::{Parser, Subcommand};
use frameserver::cli::manifest::{self, ManifestCommand};
use frameserver::server::{self, ServeConfig};

#[derive(Parser)]
#[command(
    name = "frameserver",
    version,
    about = "A fast, CVAT-compatible media service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (CVAT's REST API for tasks, data, chunks and frames).
    Serve(ServeConfig),
    /// Manage users (create, passwd, list).
    User {
        #[command(subcommand)]
        command: frameserver::cli::user::UserCommand,
    },
    /// Create, validate and inspect CVAT manifests.
    Manifest {
        #[command(subcommand)]
        command: ManifestCommand,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Manifest { command } => manifest::run(command),
        Command::Serve(config) => serve(config),
        Command::User { command } => frameserver::cli::user::run(command),
    };
    std::process::exit(code);
}

fn serve(config: ServeConfig) -> i32 {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FRAMESERVER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(server::run(config)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
