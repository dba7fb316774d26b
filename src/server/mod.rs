//! `frameserver serve`: the HTTP server (axum on hyper, tokio). CVAT-shaped routes for tasks,
//! data uploads, background requests, chunks, frames, meta and previews, plus `/metrics`.

mod absent;
mod access;
mod annotations;
mod api;
mod auth;
mod create;
mod data;
mod datasets;
mod error;
mod events;
mod forwarded;
mod info;
mod input;
mod jobs;
mod labels;
mod listen;
mod listing;
mod lockout;
mod openapi;
mod requests;
mod review;
mod sweep;
mod tasks;
mod tus;
mod ui;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::cache::ItemCache;
use crate::frames::{DecoderPool, SeekTable};
use crate::store::{DataRow, Store};
use crate::task::ImageFrame;

pub use error::ApiError;

/// Server settings (`frameserver serve` flags).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Directory for the database, uploads and task media.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Read-only directory that `server_files` paths are relative to.
    #[arg(long)]
    pub share_dir: Option<PathBuf>,
    /// Chunk cache budget in bytes.
    #[arg(long, default_value_t = 1 << 30)]
    pub cache_size: u64,
    /// Chunk builders running at once (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Largest accepted request body (uploads), in bytes.
    #[arg(long, default_value_t = 16 << 30)]
    pub max_upload_size: u64,
    /// Largest total size of files extracted from one uploaded archive, in bytes.
    #[arg(long, default_value_t = 64 << 30)]
    pub max_extracted_size: u64,
    /// Largest image (width x height) any decoder accepts; larger ones are refused before their
    /// pixels are allocated (a decompression-bomb guard, like Pillow's `MAX_IMAGE_PIXELS`).
    #[arg(long, default_value_t = crate::media::image::DEFAULT_MAX_PIXELS)]
    pub max_image_pixels: u64,
    /// Memory the process may use for decoders, build buffers, in-flight responses and the cache
    /// together, in bytes (default: `--cache-size` + 512 MiB). Builds wait rather than exceed it.
    #[arg(long)]
    pub memory_limit: Option<u64>,
    /// Largest annotation PUT/PATCH body, in bytes (JSON, read as it streams in).
    #[arg(long, default_value_t = 512 << 20)]
    pub max_annotation_body: u64,
    /// Largest single string in an imported annotation file (an XML text or attribute value, a
    /// JSON string), in bytes.
    #[arg(long, default_value_t = crate::formats::DEFAULT_MAX_IMPORT_VALUE)]
    pub max_import_value: u64,
    /// External base URL of the server (e.g. `https://cvat.example.com`), used in the URLs the
    /// server returns (`result_url`, TUS `Location`, `url` fields). Default: taken from the
    /// request (`Host`, or the forwarded headers from a trusted proxy).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` / `X-Forwarded-Host`
    /// headers are believed (comma-separated addresses or CIDR ranges). Default: none.
    #[arg(long, value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Most client connections open at once; past it new connections get a 503 and are closed.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Seconds a client may take to send a request's headers (from its first byte, or from
    /// connecting) before its connection is closed. Request and response bodies are not timed.
    #[arg(long, default_value_t = 30)]
    pub header_timeout: u64,
    /// Seconds an idle keep-alive connection is kept open; also how long a client may stop
    /// reading a response before its connection is closed.
    #[arg(long, default_value_t = 75)]
    pub idle_timeout: u64,
    /// Seconds an upload (an upload session, a TUS file, an uploaded annotation file) may go
    /// untouched before it is taken for abandoned and removed.
    #[arg(long, default_value_t = 3600)]
    pub upload_idle_timeout: u64,
    /// Directory of a CVAT web UI build (its `dist`) to serve from the same origin as `/api`:
    /// annotators open the server's address in a browser. Default: no UI.
    #[arg(long)]
    pub ui_dir: Option<PathBuf>,
}

impl ServeConfig {
    /// A config for tests and embedding: everything under `data_dir`, an ephemeral port.
    pub fn for_dir(data_dir: PathBuf) -> Self {
        ServeConfig {
            data_dir,
            bind: "127.0.0.1:0".parse().expect("valid address"),
            share_dir: None,
            cache_size: 1 << 30,
            workers: None,
            max_upload_size: 16 << 30,
            max_extracted_size: 64 << 30,
            max_image_pixels: crate::media::image::DEFAULT_MAX_PIXELS,
            memory_limit: None,
            max_annotation_body: 512 << 20,
            max_import_value: crate::formats::DEFAULT_MAX_IMPORT_VALUE,
            public_url: None,
            trusted_proxies: Vec::new(),
            max_connections: 4096,
            header_timeout: 30,
            idle_timeout: 75,
            upload_idle_timeout: 3600,
            ui_dir: None,
        }
    }

