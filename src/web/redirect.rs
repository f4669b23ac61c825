//! The `rd` parameter: where to send the user after the code. Only a path
//! on this same site is accepted; anything that a browser could read as
//! another origin becomes "/".

/// Longest `rd` accepted.
const MAX_LEN: usize = 2048;

/// Returns `rd` if it is a same-origin path, else "/".
///
/// Browsers treat `//host`, `/\host` and `\\host` as network-path
/// references (WHATWG URL: backslash is a path separator for special
/// schemes), and strip tabs and newlines before parsing; so any backslash,
/// control character, or a second leading slash is refused, also in its
/// percent-encoded form.
pub fn sanitize(rd: &str) -> &str {
    if is_safe(rd) { rd } else { "/" }
}

fn is_safe(rd: &str) -> bool {
    let bytes = rd.as_bytes();
    if rd.is_empty() || rd.len() > MAX_LEN || bytes[0] != b'/' {
        return false;
    }
    if bytes
        .iter()
        .any(|b| *b == b'\\' || b.is_ascii_control() || *b == b' ')
    {
        return false;
    }
    let decoded: Vec<u8> = percent_decode(bytes);
    if decoded.iter().any(|b| *b == b'\\' || b.is_ascii_control()) {
        return false;
    }
    !(decoded.get(1) == Some(&b'/') || bytes.get(1) == Some(&b'/'))
}

/// Decodes `%XX` escapes (once is enough: any second layer of escaping is
/// only decoded by the application, never by the browser's URL parser).
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    percent_encoding::percent_decode(bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn same_site_paths_pass_through() {
        for ok in ["/", "/reports?year=2026", "/a/b#frag", "/search?q=a%20b"] {
            assert_eq!(sanitize(ok), ok);
        }
    }

    #[test]
    fn anything_that_could_leave_the_site_becomes_root() {
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/%2F%2Fevil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/\tevil",
            "/a\r\nSet-Cookie: x=1",
            "/%0d%0aSet-Cookie:x",
            "/a?x=1&y=%0d%0a",
            "/a&%5Cevil",
            "evil.example",
        ] {
            assert_eq!(sanitize(bad), "/", "{bad:?}");
        }
        assert_eq!(sanitize(&format!("/{}", "a".repeat(5000))), "/");
    }
}
