//! Brute-force protection for password logins, per account and per address but never per
//! address for every account:
//!
//! - **(name, address) pair**: after [`PAIR_LIMIT`] failed attempts the pair is refused for
//!   [`PAIR_LOCK`] (with `Retry-After`), then allowed one attempt per lock period. Attempts are
//!   counted when they start, so parallel requests cannot try more than the limit.
//! - **name** (from any address): past [`NAME_FREE`] failures, failing attempts are answered
//!   after a growing delay (up to [`MAX_EXTRA_DELAY`]). Never refused: a correct password from an
//!   address that has not failed is answered at once.
//! - **address** (for any name): past [`ADDR_FREE`] failures, failing attempts from it are
//!   slowed the same way; a correct password of an account it has not failed on is never refused.
//!   IPv6 addresses count by their /64 prefix (one host usually holds a whole /64).
//!
//! Counters are forgotten [`WINDOW`] after their last failure, and each map holds at most
//! [`MAX_ENTRIES`] (expired ones go first, then the oldest unlocked ones), so spraying names or
//! addresses cannot grow memory without bound. Argon2 verifications (~19 MiB each) run at most a few at once.
//!
//! The clock is a parameter (`now`) so the rules are tested without sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Failed attempts of one name from one address before that pair is locked.
pub(crate) const PAIR_LIMIT: u32 = 5;
/// How long a locked (name, address) pair is refused.
pub(crate) const PAIR_LOCK: Duration = Duration::from_secs(300);
/// Failures of one name (all addresses together) answered without an extra delay.
pub(crate) const NAME_FREE: u32 = 5;
/// Failures from one address (all names together) answered without an extra delay.
pub(crate) const ADDR_FREE: u32 = 20;
/// A counter is forgotten this long after its last failure.
pub(crate) const WINDOW: Duration = Duration::from_secs(900);
/// Every failed attempt is answered after at least this long.
pub(crate) const BASE_DELAY: Duration = Duration::from_millis(250);
/// The first extra delay past a free allowance; it doubles with each further failure.
const STEP: Duration = Duration::from_millis(500);
/// The largest extra delay.
pub(crate) const MAX_EXTRA_DELAY: Duration = Duration::from_secs(5);
/// Entries per counter map.
pub(crate) const MAX_ENTRIES: usize = 32_768;
/// Longest user name kept in a key (longer ones cannot exist: see `valid_username`).
const MAX_NAME: usize = 150;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last) >= WINDOW
            && self.locked_until.is_none_or(|t| t <= now)
    }
}

/// A bounded map of failure counters.
struct Counters<K> {
    map: HashMap<K, Entry>,
    cap: usize,
}

impl<K: Hash + Eq + Clone> Counters<K> {
    fn new(cap: usize) -> Self {
        Counters {
            map: HashMap::new(),
            cap,
        }
    }

    /// The live entry of `key`, if any (an expired one is dropped).
    fn get(&mut self, key: &K, now: Instant) -> Option<&mut Entry> {
        if self.map.get(key).is_some_and(|e| e.expired(now)) {
            self.map.remove(key);
        }
        self.map.get_mut(key)
    }

    /// The live entry of `key`, created (with no failures) if needed, making room first.
    fn entry(&mut self, key: &K, now: Instant) -> &mut Entry {
        if self.get(key, now).is_none() {
            if self.map.len() >= self.cap {
                self.make_room(now);
            }
            self.map.insert(
                key.clone(),
                Entry {
                    failures: 0,
                    last: now,
                    locked_until: None,
                },
            );
        }
        self.map.get_mut(key).expect("just inserted")
    }

    /// Drops expired entries; if that frees nothing, a tenth of the rest: unlocked ones first,
    /// oldest (by last failure) first.
    fn make_room(&mut self, now: Instant) {
        self.map.retain(|_, e| !e.expired(now));
        if self.map.len() < self.cap {
            return;
        }
        let mut order: Vec<(bool, Instant, K)> = self
            .map
            .iter()
            .map(|(k, e)| (e.locked_until.is_some_and(|t| t > now), e.last, k.clone()))
            .collect();
        order.sort_unstable_by_key(|(locked, last, _)| (*locked, *last));
        for (_, _, k) in order.into_iter().take((self.cap / 10).max(1)) {
            self.map.remove(&k);
        }
    }

