//! The private stack a simulated day runs on: its own broker and fresh databases, the six
//! services on one business clock (started at the day's early morning, `rate` times faster
//! than real time), the starter catalog loaded for every county.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use xiaoneng_e2e::{bin_dir, Broker, ServiceProc};
use xiaoneng_kit::clock::cst;
use xiaoneng_kit::ServiceKind;

/// The simulation's view of the business clock the services run on: the business time is
/// `biz0` at the real moment `real0` and runs `rate` times faster.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    real0: DateTime<Utc>,
    biz0: DateTime<Utc>,
    pub rate: f64,
}

impl SimClock {
    pub fn new(biz0: DateTime<Utc>, rate: f64) -> Self {
        SimClock { real0: Utc::now(), biz0, rate }
    }

    pub fn at(&self, real: DateTime<Utc>) -> DateTime<Utc> {
        let us = (real - self.real0).num_microseconds().unwrap_or(0) as f64 * self.rate;
        self.biz0 + chrono::Duration::microseconds(us as i64)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.at(Utc::now())
    }

    /// The real moment the business clock reads `biz`.
    pub fn real_of(&self, biz: DateTime<Utc>) -> DateTime<Utc> {
        let us = (biz - self.biz0).num_microseconds().unwrap_or(0) as f64 / self.rate;
        self.real0 + chrono::Duration::microseconds(us as i64)
    }

    /// Waits (in real time) until the business clock reads `biz`.
    pub async fn until(&self, biz: DateTime<Utc>) {
        let left = self.real_of(biz) - Utc::now();
        if let Ok(d) = left.to_std() {
            tokio::time::sleep(d).await;
        }
    }

    /// Waits `minutes` business minutes.
    pub async fn minutes(&self, minutes: f64) {
        let secs = minutes * 60.0 / self.rate;
        tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
    }

    /// The business time now, as the services' `domain.business_time` setting reads it.
    pub fn setting_now(&self) -> String {
        self.now().with_timezone(&cst()).to_rfc3339()
    }
}

/// A county of the city 新乡市 (410700).
#[derive(Debug, Clone)]
pub struct County {
    pub code: String,
    pub name: String,
}

pub const COUNTIES: [(&str, &str); 12] = [
    ("410702", "红旗区"),
    ("410703", "卫滨区"),
    ("410704", "凤泉区"),
    ("410711", "牧野区"),
    ("410721", "新乡县"),
    ("410724", "获嘉县"),
    ("410725", "原阳县"),
    ("410726", "延津县"),
    ("410727", "封丘县"),
    ("410781", "卫辉市"),
    ("410782", "辉县市"),
    ("410783", "长垣市"),
];

pub const CITY: &str = "410700";

pub struct Stack {
    pub broker: Broker,
    pub catalog: ServiceProc,
    pub queue: ServiceProc,
    pub case: ServiceProc,
    pub evaluation: ServiceProc,
    pub complaint: ServiceProc,
    pub accountability: ServiceProc,
    pub clock: SimClock,
    /// The Open311 endpoint (host:port) and its client key.
    pub open311: String,
}

pub const OPEN311_KEY: &str = "simkey";

fn clock_env(clock: &SimClock) -> Vec<(String, String)> {
    vec![
        ("XIAONENG__DOMAIN__BUSINESS_TIME".into(), clock.setting_now()),
        ("XIAONENG__DOMAIN__BUSINESS_CLOCK_RATE".into(), clock.rate.to_string()),
    ]
}

async fn start(kind: ServiceKind, brokers: &str, clock: &SimClock, extra: &[(&str, &str)]) -> ServiceProc {
    let env = clock_env(clock);
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(extra);
    let mut p = ServiceProc::configure(kind, brokers, &all);
    p.start_detached();
    p.wait_serving().await;
    p
}

