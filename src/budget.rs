//! The process memory budget (`serve --memory-limit`): a byte semaphore shared by everything that
//! holds large buffers for a while — open video decoders (parked or in use), builds (decoded
//! frames, encoder state, encoded output), still-image decodes, and built items (in the cache or
//! still being sent to clients).
//!
//! A [`Reservation`] is RAII: its bytes count until it is dropped. Waiting is first come, first
//! served (a large request is not starved by small ones) and works from async handlers
//! ([`Budget::reserve`]) and from blocking threads ([`Budget::reserve_blocking`]). Memory that
//! exists already (a decoder just opened, an item just built) is counted with [`Budget::force`],
//! which never waits and may take the total past the limit for a moment: later requests then wait
//! until it is back under. When a request cannot be granted at once, the budget first asks its
//! reclaimer (the decoder pool: idle decoders) to free memory.
//!
//! A request larger than the budget's `max_request` ([`Budget::new`]) — the limit less what may
//! be held elsewhere for good (the item cache, when full) — could never be granted: it fails at
//! once with a [`BudgetError`] instead of waiting forever.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

/// A request the budget can never grant.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} needs {} MiB of memory, more than the {} MiB the server may use for it (--memory-limit)", mib(*.wanted), mib(*.limit))]
pub struct BudgetError {
    /// What asked (e.g. "the chunk", "photo.jpg").
    pub what: String,
    pub wanted: u64,
    pub limit: u64,
}

fn mib(b: u64) -> u64 {
    b.div_ceil(1 << 20)
}

/// A byte budget; cloning shares it.
#[derive(Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

type Reclaimer = Box<dyn Fn(u64) + Send + Sync>;

struct Inner {
    limit: u64,
    max_request: u64,
    state: Mutex<State>,
    changed: tokio::sync::Notify,
    reclaimer: OnceLock<Reclaimer>,
}

#[derive(Default)]
struct State {
    reserved: u64,
    peak: u64,
    /// Tickets of the waiting requests, oldest first.
    queue: VecDeque<u64>,
    next_ticket: u64,
}

impl State {
    fn add(&mut self, bytes: u64) {
        self.reserved = self.reserved.saturating_add(bytes);
        self.peak = self.peak.max(self.reserved);
    }
}

impl Budget {
    /// A budget of `limit` bytes in which no single request may exceed `max_request`.
    pub fn new(limit: u64, max_request: u64) -> Budget {
        Budget {
            inner: Arc::new(Inner {
                limit,
                max_request: max_request.min(limit),
                state: Mutex::new(State::default()),
                changed: tokio::sync::Notify::new(),
                reclaimer: OnceLock::new(),
            }),
        }
    }

    /// A budget that never makes anyone wait (tools, tests); it still counts.
    pub fn unlimited() -> Budget {
        Budget::new(u64::MAX, u64::MAX)
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.state().reserved
    }

    /// The most bytes reserved at once since start.
    pub fn peak(&self) -> u64 {
        self.state().peak
    }

    /// Bytes that could be reserved now without waiting (0 while requests wait).
    pub fn available(&self) -> u64 {
        let s = self.state();
        if s.queue.is_empty() {
            self.inner.limit.saturating_sub(s.reserved)
        } else {
            0
        }
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.state().queue.len()
    }

