//! The chunk cache: built items (chunks, frames, previews) held in memory, bounded in **bytes**
//! (moka with a byte weigher), with single-flight builds (concurrent requests for the same key
//! build it once), versioned keys (a changed task never serves stale bytes), removal of a task's
//! entries on delete, and Prometheus metrics.
//!
//! CVAT's cache is TTL-only and grows without bound on disk (spec §14.2); this one is a strict
//! byte budget with LRU-ish (TinyLFU) eviction.
//!
//! Every built item's bytes are counted in the process's memory budget ([`crate::budget`]) for
//! as long as they live, in the cache or in responses still being sent. An item the cache does
//! not keep (larger than the cache, or not admitted) is still held for [`ItemCache::HOLD`] after
//! its build, so the clients playing the same chunk at about the same time share one build.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::future::Cache;
use moka::notification::RemovalCause;

use crate::task::Quality;

/// What a cached item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// Task chunk `number` (task-relative frames `[n*cs, (n+1)*cs)`).
    TaskChunk,
    /// Chunk `number` of a segment (job-relative index).
    SegmentChunk(i64),
    /// Task chunk `number` limited to a job's frames (the deprecated job `number` parameter).
    JobTaskChunk(i64),
    /// Single frame `number` (task-relative).
    Frame,
    /// The task preview.
    Preview,
    /// Context images of frame `number`.
    ContextImage,
}

/// Cache key: everything that determines the bytes. `version` changes whenever the data changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ItemKey {
    pub data_id: i64,
    pub version: i64,
    pub kind: ItemKind,
    pub number: u64,
    pub quality: Quality,
}

/// A built item.
#[derive(Debug, Clone)]
pub struct Item {
    pub bytes: Bytes,
    pub mime: &'static str,
}

/// Counters exported at `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
    pub builds_in_flight: AtomicU64,
    pub build_failures: AtomicU64,
    pub prefetches: AtomicU64,
    /// Build-time histogram: counts per bucket upper bound (seconds), plus sum in microseconds.
    build_buckets: [AtomicU64; BUCKETS.len()],
    build_count: AtomicU64,
    build_sum_us: AtomicU64,
}

