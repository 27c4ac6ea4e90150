//! What a service's `build` starts with: bound listener, migrated database, Redis, the outbox
//! relay, consumers, and the gRPC server — and the order they stop in.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::RoutesBuilder;

use crate::auth::TokenVerifier;
use crate::config::{NoDomain, Settings};
use crate::consumer::{EventHandler, IdempotentConsumer};
use crate::outbox::Relay;
use crate::server::GrpcLayer;
use crate::{db, kafka, ServiceKind};

pub struct Foundation<D = NoDomain> {
    pub kind: ServiceKind,
    pub settings: Settings<D>,
    pub pool: PgPool,
    pub redis: redis::aio::ConnectionManager,
    /// Cancelled to stop the service (signal, test, or a fatal error).
    pub shutdown: CancellationToken,
    /// Cancelled after the server stopped: the relay flushes, consumers commit.
    background: CancellationToken,
    tasks: TaskTracker,
    listener: TcpListener,
}

/// A started service.
pub struct RunningService {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl RunningService {
    /// Waits until the service stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.handle.await?
    }

    /// Stops the service gracefully and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }
}

impl<D> Foundation<D> {
    pub async fn start(
        kind: ServiceKind,
        settings: Settings<D>,
        migrations: Migrator,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.service.grpc_addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding {}: {e}", settings.service.grpc_addr))?;
        let pool = db::connect(&settings.database).await?;
        db::migrate(&pool, migrations).await?;
        let client = redis::Client::open(settings.redis.url.as_str())?;
        let mut redis = tokio::time::timeout(
            Duration::from_secs(10),
            redis::aio::ConnectionManager::new(client),
        )
        .await
        .map_err(|_| anyhow::anyhow!("redis at {} did not answer", settings.redis.url))??;
        let _: String = redis::cmd("PING").query_async(&mut redis).await?;
        let me = Foundation {
            kind,
            settings,
            pool,
            redis,
            shutdown: CancellationToken::new(),
            background: CancellationToken::new(),
            tasks: TaskTracker::new(),
            listener,
        };
        me.spawn_relay()?;
        Ok(me)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Creates `topics` when missing, retrying until the broker answers (or shutdown).
    fn topics_ready(&self, topics: Vec<String>) -> impl Future<Output = bool> + Send + 'static {
        let kafka = self.settings.kafka.clone();
        let stop = self.background.clone();
        async move {
            loop {
                match kafka::ensure_topics(&kafka, &topics).await {
                    Ok(_) => return true,
                    Err(e) => tracing::warn!(error = %e, "kafka not ready; retrying"),
                }
                tokio::select! {
                    _ = stop.cancelled() => return false,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    }

    fn spawn_relay(&self) -> anyhow::Result<()> {
        let (kafka, client_id) = (
            self.settings.kafka.clone(),
            format!("xiaoneng-{}", self.kind.name()),
        );
        let make = Box::new(move || kafka::producer(&kafka, &client_id));
        let relay = Relay::new(self.pool.clone(), make, self.settings.outbox.clone())?;
        let ready = self.topics_ready(vec![self.kind.topic()]);
        let stop = self.background.clone();
        self.tasks.spawn(async move {
            if ready.await {
                relay.run(stop).await;
            }
        });
        Ok(())
    }

    /// Runs an idempotent consumer named `name` over `topics` until the service stops.
    pub fn spawn_consumer<H: EventHandler>(
        &self,
        name: &str,
        topics: Vec<String>,
        handler: H,
    ) -> anyhow::Result<()> {
        let consumer = kafka::consumer(
            &self.settings.kafka,
            &self.settings.consumer.group_id,
            &format!("xiaoneng-{}-{name}", self.kind.name()),
        )?;
        let c = IdempotentConsumer::new(
            name,
            self.pool.clone(),
            consumer,
            handler,
            self.settings.consumer.clone(),
        );
        let ready = self.topics_ready(topics.clone());
        let stop = self.background.clone();
        let fatal = self.shutdown.clone();
        self.tasks.spawn(async move {
            if ready.await {
                if let Err(e) = c.run(topics, stop).await {
                    tracing::error!(error = %e, "consumer failed; stopping the service");
                    fatal.cancel();
                }
            }
        });
        Ok(())
    }

    /// Runs a background loop (timers, schedulers) until the service stops: `f` gets the token
    /// cancelled after the server stopped, and the service waits for it like for the relay.
    pub fn spawn_background<F, Fut>(&self, f: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(f(self.background.clone()));
    }

    /// Sets the service's domain gauges from the database every 15 seconds.
    pub fn spawn_gauges(&self, queries: &'static [crate::gauges::GaugeQuery]) {
        let pool = self.pool.clone();
        self.spawn_background(move |stop| {
            crate::gauges::run(pool, queries, Duration::from_secs(15), stop)
        });
    }

    /// Starts serving `routes`; methods in `public_methods` need no token.
    pub fn spawn(self, routes: RoutesBuilder, public_methods: &[&str]) -> RunningService {
        let addr = self.local_addr();
        let shutdown = self.shutdown.clone();
        let layer = GrpcLayer::new(TokenVerifier::new(&self.settings.auth), public_methods);
        let grace = Duration::from_secs(self.settings.service.shutdown_grace_secs);
        let Foundation {
            kind,
            listener,
            background,
            tasks,
            shutdown: stop,
            pool,
            ..
        } = self;
        let handle = tokio::spawn(async move {
            let served =
                crate::server::serve(listener, kind, routes, layer, stop.clone(), grace).await;
            // The server is down (or failed): let the relay flush and consumers commit.
            stop.cancel();
            background.cancel();
            tasks.close();
            if tokio::time::timeout(Duration::from_secs(15), tasks.wait())
                .await
                .is_err()
            {
                tracing::warn!("background tasks did not stop in time");
            }
            pool.close().await;
            tracing::info!(service = kind.name(), "stopped");
            served
        });
        RunningService {
            addr,
            shutdown,
            handle,
        }
    }
}

/// The whole `main` of a service binary: load and validate config (exit 2 naming the key on
/// error), start telemetry, build the service, run until SIGINT or SIGTERM.
pub fn run_main<D, F, Fut>(kind: ServiceKind, build: F) -> ExitCode
where
    D: crate::config::DomainSettings,
    F: FnOnce(Settings<D>) -> Fut,
    Fut: Future<Output = anyhow::Result<RunningService>>,
{
    let settings = match crate::config::load::<D>(kind) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xiaoneng-{}: {e}", kind.name());
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xiaoneng-{}: cannot start the runtime: {e}", kind.name());
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async move {
        let _telemetry = crate::telemetry::init(kind.name(), &settings.telemetry)?;
        crate::telemetry::init_metrics(&settings.service)?;
        let running = build(settings).await?;
        tracing::info!(service = kind.name(), addr = %running.addr, "serving");
        let stop = running.shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            stop.cancel();
        });
        running.wait().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xiaoneng-{}: {e:#}", kind.name());
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
