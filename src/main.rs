//! `frameserver`: the media service's command line. For now it offers the manifest tools
//! (`frameserver manifest create|validate|info`, the same as the standalone `manifest` binary).

use clap::{Parser, Subcommand};
use frameserver::cli::manifest::{self, ManifestCommand};

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
    };
    std::process::exit(code);
}