impl Stack {
    /// Starts the broker and the six services with the business clock reading `biz0` now.
    pub async fn start(biz0: DateTime<Utc>, rate: f64) -> anyhow::Result<Stack> {
        let broker = Broker::start();
        let b = broker.brokers();
        let clock = SimClock::new(biz0, rate);
        let catalog = start(ServiceKind::Catalog, &b, &clock, &[]).await;
        let cat = catalog.addr();
        let queue = start(
            ServiceKind::Queue,
            &b,
            &clock,
            &[("XIAONENG__DOMAIN__CATALOG_ADDR", &cat), ("XIAONENG__DOMAIN__TIDAL_INTERVAL_MS", "500")],
        )
        .await;
        let case = start(ServiceKind::Case, &b, &clock, &[("XIAONENG__DOMAIN__CATALOG_ADDR", &cat)]).await;
        let evaluation =
            start(ServiceKind::Evaluation, &b, &clock, &[("XIAONENG__DOMAIN__OVERDUE_INTERVAL_MS", "500")]).await;
        let (q, c) = (queue.addr(), case.addr());
        let key = format!("XIAONENG__DOMAIN__OPEN311__API_KEYS__{OPEN311_KEY}");
        let complaint = start(
            ServiceKind::Complaint,
            &b,
            &clock,
            &[
                ("XIAONENG__DOMAIN__CATALOG_ADDR", &cat),
                ("XIAONENG__DOMAIN__CASE_ADDR", &c),
                ("XIAONENG__DOMAIN__QUEUE_ADDR", &q),
                (&key, "sim-dashboard"),
            ],
        )
        .await;
        let accountability = start(ServiceKind::Accountability, &b, &clock, &[]).await;
        let open311 = complaint.env_of("XIAONENG__DOMAIN__OPEN311__ADDR").unwrap_or_default();
        Ok(Stack { broker, catalog, queue, case, evaluation, complaint, accountability, clock, open311 })
    }

    pub fn all(&self) -> [&ServiceProc; 6] {
        [&self.catalog, &self.queue, &self.case, &self.evaluation, &self.complaint, &self.accountability]
    }

    pub fn by_name(&mut self, name: &str) -> &mut ServiceProc {
        match name {
            "catalog" => &mut self.catalog,
            "queue" => &mut self.queue,
            "case" => &mut self.case,
            "evaluation" => &mut self.evaluation,
            "complaint" => &mut self.complaint,
            _ => &mut self.accountability,
        }
    }

    /// Kills a service (SIGKILL) and starts it again on the same clock, database and ports.
    pub async fn crash_and_restart(&mut self, name: &str, down: Duration) {
        let clock = self.clock;
        let p = self.by_name(name);
        p.kill();
        tokio::time::sleep(down).await;
        for (k, v) in clock_env(&clock) {
            p.set_env(&k, &v);
        }
        p.restart().await;
    }

    /// Loads the starter catalog into every county: 红旗区's file with the county's code, name
    /// and badge prefix in place of 红旗区's.
    pub fn load_catalogs(&self, counties: &[County]) -> anyhow::Result<()> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root");
        let text = std::fs::read_to_string(root.join("services/catalog/data/starter/410702.toml"))?;
        let dir = tempfile::tempdir()?;
        for (i, c) in counties.iter().enumerate() {
            let file = dir.path().join(format!("{}.toml", c.code));
            let own =
                text.replace("410702", &c.code).replace("红旗区", &c.name).replace("\"HQ-", &format!("\"X{i:02}-"));
            std::fs::write(&file, own)?;
            let out = std::process::Command::new(bin_dir().join("xiaoneng-catalog-load"))
                .arg("--file")
                .arg(&file)
                .env("XIAONENG__DATABASE__NAME", &self.catalog.database)
                .output()?;
            anyhow::ensure!(out.status.success(), "loading {}: {}", c.name, String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// Drops the stack's databases (the run's data is in its report).
    pub async fn drop_databases(self) {
        let names: Vec<String> = self.all().iter().map(|p| p.database.clone()).collect();
        drop(self);
        let s = xiaoneng_e2e::settings();
        let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&format!("{}/postgres", s.database.url))
            .await
        else {
            return;
        };
        for n in names {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{n}\" WITH (FORCE)")).execute(&pool).await;
        }
    }
}

/// The first moment of `date` at `hh:mm` China time.
pub fn at(date: NaiveDate, hh: u32, mm: u32) -> DateTime<Utc> {
    date.and_hms_opt(hh, mm, 0)
        .expect("valid time")
        .and_local_timezone(cst())
        .single()
        .expect("fixed offset")
        .with_timezone(&Utc)
}
