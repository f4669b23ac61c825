//! Micro-benchmarks of the pieces every proxied request goes through
//! (issue 5, item 4): the second-factor cookie check, cookie lookup, app and
//! bypass matching, header rewriting, code generation and checking, and
//! recording a request in the metrics (`[metrics]` on).
//!
//!     cargo bench --bench hot_path
//!     cargo bench --bench hot_path -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use otpgate::http::headers::{self, ClientView, Peer};
use otpgate::keys::Keys;
use otpgate::otp::{self, OtpStore};
use otpgate::state::State;
use otpgate::store::Clock;
use otpgate::{config, gate::factor, http::cookies};

const SECRET: [u8; 64] = [7u8; 64];

fn now_secs() -> u64 {
    otpgate::store::SystemClock.now_ms() / 1000
}

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:8000"

[sms]
provider = "sandbox"

[[apps]]
name = "CRM"
host = "crm.example.com"
upstream = "http://127.0.0.1:8081"
session_cookie = "sessionid"
userinfo_path = "/api/me"
user_pointer = "/username"
phone_pointer = "/phone"
bypass = ["/static/", "/login", "/favicon.ico"]

[[apps]]
name = "Wiki"
host = "wiki.example.com"
upstream = "http://127.0.0.1:8082"
session_cookie = "wiki_session"
userinfo_path = "/api/user"
user_pointer = "/user/name"
phone_pointer = "/user/phone"
bypass = ["/assets/", "/login"]

[[apps]]
name = "Everything else"
host = "*"
upstream = "http://127.0.0.1:8083"
session_cookie = "SESSION"
userinfo_path = "/whoami"
user_pointer = "/name"
phone_pointer = "/phone"
bypass = ["/public/"]
"#;

/// A browser's request headers as they reach the gateway, with the app's
/// session cookie and the gateway's own cookie among analytics cookies.
fn browser_headers(otpgate_cookie: &str) -> HeaderMap {
    let cookie = format!(
        "_ga=GA1.1.1234567890.1700000000; _ga_ABCDEF1234=GS1.1.1700000000.3.1.1700000123.0.0.0; \
         csrftoken=Zq3x9VbN2mK8pL4rT6yW1cE5uI7oA0sD; sessionid=q8w7e6r5t4y3u2i1o0p9a8s7d6f5g4h3; \
         otpgate={otpgate_cookie}; theme=dark"
    );
    let pairs: [(&str, &str); 13] = [
        ("host", "crm.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
        ),
        ("accept-language", "nl-NL,nl;q=0.9,en-US;q=0.8,en;q=0.7"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("referer", "https://crm.example.com/reports"),
        ("connection", "keep-alive"),
        ("upgrade-insecure-requests", "1"),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-user", "?1"),
        ("cookie", &cookie),
    ];
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn factor_cookie(c: &mut Criterion) {
    let keys = Keys::derive(&SECRET);
    let session = keys
        .session
        .of(&[&0u64.to_be_bytes(), b"q8w7e6r5t4y3u2i1o0p9a8s7d6f5g4h3"]);
    let lifetime = Duration::from_secs(12 * 3600);
    let cookie = factor::issue(&keys, 0, "alice", &session, (now_secs(), lifetime), true);
    let value = cookie.value().to_string();
    let now = now_secs();
    assert_eq!(
        factor::check(&keys, &value, 0, &session, now)
            .map(|p| p.user)
            .as_deref(),
        Some("alice")
    );
    let mut tampered = value.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });

    let mut g = c.benchmark_group("factor");
    g.bench_function("issue", |b| {
        b.iter(|| {
            factor::issue(
                black_box(&keys),
                0,
                black_box("alice"),
                black_box(&session),
                (now, lifetime),
                true,
            )
        })
    });
    g.bench_function("check (valid: decrypt + compare)", |b| {
        b.iter(|| {
            factor::check(
                black_box(&keys),
                black_box(&value),
                0,
                black_box(&session),
                black_box(now),
            )
        })
    });
    g.bench_function("check (tampered)", |b| {
        b.iter(|| {
            factor::check(
                black_box(&keys),
                black_box(&tampered),
                0,
                black_box(&session),
                black_box(now),
            )
        })
    });
    g.bench_function("session hash (HMAC of the session cookie)", |b| {
        b.iter(|| {
            keys.session.of(&[
                &0u64.to_be_bytes(),
                black_box(b"q8w7e6r5t4y3u2i1o0p9a8s7d6f5g4h3"),
            ])
        })
    });
    g.finish();
}