    /// The process memory bound: `--memory-limit`, or the cache size plus 512 MiB.
    pub fn memory_limit(&self) -> u64 {
        self.memory_limit
            .unwrap_or(self.cache_size.saturating_add(512 << 20))
    }

    fn workers(&self) -> usize {
        self.workers.unwrap_or_else(num_cpus::get).max(1)
    }
}

/// A task's data loaded for serving: spec, images and seek table.
pub(crate) struct Loaded {
    pub data: DataRow,
    pub images: Vec<ImageFrame>,
    pub seek: SeekTable,
    /// When the sources were last found unchanged (checked on cache hits too).
    pub sources: crate::frames::SourceWatch,
}

/// Files received in an upload session (between `Upload-Start` and `Upload-Finish`).
#[derive(Default)]
pub(crate) struct UploadSession {
    pub dir: PathBuf,
    /// Sanitised names in arrival order.
    pub files: Vec<String>,
}

/// Which TUS annotation upload: (task, the job whose endpoint took it, or `None` for the
/// task's; the file's name).
pub(crate) type AnnotationUpload = (i64, Option<i64>, String);

/// Shared server state.
pub(crate) struct AppState {
    pub config: ServeConfig,
    pub store: Store,
    pub cache: ItemCache,
    pub pool: DecoderPool,
    pub permits: Arc<Semaphore>,
    pub loaded: Mutex<HashMap<i64, Arc<Loaded>>>,
    pub uploads: Mutex<HashMap<i64, UploadSession>>,
    /// Tasks whose data is being created (a second request is refused).
    pub creating: Mutex<std::collections::HashSet<i64>>,
    /// TUS uploads in progress.
    pub tus: tus::TusUploads,
    /// Annotation files uploaded with TUS, waiting for `Upload-Finish`: (task, the job whose
    /// endpoint took it or none for the task's, name) → path.
    pub annotation_files: Mutex<HashMap<AnnotationUpload, PathBuf>>,
    /// Failed-login counters.
    pub login_guard: lockout::LoginGuard,
    /// Trusted proxies and the public URL (parsed `ServeConfig`).
    pub net: forwarded::Network,
}

impl AppState {
    fn media_dir(&self) -> PathBuf {
        self.config.data_dir.join("media")
    }

    fn uploads_dir(&self) -> PathBuf {
        self.config.data_dir.join("uploads")
    }
}

/// Runs the server until SIGINT/SIGTERM. Prints `frameserver listening on http://ADDR` on stdout
/// once the socket is bound.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let net =
        forwarded::Network::from_config(&config.trusted_proxies, config.public_url.as_deref())?;
    check_writable(&config.data_dir)?;
    if let Some(dir) = &config.ui_dir {
        ui::check_dir(dir)?;
    }
    let store = Store::open(&config.data_dir.join("frameserver.sqlite3"))?;
    if store.is_read_only() {
        anyhow::bail!(
            "the data directory {} is not writable: its database files are read-only",
            config.data_dir.display(),
        );
    }
    let workers = config.workers();
    let state = Arc::new(AppState {
        cache: ItemCache::new(config.cache_size),
        pool: DecoderPool::new(workers * 2 + 2),
        permits: Arc::new(Semaphore::new(workers)),
        store,
        loaded: Mutex::new(HashMap::new()),
        uploads: Mutex::new(HashMap::new()),
        creating: Mutex::new(Default::default()),
        tus: Default::default(),
        annotation_files: Mutex::new(HashMap::new()),
        login_guard: Default::default(),
        net,
        config: config.clone(),
    });
    data::install_limits(&state)?;
    auth::ensure_admin(&state)?;
    check_writable(&state.media_dir())?;
    create::fail_interrupted(&state);
    sweep::at_start(&state)?;
    sweep::spawn(&state);
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    println!("frameserver listening on http://{addr}");
    tracing::info!(%addr, data_dir = %config.data_dir.display(), cache_bytes = config.cache_size, workers, "listening");
    listen::check_fd_limit(config.max_connections);
    let limits = listen::Limits {
        max_connections: config.max_connections,
        header_timeout: std::time::Duration::from_secs(config.header_timeout.max(1)),
        idle_timeout: std::time::Duration::from_secs(config.idle_timeout.max(1)),
    };
    listen::serve(listener, api::service(state), limits, shutdown_signal()).await?;
    tracing::info!("shut down");
    Ok(())
}

/// Refuses to start on a data directory (or a directory in it) the server cannot write: it would
/// start, then answer every login and upload with a 500. Creates it if needed, then creates and
/// removes a probe file.
fn check_writable(dir: &std::path::Path) -> anyhow::Result<()> {
    let not_writable = |e: std::io::Error| {
        anyhow::anyhow!("the data directory {} is not writable: {e}", dir.display())
    };
    std::fs::create_dir_all(dir).map_err(not_writable)?;
    let probe = dir.join(format!(".write-check-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(not_writable)?;
    std::fs::remove_file(&probe).map_err(not_writable)?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