    /// Sets the function asked to free about `n` bytes of idle memory when a request would have
    /// to wait (once; later calls are ignored).
    pub fn set_reclaimer(&self, f: impl Fn(u64) + Send + Sync + 'static) {
        let _ = self.inner.reclaimer.set(Box::new(f));
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn grant(&self, bytes: u64) -> Reservation {
        Reservation {
            inner: Some(Arc::clone(&self.inner)),
            bytes,
        }
    }

    fn too_large(&self, what: &str, bytes: u64) -> Result<(), BudgetError> {
        if bytes > self.inner.max_request {
            return Err(BudgetError {
                what: what.to_owned(),
                wanted: bytes,
                limit: self.inner.max_request,
            });
        }
        Ok(())
    }

    /// Reserves `bytes` if that can be done without waiting (nobody is waiting before).
    pub fn try_reserve(&self, bytes: u64) -> Option<Reservation> {
        let mut s = self.state();
        if s.queue.is_empty() && s.reserved.saturating_add(bytes) <= self.inner.limit {
            s.add(bytes);
            drop(s);
            return Some(self.grant(bytes));
        }
        None
    }

    /// Counts `bytes` that are allocated already (or must be, to go on), without waiting.
    pub fn force(&self, bytes: u64) -> Reservation {
        self.state().add(bytes);
        self.grant(bytes)
    }

    fn reclaim(&self, bytes: u64) {
        let short = {
            let s = self.state();
            s.reserved
                .saturating_add(bytes)
                .saturating_sub(self.inner.limit)
        };
        if short > 0 {
            if let Some(f) = self.inner.reclaimer.get() {
                f(short);
            }
        }
    }

    /// Reserves `bytes` for `what`, waiting (in arrival order) until they fit. Fails at once if
    /// they never can. Cancel-safe: a dropped wait leaves the queue.
    pub async fn reserve(&self, what: &str, bytes: u64) -> Result<Reservation, BudgetError> {
        self.too_large(what, bytes)?;
        if let Some(r) = self.try_reserve(bytes) {
            return Ok(r);
        }
        self.reclaim(bytes);
        let ticket = {
            let mut s = self.state();
            let t = s.next_ticket;
            s.next_ticket += 1;
            s.queue.push_back(t);
            t
        };
        let mut waiting = Waiting {
            budget: self,
            ticket: Some(ticket),
        };
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            // Registered before the check: a release after it wakes this wait.
            changed.as_mut().enable();
            let head = {
                let mut s = self.state();
                let head = s.queue.front() == Some(&ticket);
                if head && s.reserved.saturating_add(bytes) <= self.inner.limit {
                    s.queue.pop_front();
                    s.add(bytes);
                    waiting.ticket = None;
                    drop(s);
                    // The next in line may fit too.
                    self.inner.changed.notify_waiters();
                    return Ok(self.grant(bytes));
                }
                head
            };
            if head {
                // First in line but short: idle memory may have appeared since the last try.
                self.reclaim(bytes);
            }
            changed.await;
        }
    }

    /// [`reserve`](Self::reserve) for blocking threads (never call it on an async worker).
    pub fn reserve_blocking(&self, what: &str, bytes: u64) -> Result<Reservation, BudgetError> {
        futures::executor::block_on(self.reserve(what, bytes))
    }

    fn release(&self, bytes: u64) {
        let waiters = {
            let mut s = self.state();
            s.reserved = s.reserved.saturating_sub(bytes);
            !s.queue.is_empty()
        };
        if waiters {
            self.inner.changed.notify_waiters();
        }
    }

    /// `bytes` counted against this budget for as long as the buffer (or any slice of it) lives:
    /// built items, wherever they are held (the cache, responses being sent).
    pub fn account(&self, bytes: Bytes) -> Bytes {
        let reservation = self.force(bytes.len() as u64);
        Bytes::from_owner(Accounted { bytes, reservation })
    }

    /// Prometheus text of the budget gauges.
    pub fn render_metrics(&self) -> String {
        let s = self.state();
        let limit = if self.inner.limit == u64::MAX {
            "+Inf".to_owned()
        } else {
            self.inner.limit.to_string()
        };
        format!(
            "# HELP frameserver_memory_budget_bytes Memory decoders, builds and items may use (--memory-limit less the process's base).\n# TYPE frameserver_memory_budget_bytes gauge\nframeserver_memory_budget_bytes {limit}\n\
             # HELP frameserver_memory_reserved_bytes Memory reserved now by decoders, builds and items.\n# TYPE frameserver_memory_reserved_bytes gauge\nframeserver_memory_reserved_bytes {}\n\
             # HELP frameserver_memory_reserved_peak_bytes The most memory reserved at once since start.\n# TYPE frameserver_memory_reserved_peak_bytes gauge\nframeserver_memory_reserved_peak_bytes {}\n\
             # HELP frameserver_memory_waiting Builds waiting for memory now.\n# TYPE frameserver_memory_waiting gauge\nframeserver_memory_waiting {}\n",
            s.reserved,
            s.peak,
            s.queue.len()
        )
    }
}

/// A wait in the queue; leaving it (granted or cancelled) lets the next one go.
struct Waiting<'a> {
    budget: &'a Budget,
    ticket: Option<u64>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.budget.state().queue.retain(|&q| q != t);
            self.budget.inner.changed.notify_waiters();
        }
    }
}

/// Bytes of a budget, held until dropped.
#[must_use = "the bytes are released when the reservation is dropped"]
pub struct Reservation {
    inner: Option<Arc<Inner>>,
    bytes: u64,
}

impl Reservation {
    /// A reservation of nothing.
    pub fn none() -> Reservation {
        Reservation {
            inner: None,
            bytes: 0,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            if self.bytes > 0 {
                Budget { inner }.release(self.bytes);
            }
        }
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reservation({} bytes)", self.bytes)
    }
}

