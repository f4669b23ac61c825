//! Cross-site request forgery defence for the gateway's own forms (the
//! code form and resend), as OWASP's "Cross-Site Request Forgery Prevention
//! Cheat Sheet" lays it out: a synchronizer token on every post
//! ("Synchronizer Token Pattern"), and as a second line what the browser
//! says about where the post came from ("Fetch Metadata headers",
//! "Verifying Origin With Standard Headers").
//!
//! What real browsers send, from the Fetch standard:
//! - "append a request `Origin` header": a POST that is not a CORS request
//!   (a form post) carries `Origin`; its value is `null` when the page's
//!   referrer policy is `no-referrer` (and in opaque contexts such as
//!   sandboxed frames or `data:` URLs). Our pages send
//!   `Referrer-Policy: same-origin` (see `pages`), so a post from them
//!   carries our real origin.
//! - Fetch Metadata (`Sec-Fetch-Site`): `same-origin`, `same-site`,
//!   `cross-site`, or `none` for a request the user started (typed URL,
//!   bookmark). Browsers send it only to potentially trustworthy origins
//!   (HTTPS, loopback), so it may be missing on plain HTTP.

use http::HeaderMap;
use http::header::{HeaderName, ORIGIN};
use http::uri::{Authority, Uri};
use subtle::ConstantTimeEq;

use crate::error::GateError;
use crate::state::{App, State};

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// A token bound to the app session (a synchronizer token without server
/// state: only a page of this session can know it).
pub fn token(state: &State, app: &App, session: &[u8; 32]) -> String {
    use base64::Engine;
    let mac = state
        .keys
        .csrf
        .of(&[&(app.index as u64).to_be_bytes(), session]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mac[..24])
}

/// Why a post's source was refused; logged, never shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Sec-Fetch-Site: cross-site`.
    CrossSite,
    /// `Sec-Fetch-Site: same-site`: a sibling subdomain (`evil.example.com`
    /// posting to `gate.example.com`). The gateway's forms only ever post to
    /// their own origin, and a sibling host may serve content nobody here
    /// controls; SameSite=Lax cookies do not stop such a post, so it is
    /// refused like a cross-site one.
    SameSite,
    /// An `Origin` naming another host or port.
    OtherOrigin,
    /// An `Origin` naming this host with the other scheme: a page of the
    /// plain-HTTP site posting to the HTTPS one or the other way round, or a
    /// TLS proxy in front that is not in `server.trusted_proxies` (so its
    /// `X-Forwarded-Proto` is not believed).
    OtherScheme,
    /// `Origin: null` with nothing else to go on: OWASP says to treat it as
    /// unknown, and unknown is not this site.
    OpaqueOrigin,
    /// A value no browser sends, or the field twice.
    Malformed,
}

/// Refuses a post that the browser says came from elsewhere:
/// - `Sec-Fetch-Site` present: `same-origin` and `none` go on to the Origin
///   check; `same-site`, `cross-site` and anything else are refused.
/// - `Origin` present and not `null`: it must be this request's own scheme,
///   host and port, whatever `Sec-Fetch-Site` says.
/// - `Origin: null`: no evidence either way, so it decides nothing when
///   `Sec-Fetch-Site` says same-origin (Chromium sends exactly that from a
///   `no-referrer` page) and is refused without `Sec-Fetch-Site`.
/// - Neither field (old browsers, non-browser clients): the token alone
///   decides.
///
/// `https` and `host` are the request's own (`ClientView`): `host` as sent
/// in `Host`, which may carry a port.
pub fn check_source(headers: &HeaderMap, https: bool, host: &str) -> Result<(), Refusal> {
    let site_is_own = match single(headers, &SEC_FETCH_SITE)? {
        None => false,
        Some(v) if v.eq_ignore_ascii_case(b"same-origin") || v.eq_ignore_ascii_case(b"none") => {
            true
        }
        Some(v) if v.eq_ignore_ascii_case(b"same-site") => return Err(Refusal::SameSite),
        Some(v) if v.eq_ignore_ascii_case(b"cross-site") => return Err(Refusal::CrossSite),
        Some(_) => return Err(Refusal::Malformed),
    };
    match single(headers, &ORIGIN)? {
        None => Ok(()),
        Some(b"null") if site_is_own => Ok(()),
        Some(b"null") => Err(Refusal::OpaqueOrigin),
        Some(origin) => {
            let origin = std::str::from_utf8(origin).map_err(|_| Refusal::Malformed)?;
            own_origin(origin, https, host)
        }
    }
}

