//! The queue service (预约, 取号, 叫号, windows, tidal windows).
//!
//! Layout (shared by all six services): [`api`] gRPC handlers, [`domain`] pure rules (priority
//! order, who serves what, numbers, waits, tides), [`store`] sqlx (the record), [`hot`] the
//! Redis queue (atomic call-next, rebuilt from PostgreSQL), [`tidal`] the tidal loop,
//! [`events`] what it publishes, `migrations/`.

pub mod api;
pub mod domain;
pub mod events;
pub mod hot;
pub mod reconcile;
pub mod service;
pub mod store;
pub mod tidal;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use xiaoneng_kit::clock::BusinessClock;
use xiaoneng_kit::config::{self, ConfigError, DomainSettings, Settings};
use xiaoneng_kit::foundation::RunningService;
use xiaoneng_kit::{Foundation, ServiceKind};
use xiaoneng_proto::queue::v1 as pb;
use xiaoneng_proto::queue::v1::queue_service_server::QueueServiceServer;

/// The queue service's own settings (`[domain]`, env `XIAONENG__DOMAIN__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// Where the catalog serves gRPC: matter names and accepting windows come from there.
    pub catalog_addr: String,
    /// Minutes after an appointment's start within which check-in still comes before walk-ins.
    pub grace_minutes: i64,
    /// Appointments one person may hold in a hall on one day.
    pub daily_appointment_cap: usize,
    /// How often tidal thresholds are looked at.
    pub tidal_interval_ms: u64,
    /// How often each hall's hot queue is compared with the record (and once at start).
    pub reconcile_interval_ms: u64,
    /// A call that took a ticket and has not settled after this long is taken for dead.
    pub in_flight_grace_ms: u64,
    /// Empty: real time. An RFC 3339 time starts the business clock there (drills, tests).
    pub business_time: String,
    /// How many times faster than real time the business clock runs (1: real speed; a drill
    /// or the simulated day runs at 60 or more).
    pub business_clock_rate: xiaoneng_kit::clock::ClockRate,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            catalog_addr: "http://127.0.0.1:50051".into(),
            grace_minutes: 15,
            daily_appointment_cap: 2,
            tidal_interval_ms: 1000,
            reconcile_interval_ms: 5000,
            in_flight_grace_ms: 10_000,
            business_time: String::new(),
            business_clock_rate: Default::default(),
        }
    }
}

impl DomainSettings for QueueSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        config::service_url("catalog_addr", &self.catalog_addr)?;
        config::positive("tidal_interval_ms", self.tidal_interval_ms as i64)?;
        config::positive("reconcile_interval_ms", self.reconcile_interval_ms as i64)?;
        config::positive("daily_appointment_cap", self.daily_appointment_cap as i64)?;
        config::positive("in_flight_grace_ms", self.in_flight_grace_ms as i64)?;
        if self.grace_minutes < 0 {
            return Err(ConfigError::Invalid {
                key: "domain.grace_minutes".into(),
                message: "must not be negative".into(),
            });
        }
        config::business_clock(&self.business_time, self.business_clock_rate)
    }
}

/// Methods anyone may call: the display board, waits and free slots.
pub const PUBLIC_METHODS: &[&str] = &[
    "/xiaoneng.queue.v1.QueueService/WatchBoard",
    "/xiaoneng.queue.v1.QueueService/EstimateWait",
    "/xiaoneng.queue.v1.QueueService/ListSlots",
];

/// Fans board updates published on Redis (by any replica) out to this replica's watchers.
async fn board_fanout(
    redis_url: String,
    tx: broadcast::Sender<pb::WatchBoardResponse>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let attempt = async {
            let client = redis::Client::open(redis_url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(hot::BOARD_CHANNEL).await?;
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                let payload: Vec<u8> = msg.get_payload()?;
                if let Ok(update) = pb::WatchBoardResponse::decode(payload.as_slice()) {
                    let _ = tx.send(update);
                }
            }
            Ok::<_, redis::RedisError>(())
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            r = attempt => if let Err(e) = r { tracing::warn!(error = %e, "board subscription lost; retrying") },
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Starts the service: database, relay, board fan-out, tidal loop and the gRPC server.
pub async fn build(settings: Settings<QueueSettings>) -> anyhow::Result<RunningService> {
    let d = settings.domain.clone();
    let clock = BusinessClock::new(
        &d.business_time,
        d.business_clock_rate,
        "domain.business_time",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let catalog =
        xiaoneng_kit::catalog::Catalog::connect_lazy(&d.catalog_addr, "domain.catalog_addr")?;
    let redis_url = settings.redis.url.clone();
    let f = Foundation::start(ServiceKind::Queue, settings, sqlx::migrate!("./migrations")).await?;
    f.spawn_gauges(store::GAUGES);
    let (board, _) = broadcast::channel(4096);
    let queue = Arc::new(service::Queue::new(
        f.pool.clone(),
        Arc::new(hot::Hot::new(f.redis.clone())),
        catalog,
        xiaoneng_calendar::Calendars::national_only(),
        clock,
        service::Settings {
            grace_minutes: d.grace_minutes,
            daily_cap: d.daily_appointment_cap,
        },
        board.clone(),
    ));
    f.spawn_background(move |stop| board_fanout(redis_url, board, stop));
    let tidal_api = queue.clone();
    let interval = Duration::from_millis(d.tidal_interval_ms);
    f.spawn_background(move |stop| tidal::run(tidal_api, interval, stop));
    let (reconcile_api, every) = (
        queue.clone(),
        Duration::from_millis(d.reconcile_interval_ms),
    );
    let grace = d.in_flight_grace_ms as i64;
    f.spawn_background(move |stop| reconcile::run(reconcile_api, every, grace, stop));
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(QueueServiceServer::new(api::QueueApi(queue)));
    Ok(f.spawn(routes, PUBLIC_METHODS))
}

#[cfg(test)]
mod reference {
    /// The README's configuration reference names every setting of this service (generated
    /// from the settings types' defaults, so a new key cannot go undocumented).
    #[test]
    fn the_readme_names_every_setting() {
        let readme = include_str!("../../../README.md");
        let missing = xiaoneng_kit::config::undocumented::<super::QueueSettings>(
            xiaoneng_kit::ServiceKind::Queue,
            xiaoneng_kit::config::reference_section(readme),
        );
        assert!(
            missing.is_empty(),
            "not in the README's configuration section: {missing:?}"
        );
    }
}
