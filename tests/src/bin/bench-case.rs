//! Case benchmark (run by ./scripts/bench), release binaries against the real stack:
//!
//! 1. Transitions: many concurrent clients carry cases through submit → accept → review →
//!    decision → certificate → delivery → close; every call is one timed transition (row lock,
//!    history, outbox event and timer index in one transaction).
//! 2. Timer firing lag: a large number of open cases in the timer index, a batch of them due at
//!    the same moment; the service's business clock is started just before it. The lag of each
//!    firing is `fired_at - due_at` as the service recorded it.
//! 3. Calendar recompute: a region's closure loaded at run time over all those open cases; the
//!    time until every one is computed under the new calendar, and how many deadlines moved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use xiaoneng_e2e::proto::case::v1 as cpb;
use xiaoneng_e2e::proto::case::v1::case_service_client::CaseServiceClient;
use xiaoneng_e2e::proto::catalog::v1 as pb;
use xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use xiaoneng_e2e::{bin_dir, channel, shared_brokers, token, Figures, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

type Client = CaseServiceClient<xiaoneng_e2e::Intercepted>;

/// The starter catalog's first matter with a promised limit of 3 days or more, and its required materials.
async fn a_matter(catalog: &ServiceProc) -> anyhow::Result<(String, Vec<String>)> {
    let mut c = CatalogServiceClient::new(channel(&catalog.addr(), None).await);
    let list = c
        .list_matters(pb::ListMattersRequest { region_code: "410702".into(), page_size: 100, ..Default::default() })
        .await?
        .into_inner()
        .matters;
    for m in list {
        let terms = m.terms.unwrap_or_default();
        if terms.promised_limit_days >= 3 {
            let materials = terms.materials.iter().filter(|x| x.required).map(|x| x.name.clone()).collect();
            return Ok((m.matter_id, materials));
        }
    }
    anyhow::bail!("no matter with a promised limit of 3 days or more")
}

/// One lifecycle; returns the latency of each call (µs) or None on the first error.
async fn lifecycle(c: &mut Client, matter: &str, materials: &[String]) -> Result<Vec<u64>, tonic::Status> {
    let mut micros = Vec::with_capacity(7);
    let t = Instant::now();
    let k = c
        .submit_case(cpb::SubmitCaseRequest {
            region_code: "410702".into(),
            matter_id: matter.into(),
            applicant: Some(cpb::Applicant { name: "压测申请人".into(), ..Default::default() }),
            supplied_materials: materials.to_vec(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .case
        .unwrap_or_default();
    micros.push(t.elapsed().as_micros() as u64);
    let (id, mut v) = (k.id, k.version);
    macro_rules! step {
        ($call:ident, $req:expr) => {{
            let t = Instant::now();
            let k = c.$call($req).await?.into_inner().case.unwrap_or_default();
            micros.push(t.elapsed().as_micros() as u64);
            v = k.version;
        }};
    }
    step!(
        accept_case,
        cpb::AcceptCaseRequest { id: id.clone(), expected_version: v, tolerance_due_date: String::new() }
    );
    step!(
        start_review,
        cpb::StartReviewRequest {
            id: id.clone(),
            expected_version: v,
            departments: vec!["市场监管".into()],
            step: String::new()
        }
    );
    step!(
        conclude_review_step,
        cpb::ConcludeReviewStepRequest {
            id: id.clone(),
            expected_version: v,
            department: "市场监管".into(),
            approve: true,
            reason: String::new()
        }
    );
    step!(
        issue_certificate,
        cpb::IssueCertificateRequest { id: id.clone(), expected_version: v, certificate_number: "BENCH-1".into() }
    );
    step!(deliver_case, cpb::DeliverCaseRequest { id: id.clone(), expected_version: v, method: "窗口领取".into() });
    step!(close_case, cpb::CloseCaseRequest { id: id.clone(), expected_version: v });
    let _ = v;
    Ok(micros)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 64);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let open_cases: i64 = env_or("BENCH_OPEN_CASES", 100_000);
    let due_cases: i64 = env_or("BENCH_DUE_CASES", 5_000);
    let brokers = shared_brokers();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &brokers).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root");
    let out = std::process::Command::new(bin_dir().join("xiaoneng-catalog-load"))
        .arg("--file")
        .arg(root.join("services/catalog/data/starter/410702.toml"))
        .env("XIAONENG__DATABASE__NAME", &catalog.database)
        .output()?;
    anyhow::ensure!(out.status.success(), "loader: {}", String::from_utf8_lossy(&out.stderr));
    let (matter, materials) = a_matter(&catalog).await?;
    let catalog_addr = catalog.addr();
    let tok = token("bench-clerk", &[roles::CLERK, roles::REVIEWER], "410702");

    // 1. Transitions.
    let case = ServiceProc::start_with(
        ServiceKind::Case,
        &brokers,
        &[("XIAONENG__DOMAIN__CATALOG_ADDR", catalog_addr.as_str())],
    )
    .await;
    println!(
        "case benchmark: {concurrency} concurrent clients for {seconds} s, each carrying cases through 7 transitions"
    );
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let (matter_a, materials_a) = (Arc::new(matter.clone()), Arc::new(materials.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let mut c = CaseServiceClient::new(channel(&case.addr(), Some(&tok)).await);
        let (m, mats) = (matter_a.clone(), materials_a.clone());
        tasks.spawn(async move {
            let (mut micros, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < until {
                match lifecycle(&mut c, &m, &mats).await {
                    Ok(v) => micros.extend(v),
                    Err(e) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("transition failed: {e}");
                        }
                    }
                }
            }
            (micros, errors)
        });
    }
    let mut figures = Figures { requests: 0, errors: 0, seconds: 0.0, micros: Vec::new() };
    while let Some(r) = tasks.join_next().await {
        let (m, e) = r?;
        figures.micros.extend(m);
        figures.errors += e;
    }
    figures.seconds = started.elapsed().as_secs_f64();
    figures.requests = figures.micros.len();
    figures.print("case transitions");
    if let Some(kib) = case.peak_rss_kib() {
        println!("case peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    drop(case);

    // 2. Timer firing lag over many open cases.
    let mut case = ServiceProc::start_with(
        ServiceKind::Case,
        &brokers,
        &[
            ("XIAONENG__DOMAIN__CATALOG_ADDR", catalog_addr.as_str()),
            ("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-09-14T09:00:00+08:00"),
        ],
    )
    .await;
    let mut c = CaseServiceClient::new(channel(&case.addr(), Some(&tok)).await);
    let k = c
        .submit_case(cpb::SubmitCaseRequest {
            region_code: "410702".into(),
            matter_id: matter.clone(),
            applicant: Some(cpb::Applicant { name: "模板".into(), ..Default::default() }),
            supplied_materials: materials.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .case
        .unwrap_or_default();
    c.accept_case(cpb::AcceptCaseRequest {
        id: k.id.clone(),
        expected_version: k.version,
        tolerance_due_date: String::new(),
    })
    .await?;
    let template = uuid::Uuid::parse_str(&k.id)?;
    case.terminate();
    let db = case.db().await;
    let due: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT due_at FROM case_timers WHERE case_id = $1 AND clock = 'promised' AND kind = 'warning'",
    )
    .bind(template)
    .fetch_one(&db)
    .await?;
    let t = Instant::now();
    // Clones of the template: `due_cases` accepted the same day (their warning is due at the
    // same moment), the rest accepted 60 days later (open, indexed, not due).
    sqlx::query(
        "INSERT INTO cases (id, region_code, matter_id, matter_version, matter_name, state, version, body, promised_limit,
            statutory_limit, first_responsible, submitted_on, accepted_on, promised_deadline, statutory_deadline, created_at)
         SELECT gen_random_uuid(), region_code, matter_id, matter_version, matter_name, state, version, body, promised_limit,
            statutory_limit, first_responsible, submitted_on, accepted_on + CASE WHEN g <= $2 THEN 0 ELSE 60 END,
            promised_deadline, statutory_deadline, now()
         FROM cases, generate_series(1, $3) AS g WHERE id = $1",
    )
    .bind(template)
    .bind(due_cases - 1)
    .bind(open_cases - 1)
    .execute(&db)
    .await?;
    sqlx::query(
        "INSERT INTO case_timers (case_id, clock, kind, due_at, deadline)
         SELECT c.id, t.clock, t.kind, t.due_at + (c.accepted_on - tc.accepted_on) * interval '1 day',
                t.deadline + (c.accepted_on - tc.accepted_on)
         FROM cases c, case_timers t, cases tc
         WHERE tc.id = $1 AND t.case_id = $1 AND c.id <> $1 AND t.fired_at IS NULL",
    )
    .bind(template)
    .execute(&db)
    .await?;
    sqlx::query("ANALYZE cases").execute(&db).await?;
    sqlx::query("ANALYZE case_timers").execute(&db).await?;
    let indexed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM case_timers WHERE fired_at IS NULL").fetch_one(&db).await?;
    println!(
        "timer index: {open_cases} open cases, {indexed} pending timers (set up in {:.1} s); {due_cases} warnings due at {}",
        t.elapsed().as_secs_f64(),
        due.with_timezone(&xiaoneng_kit::clock::cst())
    );
    let start_at = (due - chrono::Duration::seconds(5)).with_timezone(&xiaoneng_kit::clock::cst()).to_rfc3339();
    case.set_env("XIAONENG__DOMAIN__BUSINESS_TIME", &start_at);
    case.restart().await;
    let waited = Instant::now();
    loop {
        let fired: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM case_timers WHERE clock = 'promised' AND kind = 'warning' AND due_at = $1 AND fired_at IS NOT NULL",
        )
        .bind(due)
        .fetch_one(&db)
        .await?;
        if fired >= due_cases {
            break;
        }
        anyhow::ensure!(waited.elapsed() < Duration::from_secs(300), "only {fired} of {due_cases} fired in 300 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut lag: Vec<f64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM fired_at - due_at) * 1000)::float8 FROM case_timers
         WHERE clock = 'promised' AND kind = 'warning' AND due_at = $1",
    )
    .bind(due)
    .fetch_all(&db)
    .await?;
    lag.sort_by(f64::total_cmp);
    let pct = |p: f64| lag[((lag.len() - 1) as f64 * p) as usize];
    let early = lag.iter().filter(|l| **l < 0.0).count();
    let others: i64 = sqlx::query_scalar("SELECT count(*) FROM case_timers WHERE fired_at IS NOT NULL AND due_at > $1")
        .bind(due)
        .fetch_one(&db)
        .await?;
    println!(
        "timer firing lag ({} timers, interval 1 s): p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms; fired early: {early}; not-due timers fired: {others}",
        lag.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE event_type = 'xiaoneng.case.events.v1.CaseEscalated'")
            .fetch_one(&db)
            .await?;
    println!("CaseEscalated events in the outbox: {events}");
    if let Some(kib) = case.peak_rss_kib() {
        println!("case peak RSS (timers): {:.1} MiB", kib as f64 / 1024.0);
    }

    // 3. Calendar recompute: a county closure (a typhoon day on Mon 16 Nov, inside the clocks
    // of the cases accepted on 13 Nov) loaded at run time over every open case.
    let office = token("bench-office", &[roles::SUPERVISOR], "410702");
    let mut c = CaseServiceClient::new(channel(&case.addr(), Some(&office)).await);
    let notice = "region_code = \"410702\"\nversion = \"bench\"\nsource = \"bench: a typhoon closure\"\n\
                  fabricated = true\nclosures = [{ name = \"台风\", from = \"2026-11-16\", to = \"2026-11-16\" }]\n";
    let t = Instant::now();
    let loaded = c.load_calendar_notice(cpb::LoadCalendarNoticeRequest { text: notice.into() }).await?;
    let epoch = loaded.into_inner().notice.unwrap_or_default().epoch;
    let open: i64 = loop {
        let (behind, open): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE calendar_epoch < $1), count(*) FROM cases
             WHERE state NOT IN ('Closed', 'Withdrawn', 'NotAccepted', 'Returned', 'Delivered', 'Denied')",
        )
        .bind(epoch)
        .fetch_one(&db)
        .await?;
        if behind == 0 {
            break open;
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(900), "{behind} cases still behind the calendar after 900 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let secs = t.elapsed().as_secs_f64();
    let moved: i64 = sqlx::query_scalar("SELECT count(*) FROM case_history WHERE action = 'recompute_deadlines'")
        .fetch_one(&db)
        .await?;
    println!(
        "calendar recompute: {open} open cases on the new calendar in {secs:.1} s ({:.0} cases/s); {moved} moved (history entry, CaseDeadlinesMoved, timers)",
        open as f64 / secs
    );
    Ok(())
}
