//! `drover server`: the control plane, until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::dispatch::Settings;
use crate::server::{self, Config};

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Where everything lives: database, keys, TLS certificate.
    #[arg(long, default_value_os_t = super::default_server_dir())]
    pub data_dir: PathBuf,
    /// Address to listen on (HTTPS).
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: String,
    /// PEM certificate chain to serve instead of the generated one.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Region name reported to API clients.
    #[arg(long, default_value = "ap-guangzhou")]
    pub region: String,
    /// Seconds a task waits for an offline instance before DELIVER_FAILED.
    #[arg(long, default_value_t = 600)]
    pub deliver_timeout: u64,
    /// Seconds past a task's timeout before a silent agent's task is TASK_TIMEOUT.
    #[arg(long, default_value_t = 60)]
    pub result_grace: u64,
    /// Most tasks one agent is given at once; the rest wait in the database
    /// (an agent's own --max-tasks, if lower, wins).
    #[arg(long, default_value_t = crate::protocol::DEFAULT_MAX_TASKS,
          value_parser = clap::value_parser!(u32).range(1..=512))]
    pub agent_slots: u32,
    /// Seconds between agent heartbeats; an agent silent for three of them
    /// is dropped and shown Offline.
    #[arg(long, default_value_t = crate::protocol::HEARTBEAT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub heartbeat: u64,
    /// Time zone invokers' crontab expressions are read in: an IANA name
    /// (TAT itself uses Asia/Shanghai) or "local". Default: the server's
    /// local time zone.
    #[arg(long, default_value = "local")]
    pub schedule_tz: crate::scheduler::Zone,
    /// Seconds a trigger missed while the server was down may be late and
    /// still run once on start-up; older ones are recorded as missed.
    #[arg(long, default_value_t = 300)]
    pub schedule_grace: u64,
    /// Attempts at delivering a webhook notification before it is FAILED.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub webhook_attempts: u32,
    /// Milliseconds before the second attempt at a webhook delivery; each
    /// further wait doubles, up to --webhook-max-backoff.
    #[arg(long, default_value_t = 1000)]
    pub webhook_backoff_ms: u64,
    /// Longest wait, in milliseconds, between two webhook attempts.
    #[arg(long, default_value_t = 60_000)]
    pub webhook_max_backoff_ms: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (plain HTTP, no
    /// authentication: bind it to loopback or a monitoring network).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Address ranges (CIDR,...) webhooks may be delivered to although they
    /// are loopback, private, link-local or metadata addresses, which are
    /// refused by default. Example: 10.20.0.0/16,127.0.0.1/32.
    #[arg(long, default_value = "")]
    pub webhook_allow: crate::notify::Destinations,
    /// Open connections one source address (IPv6: one /64) may hold;
    /// agents' connections stop counting once they have authenticated.
    #[arg(long, default_value_t = 1024)]
    pub max_connections_per_source: usize,
    /// Of those, connections that have not yet sent a whole request head
    /// (the slowloris bound).
    #[arg(long, default_value_t = 64)]
    pub max_pending_per_source: usize,
    /// Open connections in total.
    #[arg(long, default_value_t = 16_384)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (TLS included);
    /// also how long an idle kept-alive connection stays open.
    #[arg(long, default_value_t = 20)]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body and get its answer.
    #[arg(long, default_value_t = 60)]
    pub request_timeout: u64,
    /// Output kept per task, in bytes; the rest is counted as Dropped and
    /// the output is marked incomplete. 0 keeps all of it.
    #[arg(long, default_value_t = crate::store::limits::DEFAULT_MAX_OUTPUT)]
    pub max_output_bytes: i64,
    /// Days finished invocations (tasks, output, webhook deliveries) and
    /// invoker records are kept; 0 keeps them forever. Pruned daily.
    #[arg(long, default_value_t = 90)]
    pub retention_days: u32,
    /// Days audit events are kept; 0 keeps them forever.
    #[arg(long, default_value_t = 365)]
    pub audit_retention_days: u32,
    /// Days terminal sessions and their recordings are kept after they
    /// end; 0 keeps them forever.
    #[arg(long, default_value_t = 90)]
    pub session_retention_days: u32,
    /// Bytes of a session's output (and, separately, input) a recording
    /// keeps; past it the recording is marked truncated. 0: no cap.
    #[arg(long, default_value_t = crate::session::record::DEFAULT_MAX_BYTES)]
    pub session_record_max_bytes: u64,
    /// Record what users type in every session, not only where a policy
    /// (tat:RecordSessionInput) asks for it.
    #[arg(long)]
    pub record_input: bool,
    /// Serve the ssh gateway on ADDR (e.g. 0.0.0.0:2222): `ssh -p 2222
    /// PERSON+INSTANCE[+LOGIN]@host` opens a session on that instance. Its
    /// host key is made on first start in DATA_DIR/ssh/.
    #[arg(long, value_name = "ADDR")]
    pub ssh_listen: Option<String>,
    /// Open ssh connections one source address may hold.
    #[arg(long, default_value_t = crate::ssh::DEFAULT_PER_SOURCE)]
    pub ssh_max_connections_per_source: usize,
    /// Of those, connections not yet signed in.
    #[arg(long, default_value_t = crate::ssh::DEFAULT_PENDING_PER_SOURCE)]
    pub ssh_max_pending_per_source: usize,
    /// Open ssh connections in total.
    #[arg(long, default_value_t = crate::ssh::DEFAULT_TOTAL)]
    pub ssh_max_connections: usize,
    /// Seconds an ssh client has to sign in.
    #[arg(long, default_value_t = crate::ssh::DEFAULT_LOGIN_GRACE_SECS)]
    pub ssh_login_grace: u64,
    /// Accept TC3 requests that leave the body unsigned
    /// (`X-TC-Content-SHA256: UNSIGNED-PAYLOAD`, the SDKs' `unsignedPayload`).
    /// Off by default: such a request's body could be swapped in transit.
    #[arg(long)]
    pub allow_unsigned_payload: bool,
    /// Seconds an interactive session may go without input or output
    /// before it is closed.
    #[arg(long, default_value_t = 1800)]
    pub session_idle_timeout: u64,
    /// Longest an interactive session may last, in seconds.
    #[arg(long, default_value_t = 43200)]
    pub session_max_duration: u64,
    /// Interactive sessions one user may hold at once.
    #[arg(long, default_value_t = 10)]
    pub max_sessions_per_user: usize,
    /// Interactive sessions one instance may carry at once.
    #[arg(long, default_value_t = 20)]
    pub max_sessions_per_instance: usize,
}

