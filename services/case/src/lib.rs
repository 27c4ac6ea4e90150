//! The case service (办件 lifecycle under the legal clock).
//!
//! Layout (shared by all six services): [`api`] gRPC handlers (mapping only), [`domain`] pure
//! rules (state machine, one-time notice, deemed acceptance, 容缺, parallel review,
//! escalation), [`store`] sqlx, [`timers`] the index of due times and its firing loop,
//! [`events`] what it publishes, `migrations/`.

pub mod api;
pub mod domain;
pub mod events;
pub mod service;
pub mod store;
pub mod timers;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use xiaoneng_kit::clock::BusinessClock;
use xiaoneng_kit::config::{self, ConfigError, DomainSettings, Settings};
use xiaoneng_kit::foundation::RunningService;
use xiaoneng_kit::{Foundation, ServiceKind};
use xiaoneng_proto::case::v1::case_service_server::CaseServiceServer;

/// The case service's own settings (`[domain]`, env `XIAONENG__DOMAIN__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaseSettings {
    /// Where the catalog serves gRPC: matter terms come from there.
    pub catalog_addr: String,
    /// A warning when this many working days or fewer are left on a clock.
    pub warn_days: u32,
    /// A red card when a clock is more than this many working days overdue (a yellow card
    /// comes the first day past the deadline).
    pub red_after_days: u32,
    /// How often the timer loop looks for due timers, and how many cases one pass takes.
    pub timer_interval_ms: u64,
    pub timer_batch: i64,
    /// Empty: real time. An RFC 3339 time starts the service's business clock there (drills,
    /// demos, tests that must play a given date); it runs on at real speed.
    pub business_time: String,
}

impl Default for CaseSettings {
    fn default() -> Self {
        CaseSettings {
            catalog_addr: "http://127.0.0.1:50051".into(),
            warn_days: 2,
            red_after_days: 5,
            timer_interval_ms: 1000,
            timer_batch: 100,
            business_time: String::new(),
        }
    }
}

impl DomainSettings for CaseSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        config::service_url("catalog_addr", &self.catalog_addr)?;
        config::positive("timer_interval_ms", self.timer_interval_ms as i64)?;
        config::positive("timer_batch", self.timer_batch)?;
        config::business_time(&self.business_time)
    }
}

/// Starts the service: database, relay, timer loop, and the gRPC server on `service.grpc_addr`.
pub async fn build(settings: Settings<CaseSettings>) -> anyhow::Result<RunningService> {
    let d = settings.domain.clone();
    let clock = BusinessClock::starting_at(&d.business_time, "domain.business_time")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy = domain::Policy {
        warn_days: d.warn_days,
        red_after_days: d.red_after_days,
    };
    let catalog =
        xiaoneng_kit::catalog::Catalog::connect_lazy(&d.catalog_addr, "domain.catalog_addr")?;
    let f = Foundation::start(ServiceKind::Case, settings, sqlx::migrate!("./migrations")).await?;
    let calendars = xiaoneng_calendar::Calendars::national_only();
    let (pool, cals) = (f.pool.clone(), calendars.clone());
    let interval = Duration::from_millis(d.timer_interval_ms);
    f.spawn_background(move |stop| {
        timers::run(pool, cals, policy, clock, interval, d.timer_batch, stop)
    });
    let api = api::CaseApi::new(f.pool.clone(), catalog, calendars, policy, clock);
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(CaseServiceServer::new(api));
    Ok(f.spawn(routes, &[]))
}
