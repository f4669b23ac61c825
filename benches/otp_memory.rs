//! Memory and scale of the OTP state (issue 5, item 3): fills the code store
//! with 1,000,000 pending codes and the send limiter with one reservation
//! per distinct number, reports bytes per pending code (rate counters
//! included), and compares verify throughput at 1,000 and 1,000,000 codes.
//!
//!     cargo bench --bench otp_memory
//!
//! Environment: OTP_MEMORY_CODES (default 1000000), OTP_MEMORY_VERIFIES
//! (default 200000).
//!
//! RSS is read from /proc/self/status (Linux). The stores keep their moka
//! caches private, so pending maintenance work (`run_pending_tasks`) cannot
//! be flushed from here: the figures are what the process holds right after
//! the inserts, which is also what a gateway under a burst would hold.

use std::hint::black_box;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use otpgate::config::LimitSettings;
use otpgate::keys::Keys;
use otpgate::otp::limits;
use otpgate::otp::{OtpStore, Verdict};
use otpgate::store::system_clock;

const TARGET_BYTES_PER_CODE: f64 = 256.0;
/// Rounds of verify measurements per size.
const ROUNDS: usize = 3;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A field of /proc/self/status in bytes ("VmRSS", "VmHWM").
fn status_bytes(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn rss() -> u64 {
    status_bytes("VmRSS")
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// A distinct 32-byte key per index, spread like the keyed hashes the
/// gateway really uses (SplitMix64 of the index and a salt).
fn key(i: u64, salt: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
    for chunk in k.chunks_mut(8) {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    k
}

/// The memory stores answer at once: their futures are ready when first
/// polled, so the loops below measure the store, not an executor.
fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
    f.now_or_never().expect("a memory store never waits")
}

/// Deterministic pseudo-random indices below `n` (xorshift), drawn before
/// timing so the loop measures only verify.
fn indices(count: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut s = seed | 1;
    (0..count)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % n as u64) as usize
        })
        .collect()
}

fn store(keys: &Keys) -> OtpStore {
    // No lock-out (u32::MAX attempts) so that every measured guess is a
    // counted wrong attempt on a live code at both sizes; a 10-minute TTL
    // (the most the config allows) so nothing expires during the run.
    OtpStore::new(keys, Duration::from_secs(600), u32::MAX, 6)
}

fn fill(store: &OtpStore, n: usize) {
    for i in 0..n as u64 {
        assert!(
            ready(store.issue_if_none(&key(i, 0xC0DE))).is_some(),
            "key {i} already had a code"
        );
    }
}

