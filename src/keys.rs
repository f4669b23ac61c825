//! The server secret and the keys derived from it. One secret file; each use
//! gets its own key by HMAC-SHA256 with a fixed label, so a value computed for
//! one purpose can never be replayed as another.

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted: 256 bits.
const MIN_SECRET_LEN: usize = 32;
/// Length of a newly created secret.
const NEW_SECRET_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: cannot read the secret file: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: cannot create the secret file: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: the secret file is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    WorldReadable { path: String, mode: u32 },
    #[error(
        "{path}: the secret file holds {len} bytes, at least {MIN_SECRET_LEN} are needed; delete it to have a new one made"
    )]
    TooShort { path: String, len: usize },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// Reads the secret, or creates a fresh random one (mode 0600) if the file
/// does not exist yet.
pub fn load_or_create(path: &Path) -> Result<Vec<u8>, SecretError> {
    match load(path) {
        Err(SecretError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            create(path)
        }
        other => other,
    }
}

/// Reads an existing secret, refusing one that others may read.
pub fn load(path: &Path) -> Result<Vec<u8>, SecretError> {
    let shown = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(meta) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o007 != 0 {
                    return Err(SecretError::WorldReadable { path: shown, mode });
                }
            }
            #[cfg(not(unix))]
            let _ = meta;
            let bytes = std::fs::read(path).map_err(|source| SecretError::Read {
                path: shown.clone(),
                source,
            })?;
            if bytes.len() < MIN_SECRET_LEN {
                return Err(SecretError::TooShort {
                    path: shown,
                    len: bytes.len(),
                });
            }
            Ok(bytes)
        }
        Err(source) => Err(SecretError::Read {
            path: shown,
            source,
        }),
    }
}

