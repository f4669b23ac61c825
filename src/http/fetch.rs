//! What kind of request a browser made, from Fetch Metadata and `Accept`:
//! a navigation (shown a page or redirected) or a script's call (answered
//! with JSON it can act on). See the Fetch standard's `Sec-Fetch-Mode` and
//! `Sec-Fetch-Dest`.

use http::header::{ACCEPT, HeaderName};
use http::{Method, Request};

// Looked up by `HeaderName`: a `&str` name is parsed on every lookup.
const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");
const SEC_FETCH_DEST: HeaderName = HeaderName::from_static("sec-fetch-dest");
const X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");

/// Whether any value of the field contains `needle`, ignoring ASCII case.
fn header_has<B>(req: &Request<B>, name: &HeaderName, needle: &[u8]) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    })
}

/// A browser navigation: GET/HEAD that says so (`Sec-Fetch-Mode: navigate`)
/// or that accepts HTML.
pub fn is_navigation<B>(req: &Request<B>) -> bool {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return false;
    }
    header_has(req, &SEC_FETCH_MODE, b"navigate") || header_has(req, &ACCEPT, b"text/html")
}

/// Whether an error is shown to a person as a document, so it is answered
/// with a page rather than JSON. Only the error's form: what happens to a
/// request (a 401 rather than a redirect for a POST) is decided elsewhere.
/// - GET and HEAD: [`is_navigation`].
/// - Anything else (a form post): a script asks for JSON (`Accept:
///   application/json`, `X-Requested-With`), and fetch and XHR run in a
///   Fetch mode other than `navigate` (`cors`, `same-origin`, `no-cors`).
///   A form post is a navigation (Fetch Metadata: `Sec-Fetch-Mode:
///   navigate`, `Sec-Fetch-Dest: document`); browsers that send no Fetch
///   Metadata (plain HTTP, older ones) still ask for HTML in `Accept`.
pub fn wants_error_page<B>(req: &Request<B>) -> bool {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return is_navigation(req);
    }
    if header_has(req, &ACCEPT, b"application/json") || req.headers().contains_key(X_REQUESTED_WITH)
    {
        return false;
    }
    if req.headers().contains_key(SEC_FETCH_MODE) {
        return header_has(req, &SEC_FETCH_MODE, b"navigate");
    }
    header_has(req, &SEC_FETCH_DEST, b"document") || header_has(req, &ACCEPT, b"text/html")
}
