//! The complaint service (投诉举报 with reporter protection and an Open311 face).
//!
//! Layout (shared by all six services, ARCHITECTURE.md): [`api`] the gRPC adapter and
//! [`open311`] the Open311 GeoReport v2 adapter over the same use cases, [`service`] the use
//! cases, [`domain`] the negative list, the loop and the limits, [`vault`] the sealing of the
//! complainant's identity, [`store`] sqlx, [`events`] what it publishes, [`overdue`] the loop
//! of reminders and escalations, `migrations/`.

pub mod api;
pub mod domain;
pub mod events;
pub mod open311;
pub mod overdue;
pub mod service;
pub mod store;
pub mod vault;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use xiaoneng_kit::calendar::LiveCalendars;
use xiaoneng_kit::clock::BusinessClock;
use xiaoneng_kit::config::{self, ConfigError, DomainSettings, Settings};
use xiaoneng_kit::foundation::RunningService;
use xiaoneng_kit::{Foundation, ServiceKind};
use xiaoneng_proto::complaint::v1::complaint_service_server::ComplaintServiceServer;

use crate::service::{Complaints, Rules};

/// The key id of the development keys below: a start with it logs a warning. A deployment
/// sets its own keys from a Kubernetes Secret (`XIAONENG__DOMAIN__KEYS__<id>`).
pub const DEV_KEY_ID: &str = "dev-insecure";
const DEV_KEY: &str = "ZGV2LW9ubHkta2V5LW5ldmVyLWluLXByb2R1Y3Rpb24=";

/// The Open311 endpoint's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Open311Settings {
    /// Address the HTTP endpoint binds (port 0 picks a free one); empty disables it.
    pub addr: String,
    /// API keys (`api_key`) and the client each names; POST needs one.
    pub api_keys: BTreeMap<String, String>,
    /// The jurisdiction a request without `jurisdiction_id` falls in (the city or county the
    /// deployment serves); requests may name any county inside it.
    pub jurisdiction: String,
    /// Whether the public reads list a region's complaints, by region code (a county's own
    /// setting, else its city's; listed when neither says): `publish.410703 = false` withholds
    /// a county.
    pub publish: BTreeMap<String, bool>,
}

impl Default for Open311Settings {
    fn default() -> Self {
        Open311Settings {
            addr: format!("127.0.0.1:{}", ServiceKind::Complaint.default_port() + 2000),
            api_keys: BTreeMap::new(),
            jurisdiction: "410700".into(),
            publish: BTreeMap::new(),
        }
    }
}

/// The complaint service's own settings (`[domain]`, env `XIAONENG__DOMAIN__*`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplaintSettings {
    /// Working-day limits of every region without its own.
    pub limits: domain::Limits,
    /// A county's or a city's own limits, by region code.
    pub regions: BTreeMap<String, domain::Limits>,
    /// Categories a region adds to the national negative list, by region code.
    pub categories: BTreeMap<String, Vec<domain::Category>>,
    /// Identity sealing keys by key id (base64 of 32 bytes); `active_key` seals new rows.
    pub keys: BTreeMap<String, String>,
    pub active_key: String,
    /// The HMAC key of complainant fingerprints (base64 of 32 bytes).
    pub fingerprint_key: String,
    pub open311: Open311Settings,
    /// Where a target id is checked (a matter, a case, a ticket); empty: recorded as given.
    pub catalog_addr: String,
    pub case_addr: String,
    pub queue_addr: String,
    pub overdue_interval_ms: u64,
    pub overdue_batch: i64,
    /// Empty: real time. An RFC 3339 time starts the business clock there (drills, tests).
    pub business_time: String,
    /// How many times faster than real time the business clock runs (1: real speed; a drill
    /// or the simulated day runs at 60 or more).
    pub business_clock_rate: xiaoneng_kit::clock::ClockRate,
}

impl std::fmt::Debug for ComplaintSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys never reach a log line.
        f.debug_struct("ComplaintSettings")
            .field("limits", &self.limits)
            .field("regions", &self.regions)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("active_key", &self.active_key)
            .field("open311_addr", &self.open311.addr)
            .finish_non_exhaustive()
    }
}

