//! The listener: accepts TCP (optionally TLS) connections, serves HTTP/1.1
//! and HTTP/2 with upgrades through one `auto::Builder`, and shuts down
//! gracefully with a bounded wait.

pub mod service;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::admin::listener::AdminListener;
use crate::config::{Settings, TlsFiles};
use crate::events::Events;
use crate::events::audit::{Audit, AuditError};
use crate::keys::{self, SecretError};
use crate::state::State;
use service::Conn;

/// Largest request head (request line and headers) read over HTTP/1.1;
/// beyond it hyper answers 431 (RFC 6585 §5).
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// Time the audit log has at shutdown to write what is queued.
const AUDIT_DRAIN: Duration = Duration::from_secs(2);
/// Time a client has to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time an admin client has to send its request head.

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Admin(#[from] crate::admin::listener::BindError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot build the SMS provider's HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

pub struct Gateway {
    state: Arc<State>,
    listener: TcpListener,
    /// The other workers' listeners on the same address (`SO_REUSEPORT`:
    /// the kernel spreads connections over them), handed to their threads.
    more: Vec<std::net::TcpListener>,
    tls: Option<TlsAcceptor>,
    /// The admin API's own listener (`[admin]`), if it is on.
    admin: Option<AdminListener>,
}

impl Gateway {
    /// Loads the secret and TLS files and binds the listener: everything
    /// that can fail at start-up fails here, before serving.
    pub async fn bind(settings: Settings) -> Result<Self, StartError> {
        Self::bind_with_clock(settings, crate::store::system_clock()).await
    }

    /// As [`Self::bind`], with the stores timed by `clock`: tests pass a
    /// `store::ManualClock` and move it instead of sleeping. Not in the
    /// configuration: a product always runs on the system clock.
    pub async fn bind_with_clock(
        settings: Settings,
        clock: crate::store::SharedClock,
    ) -> Result<Self, StartError> {
        let secret = keys::load_or_create(&settings.server.secret_file)?;
        let tls = settings.server.tls.as_ref().map(tls_acceptor).transpose()?;
        let addr = settings.server.listen;
        let workers = settings.server.workers;
        let bind_err = |addr, source| StartError::Bind { addr, source };
        // SO_REUSEPORT would let a second otpgate join this one's port
        // silently (each with its own codes and limits): a plain bind first
        // fails if anything listens there.
        if workers > 1 && addr.port() != 0 {
            drop(std::net::TcpListener::bind(addr).map_err(|e| bind_err(addr, e))?);
        }
        let listener = listen(addr, workers > 1).map_err(|e| bind_err(addr, e))?;
        let bound = listener.local_addr().map_err(|e| bind_err(addr, e))?;
        let more = (1..workers)
            .map(|_| listen(bound, true).and_then(TcpListener::into_std))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| bind_err(bound, e))?;
        let admin = AdminListener::bind(&settings.admin).await?;
        let mut state = State::with_clock(settings, &secret, clock)?;
        if let Some(path) = &state.settings.audit {
            state.audit = Audit::open(path)?;
        }
        state.events = Events::standard(&state.audit);
        state.pumping.events_to(state.events.clone());
        let state = Arc::new(state);
        if state.providers.sandbox().is_some() {
            for line in [
                "SMS PROVIDER IS THE SANDBOX: no message leaves this machine,",
                "and every code is shown to anyone at /.otpgate/sandbox.",
                "Use it for demos and development only, never in production.",
            ] {
                tracing::warn!("{line}");
            }
        }
        let sms = &state.settings.sms;
        let whatsapp_first = sms.channels.first() == Some(&crate::config::Channel::Whatsapp)
            || sms
                .channels_by_country
                .values()
                .any(|c| c.first() == Some(&crate::config::Channel::Whatsapp));
        if whatsapp_first
            && state.settings.server.public_url.is_none()
            && state.providers.sandbox().is_none()
        {
            tracing::warn!(
                "WhatsApp comes first but server.public_url is not set: no delivery reports arrive, so every WhatsApp code is followed by an SMS after sms.fallback_after"
            );
        }
        Ok(Self {
            state,
            listener,
            more,
            tls,
            admin,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where the admin API listens, if it is on.
    /// The admin API's TCP address, when it listens on one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(AdminListener::tcp_addr)
    }

    pub fn state(&self) -> Arc<State> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting and gives
    /// in-flight requests up to `shutdown_grace` to finish. Worker 0 runs
    /// here (with the admin API); each other worker gets a thread with its
    /// own current-thread runtime, listener and upstream pool, so a request
    /// stays on one thread from accept to answer (thread per core, as nginx
    /// and pingora do; measured in bench/ against one multi-thread runtime).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let addr = self.local_addr();
        let Gateway {
            state,
            listener,
            more,
            tls,
            admin,
        } = self;
        let tls = tls.map(Arc::new);
        tracing::info!(%addr, tls = tls.is_some(), workers = more.len() + 1, "otpgate listening");
        if let Some(admin) = &admin {
            tracing::info!(admin = %admin.describe(), "admin API listening");
        }
        // Dropping the sender (this future cancelled) stops the workers too.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut finished = Vec::new();
        for (i, l) in more.into_iter().enumerate() {
            let (state, tls, mut stopped) = (state.clone(), tls.clone(), stopped.clone());
            let (done, finish) = tokio::sync::oneshot::channel::<()>();
            let worker = i + 1;
            let spawned = std::thread::Builder::new()
                .name(format!("otpgate-worker-{worker}"))
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    match runtime {
                        Ok(rt) => {
                            rt.block_on(async move {
                            let stop = async move {
                                let _ = stopped.wait_for(|s| *s).await;
                            };
                            match TcpListener::from_std(l) {
                                Ok(l) => {
                                    let w = Worker { state, tls, index: worker };
                                    w.accept(l, None, stop).await;
                                }
                                Err(e) => tracing::error!(worker, error = %e, "worker cannot use its listener"),
                            }
                            });
                            // Blocking tasks (a DNS lookup) must not hold shutdown past the grace period.
                            rt.shutdown_timeout(Duration::from_millis(100));
                        }
                        Err(e) => tracing::error!(worker, error = %e, "worker runtime did not start"),
                    }
                    let _ = done.send(());
                });
            match spawned {
                Ok(_) => finished.push(finish),
                // Its listener is closed with the closure: the kernel sends
                // its share of connections to the others.
                Err(e) => tracing::error!(worker, error = %e, "worker thread did not start"),
            }
        }
        let w = Worker {
            state: state.clone(),
            tls,
            index: 0,
        };
        w.accept(listener, admin, async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await;
        for f in finished {
            let _ = f.await;
        }
        // Timers on worker 0's runtime would outlive this call: a stopped
        // gateway sends no more fallbacks (their sealed codes die with it).
        state.timers.stop();
        state.audit.drain(AUDIT_DRAIN).await;
    }
}

