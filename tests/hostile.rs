//! Hostile input, answered cleanly: oversized and malformed request heads,
//! request smuggling, slow clients, garbage cookies, absurd codes, `rd`
//! tricks, foreign hosts, spoofed `X-Otpgate-*` headers and absolute-form
//! targets. Every test ends by checking that the gateway still serves a
//! normal request.
//!
//! Most requests here are written byte by byte on a raw TCP connection,
//! because a client library refuses to send them.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The host every request to the catch-all app uses.
const GATE: &str = "gate.test";

/// A configuration whose only app answers for `crm.example` alone.
fn exact_host(text: String) -> String {
    assert!(text.contains(r#"host = "*""#));
    text.replacen(r#"host = "*""#, r#"host = "crm.example""#, 1)
}

/// A configuration with `header_read_timeout = "1s"`.
fn one_second_header_timeout(text: String) -> String {
    with_server_keys(&text, r#"header_read_timeout = "1s""#)
}

/// Position of the end of the head (after the blank line), if it is in.
fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The `Content-Length` of a response head, if it has one.
fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head).lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

/// Reads one response: until its head and `Content-Length` body are in,
/// the server closes, or `limit` passes. Read errors (a reset after the
/// server gave up on the request) end the read like a close does.
async fn read_response(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = head_end(&raw)
            && let Some(len) = content_length(&raw[..end])
            && raw.len() >= end + len
        {
            return raw;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return raw,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status code of a raw response, or `None` if there was no response.
fn status_of(raw: &[u8]) -> Option<u16> {
    let line = raw.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// The body of a raw response (everything after the head).
fn body_of(raw: &[u8]) -> String {
    head_end(raw).map_or_else(String::new, |end| {
        String::from_utf8_lossy(&raw[end..]).into_owned()
    })
}

/// Writes `bytes` on a fresh connection and reads the answer. The write
/// runs beside the read, so a server that answers (and closes) before it
/// has read everything does not make the test lose the answer.
async fn send_raw(addr: SocketAddr, bytes: Vec<u8>) -> Vec<u8> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&bytes).await;
        // Keep the write half open until the test has read the answer.
        writer
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = head_end(&raw)
            && let Some(len) = content_length(&raw[..end])
            && raw.len() >= end + len
        {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, reader.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
        }
    }
    drop(writing.await);
    raw
}

/// A plain GET on a fresh connection, written by hand.
fn get(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Waits until the server closes `stream`; returns how long that took and
/// what it sent first, or `None` if it was still open after `limit`.
async fn wait_closed(stream: &mut TcpStream, limit: Duration) -> Option<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((start.elapsed(), got)),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The gateway keeps serving: a normal anonymous request reaches the app.
async fn still_serves(env: &Env, host: &str) {
    let (status, _, body) = raw_request(
        env.addr,
        "GET",
        "/still-serving",
        &[("host", host), ("connection", "close")],
    )
    .await;
    assert_eq!(status, 200, "a normal request right after is served");
    assert_eq!(&body[..], b"app page /still-serving");
}

/// A TCP listener that only counts the connections it gets: stands in for
/// a host the gateway must never connect to.
async fn decoy() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\ndecoy")
                .await;
        }
    });
    (addr, count)
}