/// Wrong guesses on random existing keys; verifies per second.
fn verify_rate(store: &OtpStore, n: usize, verifies: usize, seed: u64) -> f64 {
    let idx = indices(verifies, n, 0x5EED ^ n as u64 ^ (seed << 32));
    let keys: Vec<[u8; 32]> = idx.iter().map(|&i| key(i as u64, 0xC0DE)).collect();
    // Warm-up: a tenth of the run, not timed.
    for k in keys.iter().take(verifies / 10) {
        black_box(ready(store.verify(k, "000000")));
    }
    let mut wrong = 0usize;
    let t = Instant::now();
    for k in &keys {
        if matches!(
            ready(store.verify(black_box(k), black_box("000000"))),
            Verdict::Wrong { .. }
        ) {
            wrong += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    // A guess of 000000 is right one time in a million; anything far below
    // `verifies` means the keys were not live codes.
    assert!(
        wrong + 10 >= verifies,
        "only {wrong} of {verifies} verifies met a live code"
    );
    verifies as f64 / secs
}

/// Set in the child process that measures moka's own cost per entry.
const FLOOR_ENV: &str = "OTP_MEMORY_MOKA_FLOOR";

/// Bytes per entry of the smallest moka cache that could hold the state: a
/// 16-byte key, a 16-byte value, the same capacity bound and time-to-live as
/// the code store. Run in a fresh process so that memory freed by the main
/// run cannot be reused and hide the cost.
fn moka_floor_child(n: usize) {
    let before = rss();
    let cache: moka::sync::Cache<u128, [u8; 16]> = moka::sync::Cache::builder()
        .max_capacity(2_000_000)
        .time_to_live(Duration::from_secs(600))
        .build();
    for i in 0..n as u128 {
        cache.insert(
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
            [1; 16],
        );
    }
    cache.run_pending_tasks();
    println!("{:.1}", rss().saturating_sub(before) as f64 / n as f64);
}

/// Runs [`moka_floor_child`] in a child process; `None` if that fails.
fn moka_floor(n: usize) -> Option<f64> {
    let out = std::process::Command::new(std::env::current_exe().ok()?)
        .env(FLOOR_ENV, "1")
        .env("OTP_MEMORY_CODES", n.to_string())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn main() {
    let n = env_usize("OTP_MEMORY_CODES", 1_000_000);
    if std::env::var_os(FLOOR_ENV).is_some() {
        return moka_floor_child(n);
    }
    let verifies = env_usize("OTP_MEMORY_VERIFIES", 200_000);
    let small = 1_000usize;
    let keys = Keys::derive(&[7u8; 64]);

    println!("otp_memory: {n} pending codes, {verifies} verifies per size");
    println!("RSS at start: {:.1} MiB", mib(rss()));

    // ---- memory: codes, then one send-limit reservation per distinct number.
    let before = rss();
    let t = Instant::now();
    let codes = store(&keys);
    fill(&codes, n);
    let fill_secs = t.elapsed().as_secs_f64();
    let after_codes = rss();

    let limiter = limits::in_memory(
        &LimitSettings {
            cooldown: Duration::from_secs(60),
            per_hour: 5,
            per_day: 20,
            ..LimitSettings::default()
        },
        system_clock(),
    );
    let t = Instant::now();
    for i in 0..n as u64 {
        ready(limiter.reserve(&key(i, 0xFAB), true)).expect("a fresh number may send");
    }
    let reserve_secs = t.elapsed().as_secs_f64();
    let after_limits = rss();

    let per_code = after_codes.saturating_sub(before) as f64 / n as f64;
    let per_number = after_limits.saturating_sub(after_codes) as f64 / n as f64;
    let total = after_limits.saturating_sub(before) as f64 / n as f64;
    println!();
    println!(
        "filled {n} codes in {fill_secs:.2} s ({:.0}/s), {n} reservations in {reserve_secs:.2} s ({:.0}/s)",
        n as f64 / fill_secs,
        n as f64 / reserve_secs
    );
    println!(
        "RSS before {:.1} MiB, after codes {:.1} MiB, after rate counters {:.1} MiB (VmHWM {:.1} MiB)",
        mib(before),
        mib(after_codes),
        mib(after_limits),
        mib(status_bytes("VmHWM"))
    );
    println!("bytes per pending code (OtpStore):               {per_code:8.1}");
    println!("bytes per number's rate counters (SendLimiter):  {per_number:8.1}");
    println!(
        "bytes per pending code incl. rate counters:      {total:8.1}   (target <= {TARGET_BYTES_PER_CODE}: {})",
        if total <= TARGET_BYTES_PER_CODE {
            "met"
        } else {
            "NOT met"
        }
    );

    match moka_floor(n) {
        Some(floor) => println!(
            "moka's own floor: {floor:.1} bytes per entry (16-byte key and value, same capacity and TTL);\n  \
             a pending code takes two entries (the code by account, the counters by number): >= {:.0}",
            2.0 * floor
        ),
        None => println!("moka's own floor: could not be measured (child process failed)"),
    }

    // ---- verify throughput at both sizes (single thread), alternating
    // sizes for ROUNDS rounds and keeping each size's best, since the
    // machine may be shared.
    drop(limiter);
    let small_store = store(&keys);
    fill(&small_store, small);
    let (mut big_rates, mut small_rates) = (Vec::new(), Vec::new());
    for seed in 0..ROUNDS as u64 {
        big_rates.push(verify_rate(&codes, n, verifies, seed));
        small_rates.push(verify_rate(&small_store, small, verifies, seed));
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (big_rate, small_rate) = (best(&big_rates), best(&small_rates));
    let show = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!();
    println!(
        "verify (wrong guess, random existing key, 1 thread), best of {ROUNDS} alternating rounds:"
    );
    println!(
        "  at {small:>9} codes: {small_rate:10.0} verifies/s  ({:.0} ns each; rounds: {})",
        1e9 / small_rate,
        show(&small_rates)
    );
    println!(
        "  at {n:>9} codes: {big_rate:10.0} verifies/s  ({:.0} ns each; rounds: {})",
        1e9 / big_rate,
        show(&big_rates)
    );
    println!(
        "  ratio large/small: {:.2}   (target >= 1.0, i.e. no slower at {n}: {})",
        big_rate / small_rate,
        if big_rate >= small_rate {
            "met"
        } else {
            "NOT met"
        }
    );
}
