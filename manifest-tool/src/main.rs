//! `manifest`: write and check CVAT-compatible `manifest.jsonl` files, fast.
//! A thin wrapper over `frameserver::cli::manifest`.

use clap::Parser;
use frameserver::cli::manifest::{self, ManifestCommand};

#[derive(Parser)]
#[command(
    name = "manifest",
    version,
    about = "Create, validate and inspect CVAT-compatible manifest.jsonl files",
    long_about = "Create, validate and inspect CVAT-compatible dataset manifests.\n\n\
        `manifest create video.mp4` indexes a video's seekable key frames (demux-only pass, key frames \
        decoded alone); `manifest create DIR` or `manifest create 'DIR/**/*.jpg'` lists images with \
        pixel checksums. The output is byte for byte what CVAT v2.73's own tool writes."
)]
struct Cli {
    #[command(subcommand)]
    command: ManifestCommand,
}

fn main() {
    std::process::exit(manifest::run(Cli::parse().command));
}