/// A public listener bound with `SO_REUSEPORT` when several workers share
/// its address (Linux spreads new connections over them).
fn listen(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// One worker: accepts on its listener and serves on its own runtime.
struct Worker {
    state: Arc<State>,
    tls: Option<Arc<TlsAcceptor>>,
    index: usize,
}

impl Worker {
    /// Accepts until `stop`, then drains its connections for at most
    /// `shutdown_grace`.
    async fn accept(
        self,
        listener: TcpListener,
        admin: Option<AdminListener>,
        stop: impl Future<Output = ()>,
    ) {
        let state = &self.state;
        let builder = Arc::new(builder(state));
        let graceful = GracefulShutdown::new();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let watcher = graceful.watcher();
                        let (state, builder, tls) = (state.clone(), builder.clone(), self.tls.clone());
                        let worker = self.index;
                        tokio::spawn(async move {
                            serve_connection(state, builder, tls, stream, peer, worker, watcher).await;
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: keep serving what we have.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                () = accept_admin(admin.as_ref(), state, &graceful) => {}
                () = &mut stop => break,
            }
        }
        drop(listener);
        drop(admin);
        let grace = state.settings.server.shutdown_grace;
        if self.index == 0 {
            tracing::info!(grace = ?grace, "shutting down: no new connections, finishing requests in flight");
        }
        let deadline = tokio::time::Instant::now() + grace;
        tokio::select! {
            () = graceful.shutdown() => tracing::debug!(worker = self.index, "all connections closed"),
            () = tokio::time::sleep_until(deadline) => tracing::warn!(worker = self.index, "grace period over; closing remaining connections"),
        }
        // Upgraded connections (WebSockets) left hyper's watch when they
        // switched protocols: they get what is left of the same grace.
        state.tunnels.drain(deadline).await;
    }
}

/// The HTTP/1.1 + HTTP/2 connection builder with the head limits and the
/// header-read timeout.
fn builder(state: &State) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.settings.server.header_read_timeout)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD as u32);
    builder
}

async fn serve_connection(
    state: Arc<State>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    tls: Option<Arc<TlsAcceptor>>,
    stream: TcpStream,
    peer: SocketAddr,
    worker: usize,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let _ = stream.set_nodelay(true);
    // hyper's header_read_timeout starts only once the protocol is known; a
    // client that sends nothing, or only part of the HTTP/2 preface, must not
    // hold a connection open.
    let first_bytes = state.settings.server.header_read_timeout;
    if tls.is_none()
        && tokio::time::timeout(first_bytes, protocol_known(&stream))
            .await
            .is_err()
    {
        tracing::debug!(%peer, "no request within header_read_timeout; closing");
        return;
    }
    let conn = Conn {
        peer,
        forwarded_peer: crate::http::headers::Peer::new(peer.ip()),
        tls: tls.is_some(),
        worker,
        memo: Arc::default(),
    };
    let service = service_fn(move |req| {
        let state = state.clone();
        let conn = conn.clone();
        async move { Ok::<_, std::convert::Infallible>(service::handle(state, conn, req).await) }
    });
    let result = match tls {
        None => {
            watcher
                .watch(
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned(),
                )
                .await
        }
        Some(acceptor) => {
            let stream =
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            watcher
                .watch(
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned(),
                )
                .await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Accepts and serves one admin connection; never completes when the
/// admin API is off.
async fn accept_admin(
    admin: Option<&AdminListener>,
    state: &Arc<State>,
    graceful: &GracefulShutdown,
) {
    match admin {
        Some(admin) => admin.accept_and_serve(state, graceful.watcher()).await,
        None => std::future::pending().await,
    }
}

/// Waits until the first bytes tell HTTP/1 from HTTP/2 (RFC 9113 §3.4: the
/// client preface), or the peer closes.
async fn protocol_known(stream: &TcpStream) {
    const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut buf = [0u8; 24];
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        match stream.peek(&mut buf).await {
            Ok(n) if n > 0 && n < PREFACE.len() && buf[..n] == PREFACE[..n] => {
                // Part of the preface: wait for the rest (peeking again at
                // once would spin, the readiness stays set).
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => return,
        }
    }
}

fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            StartError::Tls(format!(
                "{}: cannot read certificates: {e}",
                files.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!(
            "{}: no certificate found",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        StartError::Tls(format!(
            "{}: cannot read the private key: {e}",
            files.key.display()
        ))
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(crate::http::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            StartError::Tls(format!(
                "the TLS provider refuses the default versions: {e}"
            ))
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(format!("certificate and key do not fit together: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