fn create(path: &Path) -> Result<Vec<u8>, SecretError> {
    let shown = path.display().to_string();
    let mut bytes = vec![0u8; NEW_SECRET_LEN];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| SecretError::Random(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let create = |source| SecretError::Create {
        path: shown.clone(),
        source,
    };
    let mut file = options.open(path).map_err(create)?;
    file.write_all(&bytes).map_err(create)?;
    file.sync_all().map_err(create)?;
    tracing::info!(path = %shown, "created a new server secret");
    Ok(bytes)
}

/// A keyed hash (HMAC-SHA256) under one derived key.
#[derive(Clone)]
pub struct KeyedHash(HmacSha256);

impl KeyedHash {
    fn derive(secret: &[u8], label: &str) -> Self {
        let sub = hmac_once(secret, &[label.as_bytes()]);
        Self(HmacSha256::new_from_slice(&sub).expect("HMAC takes keys of any length"))
    }

    /// HMAC over the parts, each prefixed with its length so that
    /// ("ab", "c") and ("a", "bc") never collide.
    pub fn of(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.0.clone();
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

/// Lower-case hex, for keyed hashes shown in cookies and the audit log.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

fn hmac_once(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Every key the gateway uses, derived once at start-up.
#[derive(Clone)]
pub struct Keys {
    /// Encrypts the gateway's cookies (AES-256-GCM via the cookie crate's private jar).
    pub cookie: cookie::Key,
    /// Identifies an app session by its cookie value without keeping the value.
    pub session: KeyedHash,
    /// Hashes OTP codes at rest.
    pub code: KeyedHash,
    /// Makes CSRF tokens.
    pub csrf: KeyedHash,
    /// Identifies a phone number for rate limits without keeping the number.
    pub phone: KeyedHash,
    /// Identifies a pending code by app and user.
    pub pending: KeyedHash,
    /// Makes the unguessable token in the providers' webhook URLs.
    pub webhook: KeyedHash,
    /// Makes the admin API's bearer token.
    admin: KeyedHash,
    /// Seals what the server itself keeps for later (AES-256-GCM, the
    /// cookie crate's private construction): the WhatsApp→SMS fallback's
    /// code. A key of its own, so nothing sealed for the server can be
    /// passed off as a cookie, or the other way round.
    at_rest: cookie::Key,
}

impl Keys {
    /// Encrypts and authenticates a gateway cookie's value (AES-256-GCM via
    /// the cookie crate's private jar; the name is the associated data).
    pub fn seal_cookie(&self, cookie: cookie::Cookie<'static>) -> cookie::Cookie<'static> {
        let mut jar = cookie::CookieJar::new();
        jar.private_mut(&self.cookie).add(cookie);
        jar.delta()
            .next()
            .cloned()
            .expect("the jar holds the cookie just added")
    }

    /// The plain value of a sealed gateway cookie, if it is authentic.
    pub fn open_cookie(&self, name: &'static str, value: &str) -> Option<String> {
        let sealed = cookie::Cookie::new(name, value.to_string());
        let plain = cookie::CookieJar::new()
            .private(&self.cookie)
            .decrypt(sealed)?;
        Some(plain.value().to_string())
    }

    /// Seals `plain` for the server's own later use: AES-256-GCM with a
    /// fresh random nonce under the at-rest key; `purpose` is the
    /// associated data, so a value sealed for one purpose opens for no other.
    pub fn seal_at_rest(&self, purpose: &'static str, plain: String) -> String {
        let mut jar = cookie::CookieJar::new();
        jar.private_mut(&self.at_rest)
            .add(cookie::Cookie::new(purpose, plain));
        jar.get(purpose)
            .expect("the jar holds the value just added")
            .value()
            .to_string()
    }

    /// The plain value sealed by [`Self::seal_at_rest`] for `purpose`, if authentic.
    pub fn open_at_rest(&self, purpose: &'static str, sealed: &str) -> Option<String> {
        let sealed = cookie::Cookie::new(purpose, sealed.to_string());
        let plain = cookie::CookieJar::new()
            .private(&self.at_rest)
            .decrypt(sealed)?;
        Some(plain.value().to_string())
    }

    pub fn derive(secret: &[u8]) -> Self {
        let master = |label1: &[u8], label2: &[u8]| {
            let a = hmac_once(secret, &[label1]);
            let b = hmac_once(secret, &[label2]);
            [a, b].concat()
        };
        let cookie_master = master(b"otpgate cookie key 1", b"otpgate cookie key 2");
        let at_rest_master = master(b"otpgate at-rest key 1", b"otpgate at-rest key 2");
        Self {
            at_rest: cookie::Key::derive_from(&at_rest_master),
            cookie: cookie::Key::derive_from(&cookie_master),
            session: KeyedHash::derive(secret, "otpgate session"),
            code: KeyedHash::derive(secret, "otpgate code"),
            csrf: KeyedHash::derive(secret, "otpgate csrf"),
            phone: KeyedHash::derive(secret, "otpgate phone"),
            pending: KeyedHash::derive(secret, "otpgate pending"),
            webhook: KeyedHash::derive(secret, "otpgate webhook"),
            admin: KeyedHash::derive(secret, "otpgate admin"),
        }
    }

    /// The secret last segment of `provider`'s webhook URL. One per provider:
    /// a provider (or anyone who sees its callback URLs) cannot post as
    /// another.
    pub fn webhook_token(&self, provider: &str) -> String {
        use base64::Engine;
        let mac = self
            .webhook
            .of(&[b"webhook url token", provider.as_bytes()]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mac[..24])
    }

    /// The admin API's bearer token. Only who can read the secret file (the
    /// service user) can compute it, so the admin CLI needs no password of
    /// its own and a local user without that file gets nowhere.
    pub fn admin_token(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.admin.of(&[b"admin bearer token"]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_secret_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = load_or_create(&path).unwrap();
        assert_eq!(first.len(), NEW_SECRET_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(load_or_create(&path).unwrap(), first);
    }

    #[cfg(unix)]
    #[test]
    fn a_world_readable_or_short_secret_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, [7u8; 64]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(SecretError::WorldReadable { .. })
        ));
        std::fs::write(&path, [7u8; 8]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(SecretError::TooShort { .. })
        ));
    }

    #[test]
    fn a_value_sealed_at_rest_opens_only_with_its_key_and_purpose() {
        let keys = Keys::derive(&[1u8; 64]);
        let sealed = keys.seal_at_rest("fallback", "123456".into());
        assert!(!sealed.contains("123456"));
        assert_ne!(
            sealed,
            keys.seal_at_rest("fallback", "123456".into()),
            "a fresh nonce"
        );
        assert_eq!(
            keys.open_at_rest("fallback", &sealed).as_deref(),
            Some("123456")
        );
        assert_eq!(keys.open_at_rest("other", &sealed), None);
        assert_eq!(
            Keys::derive(&[2u8; 64]).open_at_rest("fallback", &sealed),
            None
        );
        assert_eq!(
            keys.open_cookie("fallback", &sealed),
            None,
            "not a cookie key"
        );
    }

    #[test]
    fn keyed_hashes_differ_by_purpose_and_by_part_boundaries() {
        let keys = Keys::derive(&[1u8; 64]);
        assert_ne!(keys.code.of(&[b"x"]), keys.csrf.of(&[b"x"]));
        assert_ne!(keys.code.of(&[b"ab", b"c"]), keys.code.of(&[b"a", b"bc"]));
    }
}
