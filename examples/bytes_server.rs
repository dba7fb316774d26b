//! `bytes_server FILE`: the floor for cache hits (issue #3). A minimal axum server (same tokio,
//! hyper and axum versions as `frameserver serve`, multi-threaded runtime) answering every GET
//! with FILE's bytes held in memory as `Bytes` (no copy per request), with the same
//! `Content-Type`, `Accept-Ranges` and a fixed `X-Checksum`: what any server has to pay to push
//! a cached chunk through loopback TCP, without routing, lookups or cache bookkeeping.
//!
//! Prints `bytes_server listening on http://127.0.0.1:PORT` on stdout, like `frameserver serve`.

use anyhow::{Context, Result};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;

fn main() -> Result<()> {
    let path = std::env::args_os()
        .nth(1)
        .context("usage: bytes_server FILE")?;
    let body = Bytes::from(std::fs::read(&path).with_context(|| format!("{path:?}"))?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = axum::Router::new().fallback(move || {
            let body = body.clone();
            async move {
                let mut r = Response::new(axum::body::Body::from(body));
                let h = r.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/zip"),
                );
                h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                h.insert("X-Checksum", HeaderValue::from_static("0"));
                r
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!(
            "bytes_server listening on http://{}",
            listener.local_addr()?
        );
        axum::serve(listener, app).await?;
        Ok(())
    })
}
