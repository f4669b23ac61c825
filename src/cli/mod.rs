//! The command line: run the gateway, check a configuration, explain a
//! decision, run the demo, or call the running gateway's admin API. Signals: SIGTERM and
//! SIGINT both stop accepting and let requests in flight finish, for at most
//! `server.shutdown_grace`; SIGHUP reopens the audit log and the access
//! log's file (after log rotation) and never stops the process.

pub mod demo;
pub mod explain;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::admin::client::{self, AdminCommand};
use crate::config;
use crate::events::access::Access;
use crate::events::audit::Audit;
use crate::server::Gateway;

#[derive(Parser)]
#[command(
    name = "otpgate",
    version,
    about = "An SMS second factor in front of a web app's own login"
)]
struct Cli {
    /// The configuration file.
    #[arg(long, short, global = true, default_value = "config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and exit: 0 if it is good, 2 with the
    /// file, line and key of the first mistake if not.
    CheckConfig,
    /// Start a small built-in "legacy app" and the gateway in front of it,
    /// with the sandbox SMS provider, and print the URLs to open.
    Demo(crate::cli::demo::Ports),
    /// Show the gate's decision for one request, step by step, against the
    /// live app: which app, bypass, the session cookie (name only), the
    /// who-am-I answer, what the rules concluded, and warnings for likely
    /// mistakes. Calls the app's who-am-I path; sends no message. Exits 0
    /// (decided), 1 (decided, with warnings), 2 (bad configuration or
    /// arguments) or 3 (no decision: no app for the host, or the app's
    /// answer could not be had or used).
    Explain {
        /// The request's URL as a browser would ask for it, e.g.
        /// http://crm.example.com/admin/
        #[arg(long)]
        url: String,
        /// The browser's Cookie field for that site ('name=value; ...');
        /// give it twice, from two users' sessions, to check that the user
        /// varies.
        #[arg(long = "cookie")]
        cookies: Vec<String>,
    },
    /// Talk to the running gateway's admin API: list and lift account locks
    /// and pumping quarantines. Run as the user otpgate runs as (it reads
    /// the secret file).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The gateway and the demo log as their configuration says, once read;
    // the other commands print what they have to say.
    if matches!(
        cli.command,
        Some(Command::Admin { .. } | Command::Explain { .. })
    ) {
        init_logging(None);
    }
    match cli.command {
        Some(Command::CheckConfig) => check_config(&cli.config),
        Some(Command::Demo(ports)) => runtime().block_on(crate::cli::demo::run(&cli.config, ports)),
        Some(Command::Explain { url, cookies }) => runtime().block_on(async {
            match load(&cli.config) {
                Ok(settings) => crate::cli::explain::run(settings, &url, &cookies).await,
                Err(code) => code,
            }
        }),
        Some(Command::Admin { command }) => runtime().block_on(admin(&cli.config, &command)),
        None => runtime().block_on(run(&cli.config)),
    }
}

fn check_config(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(s) => {
            println!(
                "{}: OK ({} app{})",
                path.display(),
                s.apps.len(),
                if s.apps.len() == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// The configuration, or exit 2 with its first mistake.
fn load(path: &Path) -> Result<config::Settings, ExitCode> {
    config::load(path).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })
}

async fn admin(path: &Path, command: &AdminCommand) -> ExitCode {
    let settings = match load(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match client::run(&settings, command).await {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("otpgate admin: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(path: &Path) -> ExitCode {
    let settings = match load(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    init_logging(Some(&settings.log));
    serve(settings).await
}

/// Binds and serves until a signal; start-up errors go to stderr.
pub async fn serve(settings: config::Settings) -> ExitCode {
    serve_then(settings, |_| {}).await
}

/// As [`serve`], telling `bound` where the gateway listens once it does
/// (port 0 in the settings picks a free port).
pub async fn serve_then(
    settings: config::Settings,
    bound: impl FnOnce(std::net::SocketAddr),
) -> ExitCode {
    // Listening before anything is opened: SIGHUP's default action would end the process.
    let hangups = hangups();
    match Gateway::bind(settings).await {
        Ok(gateway) => {
            bound(gateway.local_addr());
            let state = gateway.state();
            reopen_on(hangups, state.audit.clone(), state.access.clone());
            gateway.serve(shutdown_signal()).await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("otpgate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The main thread's runtime, which is worker 0; `Gateway::serve` starts a
/// thread with its own runtime for each further worker.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}

/// Logging as `[log]` says (text or JSON lines, the level); `RUST_LOG`
/// overrides the level. Secrets never reach it in either format: log
/// lines name masked numbers and keyed hashes only.
pub fn init_logging(log: Option<&config::LogSettings>) {
    let level = log.map_or("info", |l| l.level.as_str());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second call (tests, the demo after a config) keeps the first.
    let _ = if log.is_some_and(|l| l.json) {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

/// SIGHUPs from now on; listening even with the audit log off keeps
/// SIGHUP's default action (ending the process) from surprising a
/// rotation script.
fn hangups() -> Hangups {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup())
            .inspect_err(|e| tracing::error!(error = %e, "cannot listen for SIGHUP"))
            .ok()
    }
}

/// Reopens the audit log and the access log's file on every SIGHUP, as
/// logrotate's `postrotate` expects.
fn reopen_on(hangups: Hangups, audit: Audit, access: Access) {
    #[cfg(unix)]
    if let Some(mut hangups) = hangups {
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!(
                    audit = audit.is_on(),
                    access = access.is_on(),
                    "SIGHUP received: reopening the audit log and the access log"
                );
                audit.reopen();
                access.reopen();
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (hangups, audit, access);
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