fn cookie_lookup(c: &mut Criterion) {
    let keys = Keys::derive(&SECRET);
    let value = factor::issue(
        &keys,
        0,
        "alice",
        &[1u8; 32],
        (now_secs(), Duration::from_secs(3600)),
        true,
    )
    .value()
    .to_string();
    let h = browser_headers(&value);
    assert_eq!(
        cookies::get(&h, "sessionid"),
        Some("q8w7e6r5t4y3u2i1o0p9a8s7d6f5g4h3")
    );
    assert_eq!(
        cookies::get(&h, otpgate::names::FACTOR_COOKIE),
        Some(value.as_str())
    );

    let mut g = c.benchmark_group("cookies");
    g.bench_function("get sessionid", |b| {
        b.iter(|| cookies::get(black_box(&h), black_box("sessionid")))
    });
    g.bench_function("get otpgate", |b| {
        b.iter(|| cookies::get(black_box(&h), black_box(otpgate::names::FACTOR_COOKIE)))
    });
    g.bench_function("get missing", |b| {
        b.iter(|| cookies::get(black_box(&h), black_box("nope")))
    });
    // read runs on every request with cookies (gate::credentials): it finds
    // the session and factor cookies and builds the one field the app sees.
    g.bench_function("read (session, factor, forwarded field)", |b| {
        let session = otpgate::config::SessionCookie::Exact("sessionid".into());
        b.iter(|| cookies::read(black_box(&h), black_box(&session)).forward)
    });
    g.finish();
}

fn app_matching(c: &mut Criterion) {
    let settings =
        config::parse(CONFIG, "bench.toml", Path::new(".")).expect("the bench config is valid");
    // State::new builds the HTTP clients; give them a runtime to belong to.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let state = State::new(settings, &SECRET).expect("state builds");
    assert_eq!(state.app_for("wiki.example.com").unwrap().index, 1);
    assert_eq!(state.app_for("other.example.org").unwrap().index, 2);
    let crm = state.app_for("crm.example.com").unwrap();
    assert!(crm.bypasses("/static/app.css"));
    assert!(!crm.bypasses("/static/../admin"));
    assert!(!crm.bypasses("/reports/2024/q1"));

    let mut g = c.benchmark_group("apps");
    g.bench_function("app_for first exact", |b| {
        b.iter(|| state.app_for(black_box("crm.example.com")).map(|a| a.index))
    });
    g.bench_function("app_for second exact", |b| {
        b.iter(|| {
            state
                .app_for(black_box("wiki.example.com"))
                .map(|a| a.index)
        })
    });
    g.bench_function("app_for catch-all", |b| {
        b.iter(|| {
            state
                .app_for(black_box("other.example.org"))
                .map(|a| a.index)
        })
    });
    g.bench_function("bypasses: no prefix matches", |b| {
        b.iter(|| crm.bypasses(black_box("/reports/2024/q1?sort=desc")))
    });
    g.bench_function("bypasses: prefix matches", |b| {
        b.iter(|| crm.bypasses(black_box("/static/js/app.3f9a1c.js")))
    });
    g.bench_function("bypasses: dot-segment refused", |b| {
        b.iter(|| crm.bypasses(black_box("/static/../admin/users")))
    });
    // What gate() does before matching: lower-case the Host and drop the port.
    let h = browser_headers("x");
    let peer = Peer::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)));
    g.bench_function("ClientView::new + hostname + app_for", |b| {
        b.iter(|| {
            let view = ClientView::new(
                black_box(&h),
                None,
                &peer,
                false,
                &state.settings.server.trusted_proxies,
            );
            state.app_for(&view.hostname()).map(|a| a.index)
        })
    });
    g.finish();
    drop(state);
}

