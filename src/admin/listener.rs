//! Where the admin API listens: a Unix socket next to the configuration by
//! default (no TCP port to collide with Prometheus, Cockpit or a second
//! otpgate on 9090, and file permissions on top of the bearer token), or a
//! TCP address when `[admin] listen` is set.

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};

use crate::config::AdminSettings;
use crate::state::State;

/// The admin API's slowloris bound (its clients are local scripts).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Its request heads are tiny.
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on {addr}: {source}")]
    Tcp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "the admin socket {} is in use: another otpgate (or another program) answers on it; stop that one, or give this gateway its own [admin] socket",
        .0.display()
    )]
    SocketLive(PathBuf),
    #[error(
        "{} exists and is not a socket; otpgate does not replace it: remove it, or choose another [admin] socket",
        .0.display()
    )]
    NotASocket(PathBuf),
    #[error("cannot open the admin socket {}: {source}", .path.display())]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub enum AdminListener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        path: PathBuf,
        /// The socket file this process made (device, inode): only that one
        /// is removed at shutdown, never a successor's.
        made: (u64, u64),
    },
}

impl AdminListener {
    /// Opens what `[admin]` asks for, or nothing when it is off.
    pub async fn bind(admin: &AdminSettings) -> Result<Option<Self>, BindError> {
        if let Some(addr) = admin.listen {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| BindError::Tcp { addr, source })?;
            return Ok(Some(Self::Tcp(l)));
        }
        let Some(path) = &admin.socket else {
            return Ok(None);
        };
        let socket_err = |source| BindError::Socket {
            path: path.clone(),
            source,
        };
        replace_if_stale(path)?;
        let listener = UnixListener::bind(path).map_err(socket_err)?;
        // Only the service user may connect; the token is checked as well.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(socket_err)?;
        let meta = std::fs::metadata(path).map_err(socket_err)?;
        Ok(Some(Self::Unix {
            listener,
            path: path.clone(),
            made: (meta.dev(), meta.ino()),
        }))
    }

    /// The TCP address, when it listens on one.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr().ok(),
            Self::Unix { .. } => None,
        }
    }

    /// Where it listens, for the log.
    pub fn describe(&self) -> String {
        match self {
            Self::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp".into(), |a| a.to_string()),
            Self::Unix { path, .. } => format!("unix:{}", path.display()),
        }
    }

    /// Accepts one connection and serves the admin API on it in a task
    /// watched by `watcher`. A failed accept is logged and the loop goes on.
    pub async fn accept_and_serve(
        &self,
        state: &Arc<State>,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let accepted = match self {
            Self::Tcp(l) => l.accept().await.map(|(s, peer)| {
                tokio::spawn(serve(state.clone(), s, peer.to_string(), watcher));
            }),
            Self::Unix { listener, .. } => listener.accept().await.map(|(s, _)| {
                tokio::spawn(serve(state.clone(), s, "unix".into(), watcher));
            }),
        };
        if let Err(e) = accepted {
            tracing::warn!(error = %e, "admin accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for AdminListener {
    fn drop(&mut self) {
        if let Self::Unix { path, made, .. } = self {
            let ours = std::fs::metadata(&*path).is_ok_and(|m| (m.dev(), m.ino()) == *made);
            if ours && let Err(e) = std::fs::remove_file(&*path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove the admin socket");
            }
        }
    }
}

/// A socket file left by a run that crashed is replaced; one that a live
/// process answers on, or a file that is not a socket, is not touched.
fn replace_if_stale(path: &Path) -> Result<(), BindError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(BindError::Socket {
                path: path.into(),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket(path.into()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(BindError::SocketLive(path.into())),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing the admin socket of an earlier run");
            std::fs::remove_file(path).map_err(|source| BindError::Socket {
                path: path.into(),
                source,
            })
        }
        Err(source) => Err(BindError::Socket {
            path: path.into(),
            source,
        }),
    }
}

/// One admin connection: plain HTTP/1.1, a slowloris timeout, and the admin
/// API's own service (never the gate).
async fn serve<S>(
    state: Arc<State>,
    stream: S,
    peer: String,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(super::handle(&state, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "admin connection ended with an error");
    }
}