/// The token check and [`check_source`] together: both must pass.
pub fn check(
    headers: &HeaderMap,
    https: bool,
    host: &str,
    expected: &str,
    given: &str,
) -> Result<(), GateError> {
    match check_source(headers, https, host) {
        Ok(()) => {}
        Err(Refusal::OtherScheme) => {
            tracing::info!(
                https,
                "form post refused: its Origin has the other scheme; if a TLS proxy is in front, list it in server.trusted_proxies"
            );
            return Err(GateError::Csrf);
        }
        Err(why) => {
            tracing::debug!(?why, "form post refused: not from this site");
            return Err(GateError::Csrf);
        }
    }
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(GateError::Csrf)
    }
}

/// A field's only value; the same field twice is refused (RFC 9110 §5.3:
/// neither field is a list, so two of them can only be a trick).
fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h [u8]>, Refusal> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => Ok(Some(v.as_bytes())),
        (Some(_), Some(_)) => Err(Refusal::Malformed),
    }
}

/// Whether a serialized origin (RFC 6454 §6.2: `scheme "://" host [":"
/// port]`, nothing else) is this request's own: same scheme, same host
/// (ASCII case-insensitive), same port, where no port means the scheme's
/// default.
fn own_origin(origin: &str, https: bool, host: &str) -> Result<(), Refusal> {
    let uri: Uri = origin.parse().map_err(|_| Refusal::Malformed)?;
    let (Some(scheme), Some(theirs)) = (uri.scheme_str(), uri.authority()) else {
        return Err(Refusal::Malformed);
    };
    // An origin has no user information and no path; `http` puts a lone
    // "/" in for a URI without one.
    if theirs.as_str().contains('@') || uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(Refusal::Malformed);
    }
    let ours: Authority = host.parse().map_err(|_| Refusal::Malformed)?;
    if !theirs.host().eq_ignore_ascii_case(ours.host()) {
        return Err(Refusal::OtherOrigin);
    }
    let own_scheme = if https { "https" } else { "http" };
    if !scheme.eq_ignore_ascii_case(own_scheme) {
        return Err(Refusal::OtherScheme);
    }
    let default_port = if https { 443 } else { 80 };
    if theirs.port_u16().unwrap_or(default_port) != ours.port_u16().unwrap_or(default_port) {
        return Err(Refusal::OtherOrigin);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// One post as a browser (or something else) sends it.
    struct Case {
        what: &'static str,
        site: Option<&'static str>,
        origin: Option<&'static str>,
        https: bool,
        host: &'static str,
        expect: Result<(), Refusal>,
    }

    const fn case(
        what: &'static str,
        site: Option<&'static str>,
        origin: Option<&'static str>,
        https: bool,
        host: &'static str,
        expect: Result<(), Refusal>,
    ) -> Case {
        Case {
            what,
            site,
            origin,
            https,
            host,
            expect,
        }
    }

    use Refusal::*;
    const OK: Result<(), Refusal> = Ok(());
    const H: &str = "gate.example.com";

    #[rustfmt::skip]
    const TABLE: &[Case] = &[
        case("Chromium from a no-referrer page", Some("same-origin"), Some("null"), true, H, OK),
        case("Chromium from a same-origin page", Some("same-origin"), Some("https://gate.example.com"), true, H, OK),
        case("a typed or bookmarked post", Some("none"), None, true, H, OK),
        case("Sec-Fetch-Site in capitals", Some("Same-Origin"), None, true, H, OK),
        case("a sibling subdomain", Some("same-site"), Some("https://evil.example.com"), true, H, Err(SameSite)),
        case("a sibling subdomain without Origin", Some("same-site"), None, true, H, Err(SameSite)),
        case("another site", Some("cross-site"), Some("https://evil.example"), true, H, Err(CrossSite)),
        case("another site with an opaque origin", Some("cross-site"), Some("null"), true, H, Err(CrossSite)),
        case("a value no browser sends", Some("same-ish"), None, true, H, Err(Malformed)),
        case("same-origin said, other Origin named", Some("same-origin"), Some("https://evil.example"), true, H, Err(OtherOrigin)),
        case("no metadata, own origin", None, Some("https://gate.example.com"), true, H, OK),
        case("no metadata, own origin with the default port", None, Some("https://gate.example.com:443"), true, H, OK),
        case("no metadata, Host with the default port", None, Some("https://gate.example.com"), true, "gate.example.com:443", OK),
        case("no metadata, host in capitals", None, Some("https://GATE.example.com"), true, H, OK),
        case("no metadata, own port", None, Some("http://127.0.0.1:8000"), false, "127.0.0.1:8000", OK),
        case("no metadata, IPv6 loopback", None, Some("http://[::1]:8000"), false, "[::1]:8000", OK),
        case("no metadata, other port", None, Some("http://127.0.0.1:9000"), false, "127.0.0.1:8000", Err(OtherOrigin)),
        case("no metadata, port against none", None, Some("https://gate.example.com:8443"), true, H, Err(OtherOrigin)),
        case("no metadata, plain HTTP page posting to HTTPS", None, Some("http://gate.example.com"), true, H, Err(OtherScheme)),
        case("no metadata, HTTPS origin to a plain HTTP gateway", None, Some("https://gate.example.com"), false, H, Err(OtherScheme)),
        case("no metadata, a scheme no origin of ours has", None, Some("ftp://gate.example.com"), true, H, Err(OtherScheme)),
        case("no metadata, another site", None, Some("https://evil.example"), true, H, Err(OtherOrigin)),
        case("no metadata, our host as a suffix", None, Some("https://gate.example.com.evil.example"), true, H, Err(OtherOrigin)),
        case("no metadata, our host as a prefix", None, Some("https://evil.gate.example.com"), true, H, Err(OtherOrigin)),
        case("no metadata, user information", None, Some("https://gate.example.com@evil.example"), true, H, Err(Malformed)),
        case("no metadata, a path", None, Some("https://gate.example.com/x"), true, H, Err(Malformed)),
        case("no metadata, not a URI", None, Some("gate.example.com"), true, H, Err(Malformed)),
        case("no metadata, opaque origin", None, Some("null"), true, H, Err(OpaqueOrigin)),
        case("no metadata, no Origin (old browser, script)", None, None, true, H, OK),
    ];

    #[test]
    fn the_source_of_a_post_is_judged_as_the_table_says() {
        for c in TABLE {
            let mut h = HeaderMap::new();
            if let Some(site) = c.site {
                h.insert(SEC_FETCH_SITE, HeaderValue::from_static(site));
            }
            if let Some(origin) = c.origin {
                h.insert(ORIGIN, HeaderValue::from_static(origin));
            }
            assert_eq!(check_source(&h, c.https, c.host), c.expect, "{}", c.what);
        }
    }

    #[test]
    fn either_field_sent_twice_is_refused() {
        for name in [SEC_FETCH_SITE, ORIGIN] {
            let mut h = HeaderMap::new();
            let own = if name == ORIGIN {
                "https://gate.example.com"
            } else {
                "same-origin"
            };
            h.append(name.clone(), HeaderValue::from_static(own));
            h.append(name.clone(), HeaderValue::from_static(own));
            assert_eq!(check_source(&h, true, H), Err(Malformed), "{name}");
        }
    }

    #[test]
    fn a_trusted_source_still_needs_the_token() {
        let mut h = HeaderMap::new();
        h.insert(SEC_FETCH_SITE, HeaderValue::from_static("same-origin"));
        h.insert(ORIGIN, HeaderValue::from_static("https://gate.example.com"));
        assert!(check(&h, true, H, "token", "token").is_ok());
        for given in ["", "tokem", "token2"] {
            assert!(
                matches!(check(&h, true, H, "token", given), Err(GateError::Csrf)),
                "{given:?}"
            );
        }
    }
}
