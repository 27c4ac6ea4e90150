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
use xiaoneng_kit::background;
use xiaoneng_kit::calendar::LiveCalendars;
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
    /// How often each replica looks for calendar notices loaded at run time (and recomputes
    /// the deadlines they move), and how many cases one recompute transaction takes.
    pub calendar_refresh_ms: u64,
    pub recompute_batch: i64,
    /// Empty: real time. An RFC 3339 time starts the service's business clock there (drills,
    /// demos, tests that must play a given date); it runs on at real speed.
    pub business_time: String,
    /// How many times faster than real time the business clock runs (1: real speed; a drill
    /// or the simulated day runs at 60 or more).
    pub business_clock_rate: xiaoneng_kit::clock::ClockRate,
    /// 0: every official holiday notice this build carries. A year: only those up to it, as
    /// if the later ones were not yet published (drills and tests of the provisional
    /// calendar, whichever years are built in); a notice loaded at run time still applies.
    pub calendar_through: i32,
}

impl Default for CaseSettings {
    fn default() -> Self {
        CaseSettings {
            catalog_addr: "http://127.0.0.1:50051".into(),
            warn_days: 2,
            red_after_days: 5,
            timer_interval_ms: 1000,
            timer_batch: 100,
            calendar_refresh_ms: 1000,
            recompute_batch: 500,
            business_time: String::new(),
            business_clock_rate: Default::default(),
            calendar_through: 0,
        }
    }
}

impl DomainSettings for CaseSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        config::service_url("catalog_addr", &self.catalog_addr)?;
        config::positive("timer_interval_ms", self.timer_interval_ms as i64)?;
        config::positive("timer_batch", self.timer_batch)?;
        config::positive("calendar_refresh_ms", self.calendar_refresh_ms as i64)?;
        config::positive("recompute_batch", self.recompute_batch)?;
        config::business_clock(&self.business_time, self.business_clock_rate)
    }
}

/// Days of official calendar coverage below which operators are warned (the longest limit,
/// joint handling 45 + 15 working days, reaches about this far).
pub const COVERAGE_WARN_DAYS: i64 = 45;

fn warn_on_coverage(calendars: &LiveCalendars, today: chrono::NaiveDate) {
    let cal = calendars.current().calendars.for_region("000000");
    let left = cal.coverage_days_left(today);
    if left < COVERAGE_WARN_DAYS {
        tracing::warn!(
            days_left = left,
            covered_through = %domain::date(cal.covered_through(today)),
            "calendar coverage is short: deadlines past it are provisional until the next year's notice is loaded"
        );
    }
}

/// How often the provisional-deadline gauge is counted.
const PROVISIONAL_GAUGE_EVERY: Duration = Duration::from_secs(30);

/// One pass of the live calendar: apply new notices, export coverage, and recompute the open cases computed under an older calendar, batch by batch.
async fn calendar_pass(
    pool: &sqlx::PgPool,
    live: &LiveCalendars,
    policy: domain::Policy,
    clock: &BusinessClock,
    batch: i64,
) -> anyhow::Result<()> {
    live.refresh(pool).await?;
    live.export_coverage(clock.today());
    let snap = live.current();
    if snap.epoch > 0 {
        let notice = live.latest_label();
        let ctx = service::Ctx {
            calendars: &snap.calendars,
            epoch: snap.epoch,
            policy,
            now: clock.now(),
        };
        let started = std::time::Instant::now();
        let mut total = 0;
        loop {
            let n = service::recalendar(pool, &ctx, &notice, batch).await?;
            total += n;
            if (n as i64) < batch {
                break;
            }
        }
        if total > 0 {
            let secs = started.elapsed().as_secs_f64();
            metrics::counter!("case_deadlines_recomputed_total").increment(total as u64);
            tracing::info!(
                cases = total,
                seconds = secs,
                epoch = snap.epoch,
                "deadlines recomputed on the calendar"
            );
        }
    }
    Ok(())
}

/// Starts the service: database, relay, timer loop, and the gRPC server on `service.grpc_addr`.
pub async fn build(settings: Settings<CaseSettings>) -> anyhow::Result<RunningService> {
    let d = settings.domain.clone();
    let clock = BusinessClock::new(
        &d.business_time,
        d.business_clock_rate,
        "domain.business_time",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy = domain::Policy {
        warn_days: d.warn_days,
        red_after_days: d.red_after_days,
    };
    let catalog =
        xiaoneng_kit::catalog::Catalog::connect_lazy(&d.catalog_addr, "domain.catalog_addr")?;
    let f = Foundation::start(ServiceKind::Case, settings, sqlx::migrate!("./migrations")).await?;
    f.spawn_gauges(store::GAUGES);
    let calendars = LiveCalendars::new(xiaoneng_calendar::Calendars::national_through(
        (d.calendar_through > 0).then_some(d.calendar_through),
    ));
    calendars.refresh(&f.pool).await?;
    warn_on_coverage(&calendars, clock.today());
    let (pool, cals) = (f.pool.clone(), calendars.clone());
    let interval = Duration::from_millis(d.timer_interval_ms);
    f.spawn_background(move |stop| {
        timers::run(pool, cals, policy, clock, interval, d.timer_batch, stop)
    });
    let (pool, cals) = (f.pool.clone(), calendars.clone());
    let (every, batch) = (
        Duration::from_millis(d.calendar_refresh_ms),
        d.recompute_batch,
    );
    f.spawn_background(move |stop| {
        background::every("case_calendar", every, stop, move || {
            let (pool, cals) = (pool.clone(), cals.clone());
            async move { calendar_pass(&pool, &cals, policy, &clock, batch).await }
        })
    });
    // Zero until the first recompute, so an alert reads 0, not "no data".
    metrics::counter!("case_deadlines_recomputed_total").increment(0);
    // The provisional count scans every open provisional case: a gauge, not a per-second job.
    let pool = f.pool.clone();
    f.spawn_background(move |stop| {
        background::every(
            "case_provisional_gauge",
            PROVISIONAL_GAUGE_EVERY,
            stop,
            move || {
                let pool = pool.clone();
                async move {
                    let provisional = service::provisional_count(&pool).await?;
                    metrics::gauge!("case_provisional_deadlines").set(provisional as f64);
                    Ok(())
                }
            },
        )
    });
    let api = api::CaseApi::new(f.pool.clone(), catalog, calendars, policy, clock);
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(CaseServiceServer::new(api));
    Ok(f.spawn(routes, &[]))
}

#[cfg(test)]
mod reference {
    /// The README's configuration reference names every setting of this service (generated
    /// from the settings types' defaults, so a new key cannot go undocumented).
    #[test]
    fn the_readme_names_every_setting() {
        let readme = include_str!("../../../README.md");
        let missing = xiaoneng_kit::config::undocumented::<super::CaseSettings>(
            xiaoneng_kit::ServiceKind::Case,
            xiaoneng_kit::config::reference_section(readme),
        );
        assert!(
            missing.is_empty(),
            "not in the README's configuration section: {missing:?}"
        );
    }
}