fn header_rewriting(c: &mut Criterion) {
    let h = browser_headers(
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    );
    let peer = Peer::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)));
    let view = ClientView::new(&h, None, &peer, true, &[]);

    let mut g = c.benchmark_group("headers");
    g.bench_function("clone header map (for scale)", |b| {
        b.iter(|| black_box(&h).clone())
    });
    g.bench_function("remove_otpgate_headers", |b| {
        b.iter_batched_ref(
            || h.clone(),
            headers::remove_otpgate_headers,
            BatchSize::SmallInput,
        )
    });
    g.bench_function("remove_hop_by_hop", |b| {
        b.iter_batched_ref(
            || h.clone(),
            headers::remove_hop_by_hop,
            BatchSize::SmallInput,
        )
    });
    g.bench_function("set_forwarded", |b| {
        b.iter_batched_ref(
            || h.clone(),
            |h| headers::set_forwarded(h, &view),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("remove_hop_by_hop + set_forwarded", |b| {
        b.iter_batched_ref(
            || h.clone(),
            |h| {
                headers::remove_hop_by_hop(h);
                headers::set_forwarded(h, &view);
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("ClientView::new (untrusted peer)", |b| {
        b.iter(|| ClientView::new(black_box(&h), None, &peer, false, &[]))
    });
    g.finish();
}

/// The memory store's futures are ready when first polled: this measures
/// the store (and the box of its future), not an executor.
fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
    futures_util::FutureExt::now_or_never(f).expect("a memory store never waits")
}

fn codes(c: &mut Criterion) {
    let keys = Keys::derive(&SECRET);
    // No lock-out, so every iteration is a counted wrong attempt on a live code.
    let store = OtpStore::new(&keys, Duration::from_secs(600), u32::MAX, 6);
    let mut ids = Vec::new();
    for i in 0..1000u64 {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&i.to_le_bytes());
        k[8] = 0xA5;
        ready(store.issue_if_none(&k)).expect("a fresh key gets a code");
        ids.push(k);
    }
    let one = ids[0];
    let code = otp::generate(6);
    ready(store.install(&one, &code));
    let wrong = if code.as_str() == "000000" {
        "000001"
    } else {
        "000000"
    };

    let mut g = c.benchmark_group("otp");
    g.bench_function("generate(6)", |b| b.iter(|| otp::generate(black_box(6))));
    g.bench_function("verify wrong (one key, 1k codes)", |b| {
        b.iter(|| ready(store.verify(black_box(&one), black_box(wrong))))
    });
    let mut i = 0usize;
    g.bench_function("verify wrong (rotating keys, 1k codes)", |b| {
        b.iter(|| {
            i = (i + 7919) % ids.len();
            ready(store.verify(black_box(&ids[i]), black_box(wrong)))
        })
    });
    g.bench_function("verify malformed", |b| {
        b.iter(|| ready(store.verify(black_box(&one), black_box("12a456"))))
    });
    let mut missing = [0u8; 32];
    missing[0] = 0xFF;
    missing[8] = 0x5A;
    g.bench_function("verify no code", |b| {
        b.iter(|| ready(store.verify(black_box(&missing), black_box(wrong))))
    });
    g.bench_function("generate + install (HMAC + insert)", |b| {
        b.iter(|| {
            let c = otp::generate(6);
            ready(store.install(black_box(&one), &c));
            c
        })
    });
    g.finish();
}

fn metrics(c: &mut Criterion) {
    use otpgate::events::metrics::{Metrics, Outcome};
    let apps: Vec<String> = ["CRM", "Wiki", "Everything else"].map(String::from).into();
    let m = Metrics::new(&apps, 2);
    let mut g = c.benchmark_group("metrics");
    g.bench_function(
        "record a request (clock read, elapsed, two atomic adds)",
        |b| {
            b.iter(|| {
                let t = std::time::Instant::now();
                m.requests
                    .record(black_box(0), Some(black_box(1)), Outcome::Pass, t.elapsed())
            })
        },
    );
    g.bench_function("scrape (encode every family, 3 apps)", |b| {
        b.iter(|| m.encode(false).map(|t| t.len()))
    });
    g.finish();
}

criterion_group!(
    benches,
    factor_cookie,
    cookie_lookup,
    app_matching,
    header_rewriting,
    codes,
    metrics
);
criterion_main!(benches);
