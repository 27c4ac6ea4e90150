//! The accountability service (效能督查): consumes every service's events and turns them into
//! warnings, cards, rankings and bulletins.
//!
//! Layout (shared by all six services, ARCHITECTURE.md): [`api`] the gRPC adapter, [`service`]
//! the use cases (the ledger consumer among them), [`domain`] records and rules, [`store`] sqlx,
//! [`events`] what it publishes, `migrations/`, `rules/` the starter rule set. It keeps the
//! supervision ledger — every event applied exactly once, visible by region — and turns the
//! facts of the events into supervision records by each region's versioned rule set.

pub mod api;
pub mod domain;
pub mod events;
pub mod service;
pub mod store;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use xiaoneng_kit::clock::BusinessClock;
use xiaoneng_kit::config::{self, ConfigError, DomainSettings, Settings};
use xiaoneng_kit::foundation::RunningService;
use xiaoneng_kit::{Foundation, ServiceKind};
use xiaoneng_proto::accountability::v1::accountability_service_server::AccountabilityServiceServer;

/// The accountability service's own settings (`[domain]`, env `XIAONENG__DOMAIN__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountabilitySettings {
    /// How often the sweep looks for certificates that expired while their holder still has
    /// enforcement matters, and how many it claims per transaction.
    pub certificate_interval_ms: u64,
    pub certificate_batch: i64,
    /// Empty: real time. An RFC 3339 time starts the business clock there (drills, tests).
    pub business_time: String,
    /// How many times faster than real time the business clock runs (1: real speed; a drill
    /// or the simulated day runs at 60 or more).
    pub business_clock_rate: xiaoneng_kit::clock::ClockRate,
}

impl Default for AccountabilitySettings {
    fn default() -> Self {
        AccountabilitySettings {
            certificate_interval_ms: 60_000,
            certificate_batch: 200,
            business_time: String::new(),
            business_clock_rate: Default::default(),
        }
    }
}

impl DomainSettings for AccountabilitySettings {
    fn validate(&self) -> Result<(), ConfigError> {
        config::positive(
            "certificate_interval_ms",
            self.certificate_interval_ms as i64,
        )?;
        config::positive("certificate_batch", self.certificate_batch)?;
        config::business_clock(&self.business_time, self.business_clock_rate)
    }
}

/// Starts the service: database, relay, the ledger consumer over every topic, the
/// certificate-expiry sweep, and gRPC.
pub async fn build(settings: Settings<AccountabilitySettings>) -> anyhow::Result<RunningService> {
    let d = settings.domain.clone();
    let clock = BusinessClock::new(
        &d.business_time,
        d.business_clock_rate,
        "domain.business_time",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let f = Foundation::start(
        ServiceKind::Accountability,
        settings,
        sqlx::migrate!("./migrations"),
    )
    .await?;
    f.spawn_gauges(store::GAUGES);
    service::load_starter(&f.pool).await?;
    let topics = ServiceKind::ALL.iter().map(|k| k.topic()).collect();
    let handler = service::LedgerHandler { clock };
    f.spawn_consumer("ledger", topics, handler)?;
    let (pool, every, batch) = (
        f.pool.clone(),
        Duration::from_millis(d.certificate_interval_ms),
        d.certificate_batch,
    );
    f.spawn_background(move |stop| service::certificate_expiry(pool, clock, every, batch, stop));
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(AccountabilityServiceServer::new(
        api::AccountabilityApi::new(f.pool.clone(), clock),
    ));
    Ok(f.spawn(routes, &[]))
}

#[cfg(test)]
mod reference {
    /// The README's configuration reference names every setting of this service (generated
    /// from the settings types' defaults, so a new key cannot go undocumented).
    #[test]
    fn the_readme_names_every_setting() {
        let readme = include_str!("../../../README.md");
        let missing = xiaoneng_kit::config::undocumented::<super::AccountabilitySettings>(
            xiaoneng_kit::ServiceKind::Accountability,
            xiaoneng_kit::config::reference_section(readme),
        );
        assert!(
            missing.is_empty(),
            "not in the README's configuration section: {missing:?}"
        );
    }
}