pub fn main(a: ServerArgs) -> anyhow::Result<ExitCode> {
    super::init_tracing();
    let metrics_listen = a.metrics_listen.clone();
    let ssh_settings = a.ssh_listen.clone().map(|addr| {
        let mut s = crate::ssh::Settings::new(addr);
        s.limits.per_source = a.ssh_max_connections_per_source.max(1);
        s.limits.pending_per_source = a.ssh_max_pending_per_source.max(1);
        s.limits.total = a.ssh_max_connections.max(1);
        s.login_grace = Duration::from_secs(a.ssh_login_grace.max(1));
        s
    });
    let data_dir = a.data_dir.clone();
    let cfg = Config {
        data_dir: a.data_dir,
        listen: a.listen,
        tls_cert: a.tls_cert,
        tls_key: a.tls_key,
        region: a.region,
        settings: Settings {
            deliver_timeout_ms: (a.deliver_timeout as i64) * 1000,
            result_grace_ms: (a.result_grace as i64) * 1000,
            agent_slots: a.agent_slots,
            heartbeat_secs: a.heartbeat,
            ..Settings::default()
        },
        schedule: crate::scheduler::Settings {
            zone: a.schedule_tz,
            grace_ms: (a.schedule_grace as i64) * 1000,
        },
        webhooks: crate::notify::Settings {
            max_attempts: a.webhook_attempts,
            first_backoff_ms: a.webhook_backoff_ms,
            max_backoff_ms: a.webhook_max_backoff_ms.max(a.webhook_backoff_ms),
            allow: a.webhook_allow,
            ..crate::notify::Settings::default()
        },
        ops: server::OpsSettings {
            net: crate::netguard::Limits {
                per_source: a.max_connections_per_source.max(1),
                pending_per_source: a.max_pending_per_source.max(1),
                total: a.max_connections.max(1),
                header_timeout: Duration::from_secs(a.header_timeout.max(1)),
                request_timeout: Duration::from_secs(a.request_timeout.max(1)),
            },
            max_output_bytes: a.max_output_bytes.max(0),
            retention: crate::store::retention::Retention::from_days(
                a.retention_days,
                a.audit_retention_days,
            )
            .with_session_days(a.session_retention_days),
            recording: crate::session::record::Settings {
                max_bytes: a.session_record_max_bytes,
                record_input: a.record_input,
            },
            sessions: crate::session::Limits {
                idle_timeout: Duration::from_secs(a.session_idle_timeout.max(1)),
                max_duration: Duration::from_secs(a.session_max_duration.max(1)),
                per_user: a.max_sessions_per_user.max(1),
                per_instance: a.max_sessions_per_instance.max(1),
                ..Default::default()
            },
            ..server::OpsSettings::default()
        },
        allow_unsigned_payload: a.allow_unsigned_payload,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let running = server::start(cfg).await?;
        if let Some(addr) = metrics_listen {
            let l = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?;
            let bound = l.local_addr()?;
            // Like server.addr: lets scripts find a port chosen with :0.
            let _ = std::fs::write(data_dir.join("metrics.addr"), bound.to_string());
            eprintln!("drover metrics on http://{bound}/metrics");
            tokio::spawn(server::metrics::serve(
                l,
                running.api.clone(),
                running.shutdown.clone(),
            ));
        }
        eprintln!(
            "drover server listening on https://{} (certificate {})",
            running.addr,
            running.cert_path.display()
        );
        if let Some(settings) = ssh_settings {
            let gw = crate::ssh::start(
                running.api.clone(),
                &data_dir,
                settings,
                running.shutdown.clone(),
            )
            .await?;
            eprintln!(
                "drover ssh gateway on {} (host key {})",
                gw.addr, gw.info.fingerprint
            );
        }
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.stop().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