struct Accounted {
    bytes: Bytes,
    #[allow(dead_code)] // held for its Drop
    reservation: Reservation,
}

impl AsRef<[u8]> for Accounted {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Makes glibc's malloc give large buffers back to the system when they are freed: a fixed mmap
/// threshold (1 MiB) instead of the dynamic one, which rises to the largest buffer freed so far
/// and then keeps frame-sized buffers in the heap after their free. Without it, RSS stays at its
/// high-water mark after a burst of builds (measured: 610 MiB peak where the budget held 500,
/// 413 MiB with it), and the budget could not bound the process. No-op elsewhere.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
        const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
        // SAFETY: mallopt only sets allocator parameters; it is safe to call at any time.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 1 << 20);
            mallopt(M_TRIM_THRESHOLD, 8 << 20);
        }
    }
}

static GLOBAL: OnceLock<Budget> = OnceLock::new();

/// The process's budget: the one [`set_global`] installed (the server does at start), else an
/// unlimited one.
pub fn global() -> &'static Budget {
    GLOBAL.get_or_init(Budget::unlimited)
}

/// Installs the process's budget; false if one was in use already.
pub fn set_global(budget: Budget) -> bool {
    GLOBAL.set(budget).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reservations_count_until_dropped() {
        let b = Budget::new(100, 80);
        let r1 = b.try_reserve(60).unwrap();
        assert!(b.try_reserve(50).is_none());
        let r2 = b.try_reserve(40).unwrap();
        assert_eq!(b.reserved(), 100);
        drop(r1);
        assert_eq!((b.reserved(), r2.bytes()), (40, 40));
        drop(r2);
        assert_eq!((b.reserved(), b.peak()), (0, 100));
        // Never-fitting requests fail at once, with the numbers.
        let e = futures::executor::block_on(b.reserve("the chunk", 90 << 20)).unwrap_err();
        assert_eq!(e.limit, 80);
        assert!(e.to_string().starts_with("the chunk needs 90 MiB"), "{e}");
    }

    #[test]
    fn forced_bytes_make_later_requests_wait() {
        let b = Budget::new(100, 100);
        let f = b.force(150);
        assert_eq!(b.reserved(), 150);
        assert!(b.try_reserve(1).is_none());
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.reserve_blocking("x", 70).map(|r| r.bytes()));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(b.waiting(), 1);
        drop(f);
        assert_eq!(t.join().unwrap().unwrap(), 70);
        assert_eq!(b.reserved(), 0);
    }

    #[test]
    fn waiters_are_served_in_order_and_a_cancelled_wait_leaves_the_queue() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let b = Budget::new(100, 100);
            let hold = b.try_reserve(100).unwrap();
            // A big request first, then a small one: the small one does not overtake.
            let big = tokio::spawn({
                let b = b.clone();
                async move { b.reserve("big", 90).await.map(|r| r.bytes()) }
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            let small = tokio::spawn({
                let b = b.clone();
                async move { b.reserve("small", 10).await.map(|r| r.bytes()) }
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(b.waiting(), 2);
            // A cancelled waiter (client gone) leaves the queue.
            let gone = tokio::time::timeout(Duration::from_millis(20), b.reserve("gone", 5)).await;
            assert!(gone.is_err());
            assert_eq!(b.waiting(), 2);
            assert!(
                b.try_reserve(0).is_none(),
                "no overtaking while others wait"
            );
            drop(hold);
            assert_eq!(big.await.unwrap().unwrap(), 90);
            assert_eq!(small.await.unwrap().unwrap(), 10);
            assert_eq!((b.reserved(), b.waiting()), (0, 0));
        });
    }

    #[test]
    fn the_reclaimer_is_asked_before_waiting() {
        let b = Budget::new(100, 100);
        let idle = Arc::new(Mutex::new(Some(b.force(80))));
        let idle2 = Arc::clone(&idle);
        b.set_reclaimer(move |_| {
            idle2.lock().unwrap().take();
        });
        let r = b.reserve_blocking("build", 50).unwrap();
        assert!(idle.lock().unwrap().is_none());
        assert_eq!(b.reserved(), r.bytes());
    }

    #[test]
    fn accounted_bytes_count_while_any_slice_lives() {
        let b = Budget::new(1 << 20, 1 << 20);
        let bytes = b.account(Bytes::from(vec![1u8; 1000]));
        assert_eq!(b.reserved(), 1000);
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(b.reserved(), 1000);
        assert_eq!(&slice[..], &[1u8; 10]);
        drop(slice);
        assert_eq!(b.reserved(), 0);
    }
}