    /// Counts a failure; returns the new count.
    fn fail(&mut self, key: &K, now: Instant) -> u32 {
        let e = self.entry(key, now);
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        e.failures
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The key of a client address: IPv4 as is, IPv6 by its /64 prefix.
fn addr_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

fn name_key(name: &str) -> String {
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// The extra delay after `failures` where `free` were allowed without one.
fn extra_delay(failures: u32, free: u32) -> Duration {
    match failures.checked_sub(free + 1) {
        None => Duration::ZERO,
        Some(over) => STEP
            .saturating_mul(1u32 << over.min(16))
            .min(MAX_EXTRA_DELAY),
    }
}

/// Failed-login counters (see the module docs for the rules).
pub(crate) struct LoginGuard {
    pairs: Mutex<Counters<(String, IpAddr)>>,
    names: Mutex<Counters<String>>,
    addrs: Mutex<Counters<IpAddr>>,
    /// Password verifications running at once (argon2 allocates ~19 MiB each).
    verifying: Semaphore,
}

impl Default for LoginGuard {
    fn default() -> Self {
        LoginGuard::new(MAX_ENTRIES, num_cpus::get().max(2))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LoginGuard {
    fn new(cap: usize, verifications: usize) -> Self {
        LoginGuard {
            pairs: Mutex::new(Counters::new(cap)),
            names: Mutex::new(Counters::new(cap)),
            addrs: Mutex::new(Counters::new(cap)),
            verifying: Semaphore::new(verifications),
        }
    }

    /// Starts an attempt of `name` from `ip`: `Err(retry_after)` if the pair is locked. The
    /// attempt counts against the pair from now on; it ends with [`Attempt::failed`] or
    /// [`Attempt::succeeded`] (dropped unfinished, it counts as failed).
    pub(crate) fn begin(
        &self,
        name: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Attempt<'_>, Duration> {
        let key = (name_key(name), addr_key(ip));
        let mut pairs = lock(&self.pairs);
        let e = pairs.entry(&key, now);
        if e.failures >= PAIR_LIMIT {
            match e.locked_until {
                // The lock has run out: one more attempt (which locks again if it fails).
                Some(t) if t <= now => e.failures = PAIR_LIMIT - 1,
                Some(t) => return Err((t - now).max(Duration::from_secs(1))),
                // The last allowed attempts are still being verified.
                None => return Err(Duration::from_secs(1)),
            }
        }
        e.failures += 1;
        e.last = now;
        e.locked_until = None;
        Ok(Attempt {
            guard: self,
            key: Some(key),
        })
    }

    /// Records a failed attempt; returns how long to wait before answering it.
    fn record_failure(&self, (name, ip): (String, IpAddr), now: Instant) -> Duration {
        let by_name = lock(&self.names).fail(&name, now);
        let by_addr = lock(&self.addrs).fail(&ip, now);
        {
            let mut pairs = lock(&self.pairs);
            let e = pairs.entry(&(name, ip), now);
            e.last = now;
            if e.failures >= PAIR_LIMIT {
                e.locked_until = Some(now + PAIR_LOCK);
            }
        }
        BASE_DELAY + extra_delay(by_name, NAME_FREE).max(extra_delay(by_addr, ADDR_FREE))
    }

    /// Waits for a turn to verify a password.
    pub(crate) async fn verify_permit(&self) -> SemaphorePermit<'_> {
        self.verifying
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// Entries held (pairs, names, addresses).
    #[cfg(test)]
    fn sizes(&self) -> (usize, usize, usize) {
        (
            lock(&self.pairs).len(),
            lock(&self.names).len(),
            lock(&self.addrs).len(),
        )
    }
}

/// A login attempt in progress (see [`LoginGuard::begin`]).
pub(crate) struct Attempt<'a> {
    guard: &'a LoginGuard,
    /// `None` once finished.
    key: Option<(String, IpAddr)>,
}

impl Attempt<'_> {
    /// The password was wrong (or the user unknown): returns how long to wait before answering.
    pub(crate) fn failed(mut self, now: Instant) -> Duration {
        let key = self.key.take().expect("unfinished");
        self.guard.record_failure(key, now)
    }

    /// The password was right: the pair's failures are forgotten. (The name's and the address's
    /// are not: an attacker holding one account cannot reset them.)
    pub(crate) fn succeeded(mut self) {
        let key = self.key.take().expect("unfinished");
        lock(&self.guard.pairs).map.remove(&key);
    }
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt").field("key", &self.key).finish()
    }
}

impl Drop for Attempt<'_> {
    /// An attempt abandoned half-way (the client went away) counts as failed.
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.guard.record_failure(key, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A failed attempt (begin + failed); `Err` if refused.
    fn fail(g: &LoginGuard, name: &str, from: &str, now: Instant) -> Result<Duration, Duration> {
        Ok(g.begin(name, ip(from), now)?.failed(now))
    }

    fn succeed(g: &LoginGuard, name: &str, from: &str, now: Instant) -> Result<(), Duration> {
        g.begin(name, ip(from), now)?.succeeded();
        Ok(())
    }

    #[test]
    fn a_pair_is_locked_after_its_limit_then_allowed_one_try_per_lock() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        for _ in 0..PAIR_LIMIT {
            assert!(fail(&g, "bob", "10.0.0.1", t0).is_ok());
        }
        // Locked, correct password or not (the attempt is refused before verification).
        let wait = g.begin("bob", ip("10.0.0.1"), t0).unwrap_err();
        assert_eq!(wait, PAIR_LOCK);
        let later = t0 + Duration::from_secs(100);
        assert_eq!(
            g.begin("bob", ip("10.0.0.1"), later).unwrap_err(),
            PAIR_LOCK - Duration::from_secs(100)
        );
        // Other pairs are untouched: bob from elsewhere, alice from the same address.
        succeed(&g, "bob", "10.0.0.2", t0).unwrap();
        succeed(&g, "alice", "10.0.0.1", t0).unwrap();
        // After the lock: one try; failing it locks again at once.
        let after = t0 + PAIR_LOCK;
        assert!(fail(&g, "bob", "10.0.0.1", after).is_ok());
        assert!(g.begin("bob", ip("10.0.0.1"), after).is_err());
        // After the next lock a success clears the pair.
        let after2 = after + PAIR_LOCK;
        succeed(&g, "bob", "10.0.0.1", after2).unwrap();
        for _ in 0..PAIR_LIMIT {
            assert!(fail(&g, "bob", "10.0.0.1", after2).is_ok());
        }
    }

    #[test]
    fn parallel_attempts_count_when_they_start() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        let running: Vec<Attempt> = (0..PAIR_LIMIT)
            .map(|_| g.begin("bob", ip("10.0.0.1"), t0).unwrap())
            .collect();
        // Five still verifying: a sixth is refused until they end.
        assert_eq!(
            g.begin("bob", ip("10.0.0.1"), t0).unwrap_err(),
            Duration::from_secs(1)
        );
        // Abandoned attempts count as failures: the pair is then locked for the full period.
        drop(running);
        assert!(g.begin("bob", ip("10.0.0.1"), Instant::now()).unwrap_err() > PAIR_LOCK / 2);
    }