impl Default for ComplaintSettings {
    fn default() -> Self {
        ComplaintSettings {
            limits: domain::Limits::default(),
            regions: BTreeMap::new(),
            categories: BTreeMap::new(),
            keys: BTreeMap::from([(DEV_KEY_ID.to_string(), DEV_KEY.to_string())]),
            active_key: DEV_KEY_ID.into(),
            fingerprint_key: DEV_KEY.into(),
            open311: Open311Settings::default(),
            catalog_addr: "http://127.0.0.1:50051".into(),
            case_addr: "http://127.0.0.1:50053".into(),
            queue_addr: "http://127.0.0.1:50052".into(),
            overdue_interval_ms: 1000,
            overdue_batch: 200,
            business_time: String::new(),
            business_clock_rate: Default::default(),
        }
    }
}

impl DomainSettings for ComplaintSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        config::positive("overdue_interval_ms", self.overdue_interval_ms as i64)?;
        config::positive("overdue_batch", self.overdue_batch)?;
        for (k, v) in [
            ("catalog_addr", &self.catalog_addr),
            ("case_addr", &self.case_addr),
            ("queue_addr", &self.queue_addr),
        ] {
            if !v.is_empty() {
                config::service_url(k, v)?;
            }
        }
        vault::Vault::new(&self.keys, &self.active_key, &self.fingerprint_key).map_err(|m| {
            ConfigError::Invalid {
                key: "domain.keys".into(),
                message: m,
            }
        })?;
        config::business_clock(&self.business_time, self.business_clock_rate)
    }
}

/// Starts the service: database, relay, the calendar-notice consumer, the overdue loop, gRPC
/// and the Open311 endpoint.
pub async fn build(settings: Settings<ComplaintSettings>) -> anyhow::Result<RunningService> {
    let d = settings.domain.clone();
    let clock = BusinessClock::new(
        &d.business_time,
        d.business_clock_rate,
        "domain.business_time",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let vault = vault::Vault::new(&d.keys, &d.active_key, &d.fingerprint_key)
        .map_err(anyhow::Error::msg)?;
    if d.active_key == DEV_KEY_ID {
        tracing::warn!(
            "identities are sealed with the development key: set domain.keys and domain.active_key"
        );
    }
    let targets = service::targets::Targets::connect(
        &d.catalog_addr,
        &d.case_addr,
        &d.queue_addr,
        xiaoneng_kit::auth::TokenMinter::new(&settings.auth),
    )?;
    let f = Foundation::start(
        ServiceKind::Complaint,
        settings,
        sqlx::migrate!("./migrations"),
    )
    .await?;
    f.spawn_gauges(store::GAUGES);
    f.spawn_consumer(
        "calendar",
        vec![ServiceKind::Case.topic()],
        service::NoticeHandler,
    )?;
    let complaints = Complaints {
        pool: f.pool.clone(),
        rules: Rules {
            default: d.limits,
            regions: d.regions.clone(),
            categories: d.categories.clone(),
        },
        vault: Arc::new(vault),
        calendars: LiveCalendars::new(xiaoneng_calendar::Calendars::national_only()),
        clock,
        targets,
    };
    let (c, every, batch) = (
        complaints.clone(),
        Duration::from_millis(d.overdue_interval_ms),
        d.overdue_batch,
    );
    f.spawn_background(move |stop| overdue::run(c, every, batch, stop));
    if !d.open311.addr.is_empty() {
        let listener = tokio::net::TcpListener::bind(&d.open311.addr).await?;
        tracing::info!(addr = %listener.local_addr()?, "Open311 GeoReport v2 listening");
        let app = open311::router(complaints.clone(), d.open311.clone());
        f.spawn_background(move |stop| async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "Open311 endpoint stopped");
            }
        });
    }
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(ComplaintServiceServer::new(api::ComplaintApi(complaints)));
    Ok(f.spawn(routes, api::PUBLIC_METHODS))
}

#[cfg(test)]
mod reference {
    /// The README's configuration reference names every setting of this service (generated
    /// from the settings types' defaults, so a new key cannot go undocumented).
    #[test]
    fn the_readme_names_every_setting() {
        let readme = include_str!("../../../README.md");
        let missing = xiaoneng_kit::config::undocumented::<super::ComplaintSettings>(
            xiaoneng_kit::ServiceKind::Complaint,
            xiaoneng_kit::config::reference_section(readme),
        );
        assert!(
            missing.is_empty(),
            "not in the README's configuration section: {missing:?}"
        );
    }
}