const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    fn observe_build(&self, seconds: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                self.build_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.build_count.fetch_add(1, Ordering::Relaxed);
        self.build_sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

/// Counts a build in `builds_in_flight` until it ends or its future is dropped (the client went
/// away and no one else waits for the item).
struct InFlight(Arc<Metrics>);

impl InFlight {
    fn new(m: &Arc<Metrics>) -> InFlight {
        m.builds_in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(m))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.builds_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Items just built, kept for [`ItemCache::HOLD`] whether or not the cache admitted them.
type Held = Mutex<HashMap<ItemKey, (Arc<Item>, Instant)>>;

/// The byte-bounded, single-flight item cache.
#[derive(Clone)]
pub struct ItemCache {
    inner: Cache<ItemKey, Arc<Item>>,
    held: Arc<Held>,
    metrics: Arc<Metrics>,
    capacity: u64,
}

impl ItemCache {
    /// How long a built item stays shared after its build even if the cache does not keep it.
    pub const HOLD: Duration = Duration::from_secs(5);

    /// A cache holding at most `max_bytes` of item payloads.
    pub fn new(max_bytes: u64) -> Self {
        let metrics = Arc::new(Metrics::default());
        let m = Arc::clone(&metrics);
        let inner = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_k: &ItemKey, v: &Arc<Item>| {
                u32::try_from(v.bytes.len() + 64).unwrap_or(u32::MAX)
            })
            .support_invalidation_closures()
            .eviction_listener(move |_k, _v, cause| {
                if cause == RemovalCause::Size {
                    m.evictions.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        ItemCache {
            inner,
            held: Arc::default(),
            metrics,
            capacity: max_bytes,
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<ItemKey, (Arc<Item>, Instant)>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A just-built item still held (see [`Self::HOLD`]).
    fn recent(&self, key: &ItemKey) -> Option<Arc<Item>> {
        // Few items are held (those built in the last seconds): expire them all as we look.
        let expired: Vec<_> = {
            let mut held = self.held();
            let keys: Vec<ItemKey> = held
                .iter()
                .filter(|(_, (_, at))| at.elapsed() >= Self::HOLD)
                .map(|(k, _)| *k)
                .collect();
            let gone = keys.iter().filter_map(|k| held.remove(k)).collect();
            if let Some((item, _)) = held.get(key) {
                return Some(Arc::clone(item));
            }
            gone
        };
        drop(expired);
        None
    }

    fn hold(&self, key: ItemKey, item: &Arc<Item>) {
        self.held().insert(key, (Arc::clone(item), Instant::now()));
    }

    /// Lets go of held items, oldest first, until about `bytes` are freed (the memory budget is
    /// short); returns the bytes let go.
    pub fn release_held(&self, bytes: u64) -> u64 {
        let mut freed = 0;
        // Dropped after the lock is released.
        let _gone: Vec<Arc<Item>> = {
            let mut held = self.held();
            let mut by_age: Vec<(ItemKey, Instant)> =
                held.iter().map(|(k, (_, at))| (*k, *at)).collect();
            by_age.sort_by_key(|(_, at)| *at);
            let mut gone = Vec::new();
            for (k, _) in by_age {
                if freed >= bytes {
                    break;
                }
                if let Some((item, _)) = held.remove(&k) {
                    freed += item.bytes.len() as u64;
                    gone.push(item);
                }
            }
            gone
        };
        freed
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Returns the cached item, or builds it once however many callers ask at the same time.
    /// A failed build is not cached; every waiter gets the same error. The item's bytes are
    /// counted in the process's memory budget while they live.
    pub async fn get_or_build<E, F, Fut>(&self, key: ItemKey, build: F) -> Result<Arc<Item>, Arc<E>>
    where
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Item, E>>,
    {
        if let Some(item) = self.recent(&key) {
            self.metrics.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(item);
        }
        let metrics = Arc::clone(&self.metrics);
        let entry = self
            .inner
            .entry(key)
            .or_try_insert_with(async move {
                let _in_flight = InFlight::new(&metrics);
                let started = Instant::now();
                let r = build().await;
                match &r {
                    Ok(_) => metrics.observe_build(started.elapsed().as_secs_f64()),
                    Err(_) => {
                        metrics.build_failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                r.map(|item| {
                    Arc::new(Item {
                        bytes: crate::budget::global().account(item.bytes),
                        mime: item.mime,
                    })
                })
            })
            .await?;
        let fresh = entry.is_fresh();
        let item = entry.into_value();
        if fresh {
            self.metrics.misses.fetch_add(1, Ordering::Relaxed);
            self.hold(key, &item);
        } else {
            self.metrics.hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(item)
    }

    /// True when the key is cached or held (does not count as a hit).
    pub fn contains(&self, key: &ItemKey) -> bool {
        self.inner.contains_key(key) || self.recent(key).is_some()
    }

    /// Drops every item of a data (task deleted or data changed).
    pub fn invalidate_data(&self, data_id: i64) {
        self.held().retain(|k, _| k.data_id != data_id);
        // Only fails when invalidation closures are not enabled, which `new` does.
        let _ = self
            .inner
            .invalidate_entries_if(move |k, _| k.data_id == data_id);
    }

    /// Bytes currently held (approximate until moka's pending maintenance runs).
    pub fn weighted_size(&self) -> u64 {
        self.inner.weighted_size()
    }

    /// Runs moka's pending maintenance (eviction, invalidation), e.g. before reading sizes.
    pub async fn sync(&self) {
        self.inner.run_pending_tasks().await;
    }

    /// Prometheus text exposition of the cache metrics.
    pub fn render_metrics(&self) -> String {
        let m = &self.metrics;
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "frameserver_cache_hits_total",
            "counter",
            "Item requests served from the cache.",
            m.hits.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "frameserver_cache_misses_total",
            "counter",
            "Item requests that built the item.",
            m.misses.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "frameserver_cache_evictions_total",
            "counter",
            "Items evicted to stay within the byte budget.",
            m.evictions.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "frameserver_cache_bytes",
            "gauge",
            "Bytes held by the cache.",
            self.inner.weighted_size().to_string(),
        );
        metric(
            "frameserver_cache_capacity_bytes",
            "gauge",
            "The cache's byte budget.",
            self.capacity.to_string(),
        );
        metric(
            "frameserver_cache_entries",
            "gauge",
            "Items held by the cache.",
            self.inner.entry_count().to_string(),
        );
        metric(
            "frameserver_chunk_builds_in_flight",
            "gauge",
            "Item builds running now.",
            m.builds_in_flight.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "frameserver_chunk_build_failures_total",
            "counter",
            "Item builds that failed (not cached).",
            m.build_failures.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "frameserver_chunk_prefetches_total",
            "counter",
            "Next-chunk builds started in the background.",
            m.prefetches.load(Ordering::Relaxed).to_string(),
        );
        let _ = writeln!(s, "# HELP frameserver_chunk_build_seconds Time to build an item.\n# TYPE frameserver_chunk_build_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "frameserver_chunk_build_seconds_bucket{{le=\"{b}\"}} {}",
                m.build_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = m.build_count.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "frameserver_chunk_build_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            s,
            "frameserver_chunk_build_seconds_sum {}",
            m.build_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "frameserver_chunk_build_seconds_count {count}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn key(n: u64) -> ItemKey {
        ItemKey {
            data_id: 1,
            version: 1,
            kind: ItemKind::TaskChunk,
            number: n,
            quality: Quality::Compressed,
        }
    }

    fn item(len: usize) -> Item {
        Item {
            bytes: Bytes::from(vec![7u8; len]),
            mime: "application/zip",
        }
    }

    #[tokio::test]
    async fn concurrent_requests_build_once() {
        let cache = ItemCache::new(1 << 20);
        let builds = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..16 {
            let c = cache.clone();
            let b = Arc::clone(&builds);
            handles.push(tokio::spawn(async move {
                c.get_or_build::<(), _, _>(key(1), || async move {
                    b.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Ok(item(100))
                })
                .await
                .unwrap()
                .bytes
                .len()
            }));
        }
        for h in handles {
            assert_eq!(h.await.unwrap(), 100);
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert_eq!(cache.metrics().misses.load(Ordering::Relaxed), 1);
        assert_eq!(cache.metrics().hits.load(Ordering::Relaxed), 15);
    }

    #[tokio::test]
    async fn a_dropped_build_leaves_the_in_flight_gauge() {
        let cache = ItemCache::new(1 << 20);
        let c = cache.clone();
        let started = Arc::new(tokio::sync::Notify::new());
        let s2 = Arc::clone(&started);
        let build = tokio::spawn(async move {
            c.get_or_build::<(), _, _>(key(1), || async move {
                s2.notify_one();
                std::future::pending::<()>().await;
                Ok(item(1))
            })
            .await
        });
        started.notified().await;
        assert_eq!(cache.metrics().builds_in_flight.load(Ordering::Relaxed), 1);
        // The client goes away mid-build.
        build.abort();
        let _ = build.await;
        assert_eq!(cache.metrics().builds_in_flight.load(Ordering::Relaxed), 0);
        assert!(!cache.contains(&key(1)));
    }

    #[tokio::test]
    async fn an_item_too_big_for_the_cache_is_shared_while_held() {
        let cache = ItemCache::new(1000);
        let builds = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let b = Arc::clone(&builds);
            let got = cache
                .get_or_build::<(), _, _>(key(1), || async move {
                    b.fetch_add(1, Ordering::SeqCst);
                    Ok(item(5000))
                })
                .await
                .unwrap();
            assert_eq!(got.bytes.len(), 5000);
            cache.sync().await;
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1, "held, not rebuilt");
        assert!(cache.weighted_size() <= 1000);
        assert_eq!(cache.release_held(1), 5000);
        assert!(!cache.contains(&key(1)));
    }

    #[tokio::test]
    async fn failures_are_not_cached_and_bytes_are_bounded() {
        let cache = ItemCache::new(10_000);
        let r = cache
            .get_or_build::<&str, _, _>(key(1), || async { Err("boom") })
            .await;
        assert_eq!(*r.unwrap_err(), "boom");
        assert!(!cache.contains(&key(1)));
        for n in 0..50 {
            cache
                .get_or_build::<(), _, _>(key(n), || async { Ok(item(1000)) })
                .await
                .unwrap();
        }
        cache.sync().await;
        assert!(cache.weighted_size() <= 10_000, "{}", cache.weighted_size());
        assert!(cache.metrics().evictions.load(Ordering::Relaxed) > 0);
        cache.invalidate_data(1);
        cache.sync().await;
        assert_eq!(cache.weighted_size(), 0);
        assert!(!cache.contains(&key(49)), "held items go too");
        assert!(cache
            .render_metrics()
            .contains("frameserver_cache_evictions_total"));
    }
}