    #[test]
    fn failures_are_forgotten_after_the_window() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        for _ in 0..PAIR_LIMIT - 1 {
            fail(&g, "bob", "10.0.0.1", t0).unwrap();
        }
        let later = t0 + WINDOW;
        for _ in 0..PAIR_LIMIT {
            assert!(fail(&g, "bob", "10.0.0.1", later).is_ok());
        }
        // A lock outlives the window if it is longer; here the window is longer than the lock.
        assert!(g.begin("bob", ip("10.0.0.1"), later).is_err());
        succeed(&g, "bob", "10.0.0.1", later + WINDOW).unwrap();
    }

    #[test]
    fn a_name_under_attack_from_many_addresses_slows_failures_only() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        let mut delays = Vec::new();
        for i in 0..12 {
            delays.push(fail(&g, "admin", &format!("10.1.0.{i}"), t0).unwrap());
        }
        assert!(delays[..NAME_FREE as usize]
            .iter()
            .all(|d| *d == BASE_DELAY));
        assert_eq!(delays[NAME_FREE as usize], BASE_DELAY + STEP);
        assert_eq!(delays[NAME_FREE as usize + 1], BASE_DELAY + STEP * 2);
        assert_eq!(delays[11], BASE_DELAY + MAX_EXTRA_DELAY);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        // A new address is let in (the right password is then answered without delay).
        succeed(&g, "admin", "10.2.0.1", t0).unwrap();
        // The name's counter is not reset by that success.
        assert_eq!(
            fail(&g, "admin", "10.3.0.1", t0).unwrap(),
            BASE_DELAY + MAX_EXTRA_DELAY
        );
    }

    #[test]
    fn an_address_spraying_names_is_slowed_but_never_locks_other_accounts() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        let mut last = Duration::ZERO;
        for i in 0..25 {
            last = fail(&g, &format!("user{i}"), "192.0.2.7", t0).unwrap();
        }
        assert_eq!(last, BASE_DELAY + MAX_EXTRA_DELAY.min(STEP * 16));
        // An account this address has not failed on is still let in.
        succeed(&g, "alice", "192.0.2.7", t0).unwrap();
        // Another address is not slowed by it.
        assert_eq!(fail(&g, "carol", "192.0.2.8", t0).unwrap(), BASE_DELAY);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        for i in 0..PAIR_LIMIT {
            fail(&g, "bob", &format!("2001:db8:1:2::{i:x}"), t0).unwrap();
        }
        assert!(g.begin("bob", ip("2001:db8:1:2:ffff::1"), t0).is_err());
        succeed(&g, "bob", "2001:db8:1:3::1", t0).unwrap();
        // An IPv4-mapped address is the IPv4 address.
        for _ in 0..PAIR_LIMIT {
            fail(&g, "eve", "192.0.2.9", t0).unwrap();
        }
        assert!(g.begin("eve", ip("::ffff:192.0.2.9"), t0).is_err());
    }

    #[test]
    fn maps_stay_bounded_when_names_and_addresses_are_sprayed() {
        let cap = 1000;
        let g = LoginGuard::new(cap, 1);
        let t0 = Instant::now();
        // A locked pair from long ago...
        for _ in 0..PAIR_LIMIT {
            fail(&g, "bob", "10.9.9.9", t0).unwrap();
        }
        for i in 0..10 * cap as u32 {
            let now = t0 + Duration::from_millis(i as u64);
            let from = std::net::Ipv4Addr::from(0x0a00_0000u32 + i).to_string();
            fail(&g, &format!("n{i}-{}", "x".repeat(200)), &from, now).unwrap();
        }
        let (p, n, a) = g.sizes();
        assert!(p <= cap && n <= cap && a <= cap, "{p} {n} {a}");
        // Expired entries go first: after the window, a spray evicts nothing live.
        let late = t0 + WINDOW + Duration::from_secs(60);
        for _ in 0..PAIR_LIMIT {
            fail(&g, "zed", "10.8.8.8", late).unwrap();
        }
        for i in 0..cap as u32 {
            let from = std::net::Ipv4Addr::from(0x0b00_0000u32 + i).to_string();
            fail(&g, &format!("m{i}"), &from, late).unwrap();
        }
        assert!(g.begin("zed", ip("10.8.8.8"), late).is_err());
        assert!(g.sizes().0 <= cap);
    }

    #[test]
    fn long_names_are_keyed_by_their_first_150_bytes() {
        let long = "é".repeat(200);
        assert!(name_key(&long).len() <= MAX_NAME);
        assert!(long.starts_with(&name_key(&long)));
        assert_eq!(name_key("bob"), "bob");
    }
}