/// An upstream that records every byte it receives on a connection (until
/// the connection is quiet for 300 ms) and then answers 200 "ok".
async fn recording_upstream() -> (SocketAddr, Arc<std::sync::Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await
                {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (addr, received)
}

// 1. Request head limits.

#[tokio::test]
async fn a_single_100_kib_header_is_refused_with_431_and_never_reaches_the_app() {
    let env = Env::start().await;
    let big = "a".repeat(100 * 1024);
    let req = format!("GET /big-head HTTP/1.1\r\nHost: {GATE}\r\nX-Big: {big}\r\n\r\n");
    let raw = send_raw(env.addr, req.into_bytes()).await;
    assert_eq!(
        status_of(&raw),
        Some(431),
        "{}",
        String::from_utf8_lossy(&raw[..raw.len().min(200)])
    );
    assert_eq!(env.app.hits_on("/big-head"), 0);
    still_serves(&env, GATE).await;
}

#[tokio::test]
async fn a_request_with_150_headers_is_refused_with_431_and_never_reaches_the_app() {
    let env = Env::start().await;
    let mut req = format!("GET /many-headers HTTP/1.1\r\nHost: {GATE}\r\n");
    for i in 0..150 {
        req.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    req.push_str("\r\n");
    let raw = send_raw(env.addr, req.into_bytes()).await;
    assert_eq!(status_of(&raw), Some(431));
    assert_eq!(env.app.hits_on("/many-headers"), 0);
    still_serves(&env, GATE).await;
}

// 2. The 8 KiB form limit is covered by otp_flow.rs
// (`an_oversized_form_is_refused_with_413_and_a_non_form_body_with_400`).

// 3. Request smuggling.

/// A POST whose two framings disagree: by `Content-Length` its body is the
/// whole rest (a second request hidden in it), by chunked coding the body
/// is empty and a second request, `GET /smuggled`, follows.
fn cl_te_smuggle(te_first: bool) -> Vec<u8> {
    let hidden = format!("GET /smuggled HTTP/1.1\r\nHost: {GATE}\r\n\r\n");
    let body = format!("0\r\n\r\n{hidden}");
    let cl = format!("Content-Length: {}\r\n", body.len());
    let te = "Transfer-Encoding: chunked\r\n";
    let (a, b) = if te_first {
        (te, cl.as_str())
    } else {
        (cl.as_str(), te)
    };
    format!("POST /submit HTTP/1.1\r\nHost: {GATE}\r\n{a}{b}\r\n{body}").into_bytes()
}

#[tokio::test]
async fn a_request_hidden_behind_content_length_and_chunked_together_never_reaches_the_app() {
    let env = Env::start().await;
    for te_first in [false, true] {
        let raw = send_raw(env.addr, cl_te_smuggle(te_first)).await;
        let status = status_of(&raw);
        assert!(
            status.is_some_and(|s| s < 500),
            "te_first={te_first}: {status:?}"
        );
        // Only one answer on the connection: the hidden request was not served.
        let answers = raw.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
        assert_eq!(
            answers,
            1,
            "te_first={te_first}: {}",
            String::from_utf8_lossy(&raw)
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        env.app.hits_on("/smuggled"),
        0,
        "the hidden request was served"
    );
    still_serves(&env, GATE).await;
}

#[tokio::test]
#[ignore = "product bug: a request with both Content-Length and Transfer-Encoding is forwarded (hyper drops Content-Length) instead of refused with 400"]
async fn a_request_with_both_content_length_and_transfer_encoding_is_refused_with_400_and_not_forwarded()
 {
    let env = Env::start().await;
    for te_first in [false, true] {
        let raw = send_raw(env.addr, cl_te_smuggle(te_first)).await;
        assert_eq!(status_of(&raw), Some(400), "te_first={te_first}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        env.app.hits_on("/submit"),
        0,
        "the ambiguous request was forwarded"
    );
    assert_eq!(env.app.hits_on("/smuggled"), 0);
    still_serves(&env, GATE).await;
}

#[tokio::test]
async fn two_different_content_lengths_are_refused_with_400_and_nothing_is_forwarded() {
    let env = Env::start().await;
    for lengths in [
        "Content-Length: 5\r\nContent-Length: 48\r\n",
        "Content-Length: 48\r\nContent-Length: 5\r\n",
        "Content-Length: 5, 48\r\n",
    ] {
        let body = format!("hello{}", "x".repeat(43));
        let req = format!("POST /two-lengths HTTP/1.1\r\nHost: {GATE}\r\n{lengths}\r\n{body}");
        let raw = send_raw(env.addr, req.into_bytes()).await;
        assert_eq!(status_of(&raw), Some(400), "{lengths:?}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(env.app.hits_on("/two-lengths"), 0);
    still_serves(&env, GATE).await;
}

#[tokio::test]
async fn a_transfer_encoding_that_does_not_end_in_chunked_is_refused_with_400_and_nothing_is_forwarded()
 {
    let env = Env::start().await;
    for te in ["xchunked", "chunked, identity", "identity", "gzip"] {
        let req = format!(
            "POST /odd-te HTTP/1.1\r\nHost: {GATE}\r\nTransfer-Encoding: {te}\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
        );
        let raw = send_raw(env.addr, req.into_bytes()).await;
        assert_eq!(status_of(&raw), Some(400), "{te:?}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(env.app.hits_on("/odd-te"), 0);
    still_serves(&env, GATE).await;
}

// 4. Slow clients.

#[tokio::test]
async fn a_client_that_stops_halfway_through_its_request_head_is_cut_off_after_header_read_timeout()
{
    let env = Env::with_config(one_second_header_timeout).await;
    let mut slow = TcpStream::connect(env.addr).await.unwrap();
    slow.write_all(format!("GET /slow-head HTTP/1.1\r\nHost: {GATE}\r\nX-Half: ").as_bytes())
        .await
        .unwrap();
    let closed = tokio::spawn(async move { wait_closed(&mut slow, Duration::from_secs(3)).await });

    // Meanwhile, others are served.
    tokio::time::sleep(Duration::from_millis(200)).await;
    still_serves(&env, GATE).await;

    let (after, sent) = closed
        .await
        .unwrap()
        .expect("the half-open request was still open after 3 s");
    assert!(
        after >= Duration::from_millis(700),
        "closed too early: {after:?}"
    );
    if let Some(status) = status_of(&sent) {
        assert_eq!(status, 408, "{}", String::from_utf8_lossy(&sent));
    }
    assert_eq!(env.app.hits_on("/slow-head"), 0);
    still_serves(&env, GATE).await;
}

#[tokio::test]
async fn a_client_trickling_its_request_head_byte_by_byte_is_cut_off_after_header_read_timeout() {
    let env = Env::with_config(one_second_header_timeout).await;
    let stream = TcpStream::connect(env.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // One byte every 100 ms of an endless header: each read makes progress.
    let trickle = tokio::spawn(async move {
        let head = format!("GET /trickle HTTP/1.1\r\nHost: {GATE}\r\nX-Slow: ");
        for b in head.bytes().chain(std::iter::repeat(b'a')) {
            if writer.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(4), reader.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(_)) => {}
        }
    };
    trickle.abort();
    assert!(closed, "a trickling client kept its connection for 4 s");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(env.app.hits_on("/trickle"), 0);
    still_serves(&env, GATE).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_header_read_timeout() {
    let env = Env::with_config(one_second_header_timeout).await;
    let mut stream = TcpStream::connect(env.addr).await.unwrap();
    stream
        .write_all(format!("GET /first HTTP/1.1\r\nHost: {GATE}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let raw = read_response(&mut stream, Duration::from_secs(3)).await;
    assert_eq!(status_of(&raw), Some(200));
    assert_eq!(body_of(&raw), "app page /first");
    // The connection is kept alive, then dropped once it idles too long.
    let (after, _) = wait_closed(&mut stream, Duration::from_secs(3))
        .await
        .expect("the idle connection was still open after 3 s");
    assert!(
        after >= Duration::from_millis(700),
        "closed too early: {after:?}"
    );
    still_serves(&env, GATE).await;
}

#[tokio::test]
async fn a_client_that_connects_and_sends_nothing_is_cut_off_after_header_read_timeout() {
    let env = Env::with_config(one_second_header_timeout).await;
    let mut silent = TcpStream::connect(env.addr).await.unwrap();
    let mut partial_preface = TcpStream::connect(env.addr).await.unwrap();
    // A prefix of the HTTP/2 preface keeps the protocol undecided.
    partial_preface
        .write_all(b"PRI * HTTP/2.0\r\n")
        .await
        .unwrap();
    for (what, stream) in [
        ("silent", &mut silent),
        ("partial preface", &mut partial_preface),
    ] {
        assert!(
            wait_closed(stream, Duration::from_secs(3)).await.is_some(),
            "{what}: still open after 3 s"
        );
    }
    still_serves(&env, GATE).await;
}

// 5. Garbage cookies.

/// Cookie fields no browser would send, as raw bytes.
fn garbage_cookies() -> Vec<Vec<u8>> {
    vec![
        b"a=\xff\xfe\x80; b=\xc3\x28".to_vec(),
        b"\xff\xff=\xff".to_vec(),
        format!("big={}", "z".repeat(4096)).into_bytes(),
        b"=;;;==".to_vec(),
        b";;;;".to_vec(),
        b"=".to_vec(),
        b"otpgate=".to_vec(),
        b"otpgate=!!!not-base64!!!".to_vec(),
        b"otpgate===; otpgate=%%%".to_vec(),
        format!("otpgate={}", "A".repeat(4096)).into_bytes(),
        b"otpgate=\xff\xfe; otpgate_pending=\xfe\xff".to_vec(),
    ]
}

fn get_with_cookie(path: &str, cookie: &[u8], extra: &str) -> Vec<u8> {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {GATE}\r\n{extra}Cookie: ").into_bytes();
    req.extend_from_slice(cookie);
    req.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    req
}

#[tokio::test]
async fn garbage_cookies_without_an_app_session_pass_through_as_anonymous() {
    let env = Env::start().await;
    for cookie in garbage_cookies() {
        let shown = String::from_utf8_lossy(&cookie[..cookie.len().min(40)]).into_owned();
        let raw = send_raw(env.addr, get_with_cookie("/garbage", &cookie, "")).await;
        assert_eq!(status_of(&raw), Some(200), "{shown}: {}", body_of(&raw));
        assert_eq!(body_of(&raw), "app page /garbage", "{shown}");
    }
    assert_eq!(env.app.hits_on("/garbage"), garbage_cookies().len());
    // Control bytes are not even a valid field value: a clean 400.
    for cookie in [&b"a=\x00b"[..], b"otpgate=\x01", b"a=\x7f"] {
        let raw = send_raw(env.addr, get_with_cookie("/garbage", cookie, "")).await;
        assert_eq!(status_of(&raw), Some(400), "{cookie:?}");
    }
    assert_eq!(env.app.hits_on("/garbage"), garbage_cookies().len());
    // Nothing of ours, and nothing that is not UTF-8, was passed on.
    for seen in env.app.hits() {
        for cookie in seen.headers.get("cookie").into_iter().flatten() {
            assert!(!cookie.contains("otpgate"), "{cookie}");
            assert!(!cookie.contains('\u{fffd}'), "{cookie}");
        }
    }
    still_serves(&env, GATE).await;
}

#[tokio::test]
async fn garbage_cookies_next_to_a_logged_in_session_are_gated_not_a_500() {
    let env = Env::start().await;
    let token = env.app.login("alice", Some("+31612345678"));
    for cookie in garbage_cookies() {
        let shown = String::from_utf8_lossy(&cookie[..cookie.len().min(40)]).into_owned();
        let mut with_session = format!("sessionid={token}; ").into_bytes();
        with_session.extend_from_slice(&cookie);
        let raw = send_raw(env.addr, get_with_cookie("/reports", &with_session, "")).await;
        assert_eq!(status_of(&raw), Some(401), "API client, {shown}");
        assert!(body_of(&raw).contains("second_factor_required"), "{shown}");
        let nav = "Accept: text/html\r\nSec-Fetch-Mode: navigate\r\n";
        let raw = send_raw(env.addr, get_with_cookie("/reports", &with_session, nav)).await;
        assert_eq!(status_of(&raw), Some(303), "browser, {shown}");
    }
    assert_eq!(
        env.app.hits_on("/reports"),
        0,
        "a garbage otpgate cookie unlocked"
    );
    still_serves(&env, GATE).await;
}

// 6. Absurd codes.

#[tokio::test]
async fn absurd_codes_are_refused_as_malformed_with_422_and_cost_no_attempt() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    let to = |digits: &str, zero: char| -> String {
        digits
            .chars()
            .map(|c| char::from_u32(zero as u32 + c.to_digit(10).unwrap()).unwrap())
            .collect()
    };
    let absurd = [
        "7".repeat(7000),
        // The right code in other scripts' digits.
        to(&code, '\u{0660}'),
        to(&code, '\u{ff10}'),
        to(&code, '\u{1d7ce}'),
        // Six bytes, not six ASCII digits: would pass a length check alone.
        to(&code[..3], '\u{0660}'),
        to(&code[..2], '\u{ff10}'),
        format!("{}\r\n{}", &code[..2], &code[2..4]),
        format!("{}\r\n{}", &code[..3], &code[3..]),
        format!("{code}\r\nX-Injected: 1"),
        format!("{}\0{}", &code[..3], &code[3..5]),
        "12 456".to_string(),
        "-12345".to_string(),
        "+12345".to_string(),
        "1e5555".to_string(),
        String::new(),
    ];
    for bad in &absurd {
        let shown: String = bad.chars().take(20).collect();
        let res = submit_code(&env, &client, &csrf, bad).await;
        assert_eq!(res.status(), 422, "{shown:?}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("Enter the 6-digit code"),
            "{shown:?}: no malformed-code message"
        );
        assert!(
            !html.contains("X-Injected"),
            "{shown:?}: the input was echoed"
        );
    }
    // None counted: the first real wrong guess leaves 4 of 5 attempts.
    let res = submit_code(&env, &client, &csrf, &wrong(&code)).await;
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Invalid code, 4 attempts left")
    );
    let res = submit_code(&env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 303, "the right code still works");
    still_serves(&env, GATE).await;
}

#[tokio::test]
async fn a_10_kb_code_is_refused_by_the_form_limit_with_413_and_costs_no_attempt() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    let res = submit_code(&env, &client, &csrf, &"9".repeat(10_000)).await;
    assert_eq!(res.status(), 413);
    let res = submit_code(&env, &client, &csrf, &wrong(&code)).await;
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Invalid code, 4 attempts left")
    );
    let res = submit_code(&env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 303, "the right code still works");
    still_serves(&env, GATE).await;
}

// 7. `rd` tricks not already in otp_flow.rs.

/// The value of the hidden `rd` field of a code page.
fn rd_field(html: &str) -> String {
    let start = html
        .find("name=\"rd\" value=\"")
        .expect("the page has an rd field")
        + 17;
    html[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn rd_tricks_in_the_raw_query_become_the_root_on_the_code_page() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    // Query strings as an attacker writes them into a link (decoded once
    // by the gateway, as a browser sends them).
    let tricks = [
        "%2F%2Fevil.example",
        "%2f%2fevil.example",
        "/%2Fevil.example",
        "%2F%5Cevil.example",
        "/%5Cevil.example",
        "/%5C/evil.example",
        "%5C%5Cevil.example",
        "/%09/evil.example",
        "/%0D%0A/evil.example",
        "/x%0D%0ASet-Cookie:%20a=1",
        "/%252F%252Fevil.example%0A",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "%20javascript:alert(1)",
        "java%0Ascript:alert(1)",
        "%00/evil",
        "/%00",
        "data:text/html,x",
        "http:%2F%2Fevil.example",
        "///evil.example",
    ];
    for trick in tricks {
        let res = navigate(&client, &env.url(&format!("/.otpgate/verify?rd={trick}"))).await;
        assert_eq!(res.status(), 200, "{trick}");
        let html = res.text().await.unwrap();
        assert_eq!(rd_field(&html), "/", "the page's rd for {trick}");
    }
    // A plain path still comes through, so the field is read right.
    let res = navigate(&client, &env.url("/.otpgate/verify?rd=%2Freports%3Fx%3D1")).await;
    assert_eq!(rd_field(&res.text().await.unwrap()), "/reports?x=1");
    still_serves(&env, GATE).await;
}

// 8. Hosts.

#[tokio::test]
async fn a_request_without_a_host_is_refused_with_400_and_a_reason() {
    let env = Env::start().await;
    let req = b"GET /no-host HTTP/1.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n";
    let raw = send_raw(env.addr, req.to_vec()).await;
    assert_eq!(status_of(&raw), Some(400));
    assert!(body_of(&raw).contains("missing_host"), "{}", body_of(&raw));
    let req = b"GET /no-host HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n";
    let raw = send_raw(env.addr, req.to_vec()).await;
    assert_eq!(status_of(&raw), Some(400), "an empty Host");
    assert_eq!(env.app.hits_on("/no-host"), 0);
    still_serves(&env, GATE).await;
}

#[tokio::test]
async fn a_host_that_only_resembles_the_configured_one_gets_421_and_the_upstream_is_not_called() {
    let env = Env::with_config(exact_host).await;
    for host in [
        "evil.example",
        "crm.example.evil.example",
        "evil.crm.example",
        "crm.example:80@evil.example",
        "crm.example:abc",
        "crm.example%2Eevil",
        "[::1]",
    ] {
        let req = format!(
            "GET /foreign HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        );
        let raw = send_raw(env.addr, req.into_bytes()).await;
        assert_eq!(status_of(&raw), Some(421), "{host}");
        assert!(
            body_of(&raw).contains("unknown_host"),
            "{host}: {}",
            body_of(&raw)
        );
    }
    assert!(
        env.app.seen.lock().unwrap().is_empty(),
        "the upstream was called for a foreign host"
    );
    still_serves(&env, "crm.example").await;
}

#[tokio::test]
async fn a_request_with_two_host_fields_is_refused_with_400_and_not_forwarded() {
    let env = Env::with_config(exact_host).await;
    let req = "GET /two-hosts HTTP/1.1\r\nHost: crm.example\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    let raw = send_raw(env.addr, req.as_bytes().to_vec()).await;
    assert_eq!(
        status_of(&raw),
        Some(400),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(env.app.hits_on("/two-hosts"), 0);
    still_serves(&env, "crm.example").await;
}

// 9. Spoofed X-Otpgate-* headers, beyond the spellings in proxy.rs.

#[tokio::test]
async fn x_otpgate_headers_sent_with_odd_spacing_or_folding_are_refused_or_never_reach_the_app() {
    let env = Env::start().await;
    let client = plain_client();
    let unlocked = unlock_by_hand(&env, &client, &env.url(""), "alice").await;
    let cookie = unlocked.cookie_header();
    for forged in [
        "X-Otpgate-User : admin\r\n",
        "X-Otpgate-User\t: admin\r\n",
        " X-Otpgate-User: admin\r\n",
        "X-Other: 1\r\n X-Otpgate-User: admin\r\n",
        "X-Other: 1\r\n\tX-Otpgate-User: admin\r\n",
        "x-OTPGATE-user: admin\r\nX-Otpgate-User: root\r\nx-otpgate-user: admin\r\n",
        "X-Otpgate-User: admin, root\r\n",
    ] {
        for cookie in [None, Some(cookie.as_str())] {
            let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
            let req = format!(
                "GET /echo HTTP/1.1\r\nHost: {GATE}\r\n{cookie}{forged}Connection: close\r\n\r\n"
            );
            let raw = send_raw(env.addr, req.into_bytes()).await;
            let status = status_of(&raw).expect("an answer");
            if status == 400 {
                continue;
            }
            assert_eq!(status, 200, "{forged:?}");
            let seen: serde_json::Value = serde_json::from_str(&body_of(&raw)).unwrap();
            let user = &seen["headers"]["x-otpgate-user"];
            let expected = if cookie.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::json!(["alice"])
            };
            assert_eq!(
                user,
                &expected,
                "{forged:?} with cookie={}",
                !cookie.is_empty()
            );
            assert!(!body_of(&raw).contains("admin"), "{forged:?}");
        }
    }
    still_serves(&env, GATE).await;
}

#[tokio::test]
async fn x_otpgate_user_spelled_with_underscores_never_reaches_the_app() {
    let env = Env::start().await;
    for forged in [
        "X_Otpgate_User",
        "x_otpgate_user",
        "X-Otpgate_User",
        "X_OTPGATE-USER",
    ] {
        let req = format!(
            "GET /echo HTTP/1.1\r\nHost: {GATE}\r\n{forged}: admin\r\nConnection: close\r\n\r\n"
        );
        let raw = send_raw(env.addr, req.into_bytes()).await;
        let status = status_of(&raw).expect("an answer");
        if status == 400 {
            continue;
        }
        assert_eq!(status, 200, "{forged}");
        assert!(
            !body_of(&raw).to_ascii_lowercase().contains("otpgate"),
            "{forged} reached the app: {}",
            body_of(&raw)
        );
    }
    still_serves(&env, GATE).await;
}

#[tokio::test]
async fn an_x_otpgate_user_in_a_chunked_trailer_never_reaches_the_app() {
    let (upstream, received) = recording_upstream().await;
    let env = Env::with_config(|t| with_upstream(&t, &format!("http://{upstream}"))).await;
    let req = format!(
        "POST /upload HTTP/1.1\r\nHost: {GATE}\r\nTransfer-Encoding: chunked\r\nTrailer: X-Otpgate-User\r\nConnection: close\r\n\r\n\
         5\r\nhello\r\n0\r\nX-Otpgate-User: admin\r\n\r\n"
    );
    let raw = send_raw(env.addr, req.into_bytes()).await;
    assert_eq!(
        status_of(&raw),
        Some(200),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    let seen = String::from_utf8_lossy(&received.lock().unwrap()).to_ascii_lowercase();
    assert!(
        seen.contains("hello"),
        "the body reached the upstream: {seen}"
    );
    assert!(
        !seen.contains("x-otpgate-user"),
        "the trailer reached the upstream: {seen}"
    );
    // Still serving (this upstream answers "ok" to everything).
    let raw = send_raw(env.addr, get("/still-serving", GATE)).await;
    assert_eq!(status_of(&raw), Some(200));
    assert_eq!(body_of(&raw), "ok");
}

// 10. Absolute-form targets.

#[tokio::test]
async fn an_absolute_form_target_naming_another_host_goes_only_to_the_configured_upstream() {
    let env = Env::start().await;
    let (elsewhere, connections) = decoy().await;
    for (target, host) in [
        (
            format!("http://{elsewhere}/steal"),
            format!("Host: {GATE}\r\n"),
        ),
        (format!("http://{elsewhere}/steal"), String::new()),
        (
            "http://evil.example/steal".to_string(),
            format!("Host: {GATE}\r\n"),
        ),
    ] {
        let req = format!("GET {target} HTTP/1.1\r\n{host}Connection: close\r\n\r\n");
        let raw = send_raw(env.addr, req.into_bytes()).await;
        assert_eq!(status_of(&raw), Some(200), "{target} {host:?}");
        assert_eq!(body_of(&raw), "app page /steal", "{target} {host:?}");
    }
    assert_eq!(
        env.app.hits_on("/steal"),
        3,
        "every one went to the configured app"
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the gateway connected elsewhere"
    );
    still_serves(&env, GATE).await;
}

/// Sends `CONNECT {target}` and returns the answer's status.
async fn connect_to(env: &Env, target: SocketAddr) -> Option<u16> {
    let req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    let mut stream = TcpStream::connect(env.addr).await.unwrap();
    stream.write_all(req.as_bytes()).await.unwrap();
    let raw = read_response(&mut stream, Duration::from_secs(3)).await;
    // Whatever the answer, nothing tunnels: bytes sent now go nowhere.
    let _ = stream.write_all(&get("/through-tunnel", GATE)).await;
    let _ = read_response(&mut stream, Duration::from_millis(500)).await;
    status_of(&raw)
}

#[tokio::test]
async fn a_connect_request_never_opens_a_tunnel_to_another_host() {
    let env = Env::start().await;
    let (elsewhere, connections) = decoy().await;
    let status = connect_to(&env, elsewhere).await;
    assert!(status.is_some_and(|s| s < 500), "{status:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the gateway connected elsewhere"
    );
    still_serves(&env, GATE).await;
}

#[tokio::test]
async fn a_connect_request_is_refused_with_a_4xx_and_not_forwarded_to_the_app() {
    let env = Env::start().await;
    let (elsewhere, _) = decoy().await;
    let status = connect_to(&env, elsewhere).await;
    assert!(
        status.is_some_and(|s| (400..500).contains(&s)),
        "{status:?}"
    );
    let forwarded: Vec<Seen> = env.app.seen.lock().unwrap().clone();
    assert!(
        forwarded.iter().all(|s| s.method != "CONNECT"),
        "the app got {forwarded:?}"
    );
    still_serves(&env, GATE).await;
}
