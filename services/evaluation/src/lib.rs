//! The evaluation service (好差评 and the 差评 closed loop).
//!
//! Layout (shared by all six services, ARCHITECTURE.md): [`api`] the gRPC adapter, [`service`]
//! the use cases (the invitation consumer among them), [`domain`] levels, invitations, the
//! rating rules and the loop, [`store`] sqlx, [`events`] what it publishes, [`overdue`] the
//! loop that reports overdue steps, `migrations/`.

pub mod api;
pub mod domain;
pub mod events;
pub mod overdue;
pub mod service;
pub mod store;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use xiaoneng_kit::calendar::LiveCalendars;
use xiaoneng_kit::clock::BusinessClock;
use xiaoneng_kit::config::{self, ConfigError, DomainSettings, Settings};
use xiaoneng_kit::foundation::RunningService;
use xiaoneng_kit::{Foundation, ServiceKind};
use xiaoneng_proto::evaluation::v1::evaluation_service_server::EvaluationServiceServer;

use crate::service::{Evaluation, RegionRules, Rules};

/// The evaluation service's own settings (`[domain]`, env `XIAONENG__DOMAIN__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationSettings {
    /// The rules of every region without its own: rating window and loop limits.
    pub rules: RegionRules,
    /// A county's or a city's own rules, by region code (a county without its own uses its
    /// city's).
    pub regions: BTreeMap<String, RegionRules>,
    /// When ratings look manipulated (bursts from one device, of one staff member).
    pub signals: domain::Signals,
    /// How often the overdue loop looks for loop steps past their deadline, and how many one
    /// pass takes.
    pub overdue_interval_ms: u64,
    pub overdue_batch: i64,
    /// Empty: real time. An RFC 3339 time starts the business clock there (drills, tests).
    pub business_time: String,
    /// How many times faster than real time the business clock runs (1: real speed; a drill
    /// or the simulated day runs at 60 or more).
    pub business_clock_rate: xiaoneng_kit::clock::ClockRate,
    /// 0: every official holiday notice this build carries. A year: only those up to it, as
    /// if the later ones were not yet published (drills and tests of the provisional
    /// calendar, whichever years are built in); a notice loaded at run time still applies.
    pub calendar_through: i32,
}

impl Default for EvaluationSettings {
    fn default() -> Self {
        EvaluationSettings {
            rules: RegionRules::default(),
            regions: BTreeMap::new(),
            signals: domain::Signals::default(),
            overdue_interval_ms: 1000,
            overdue_batch: 200,
            business_time: String::new(),
            business_clock_rate: Default::default(),
            calendar_through: 0,
        }
    }
}

impl DomainSettings for EvaluationSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        config::positive("overdue_interval_ms", self.overdue_interval_ms as i64)?;
        config::positive("overdue_batch", self.overdue_batch)?;
        config::positive("signals.window_minutes", self.signals.window_minutes as i64)?;
        for (code, r) in std::iter::once((&"rules".to_string(), &self.rules)).chain(&self.regions) {
            config::positive(
                &format!("regions.{code}.rating_window_days"),
                r.rating_window_days as i64,
            )?;
            config::positive(
                &format!("regions.{code}.rectify_days"),
                r.rectify_days as i64,
            )?;
            if !matches!(r.default_level_on_expiry, 0 | 3..=5) {
                return Err(ConfigError::Invalid {
                    key: format!("regions.{code}.default_level_on_expiry"),
                    message: "must be 0 (none) or a level from 3 to 5 (never a default 差评)"
                        .into(),
                });
            }
        }
        config::business_clock(&self.business_time, self.business_clock_rate)
    }
}

/// Starts the service: database, relay, the invitation consumer over the queue's and the case
/// service's events, the overdue loop, and gRPC.
pub async fn build(settings: Settings<EvaluationSettings>) -> anyhow::Result<RunningService> {
    let d = settings.domain.clone();
    let clock = BusinessClock::new(
        &d.business_time,
        d.business_clock_rate,
        "domain.business_time",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let rules = Rules {
        default: d.rules,
        regions: d.regions.clone(),
    };
    let f = Foundation::start(
        ServiceKind::Evaluation,
        settings,
        sqlx::migrate!("./migrations"),
    )
    .await?;
    f.spawn_gauges(store::GAUGES);
    let topics = vec![ServiceKind::Queue.topic(), ServiceKind::Case.topic()];
    f.spawn_consumer(
        "invitations",
        topics,
        service::InvitationHandler {
            rules: rules.clone(),
        },
    )?;
    let calendars = LiveCalendars::new(xiaoneng_calendar::Calendars::national_through(
        (d.calendar_through > 0).then_some(d.calendar_through),
    ));
    let eval = Evaluation {
        pool: f.pool.clone(),
        rules,
        signals: d.signals,
        calendars,
        clock,
    };
    let (e, every, batch) = (
        eval.clone(),
        Duration::from_millis(d.overdue_interval_ms),
        d.overdue_batch,
    );
    f.spawn_background(move |stop| overdue::run(e, every, batch, stop));
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(EvaluationServiceServer::new(api::EvaluationApi(eval)));
    Ok(f.spawn(routes, api::PUBLIC_METHODS))
}

#[cfg(test)]
mod reference {
    /// The README's configuration reference names every setting of this service (generated
    /// from the settings types' defaults, so a new key cannot go undocumented).
    #[test]
    fn the_readme_names_every_setting() {
        let readme = include_str!("../../../README.md");
        let missing = xiaoneng_kit::config::undocumented::<super::EvaluationSettings>(
            xiaoneng_kit::ServiceKind::Evaluation,
            xiaoneng_kit::config::reference_section(readme),
        );
        assert!(
            missing.is_empty(),
            "not in the README's configuration section: {missing:?}"
        );
    }
}
