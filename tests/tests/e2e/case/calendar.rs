//! The legal clock past the published calendar. A case accepted on Tue 1 Dec 2026 with a
//! 45-day statutory and a 30-day promised limit reaches into 2027, which the embedded data do
//! not cover: its deadlines are counted Monday–Friday and shown as provisional. Loading a
//! 2027 notice over gRPC (fabricated test data, marked as such: 元旦 1-3 Jan, 春节 6-14 Feb)
//! moves them, on every replica, once; an escalation that fired before never fires again.
//!
//! The expected dates are counted by hand from the fixed acceptance day:
//! - Monday–Friday: December after the 1st has 22 working days (2-4, 7-11, 14-18, 21-25,
//!   28-31); the 30-day promise then needs 8 of January 2027 (1, 4-8, 11, 12) → Tue 12 Jan;
//!   the 45-day limit 23 (January has 21: 1, 4-8, 11-15, 18-22, 25-29; then 1, 2 Feb) → Tue 2 Feb.
//! - With 1 Jan a holiday each moves one working day: Wed 13 Jan and Wed 3 Feb.
//! - The promise warns when 2 working days or fewer are left: on Fri 8 Jan for the
//!   provisional 12 Jan (11, 12 left).

use prost::Message as _;
use tonic::Code;
use xiaoneng_e2e::proto::case::events::v1::{CaseDeadlinesMoved, CaseEscalated};
use xiaoneng_e2e::proto::case::v1 as cpb;
use xiaoneng_e2e::{shared_brokers, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

use super::driver::as_in;
use super::{accepted, get, matter_limited, restart_at, timer_passes, wait_fired, Cases};

const FABRICATED_2027: &str = r#"# Fabricated for the tests: not the State Council's notice for 2027.
year = 2027
version = "2027-test"
source = "fabricated for the end-to-end tests"
fabricated = true
holidays = [
  { name = "元旦", from = "2027-01-01", to = "2027-01-03" },
  { name = "春节", from = "2027-02-06", to = "2027-02-14" },
]
workdays = ["2027-02-20"]
"#;

/// The catalog, two replicas of the case service on one database (business clock at `at`),
/// and a clerk of the county on the first.
struct TwoReplicas {
    _catalog: ServiceProc,
    one: ServiceProc,
    two: ServiceProc,
    matter_id: String,
}

impl TwoReplicas {
    async fn start(at: &str) -> Self {
        let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
        let matter_id = matter_limited(&catalog, "2026-01-01", vec![], 45, 30).await;
        let addr = catalog.addr();
        let env = [
            ("XIAONENG__DOMAIN__CATALOG_ADDR", addr.as_str()),
            ("XIAONENG__DOMAIN__BUSINESS_TIME", at),
            ("XIAONENG__DOMAIN__TIMER_INTERVAL_MS", "100"),
            ("XIAONENG__DOMAIN__CALENDAR_REFRESH_MS", "200"),
            // Only the notices through 2026 count as published, whichever years are built in.
            ("XIAONENG__DOMAIN__CALENDAR_THROUGH", "2026"),
        ];
        let one = ServiceProc::start_with(ServiceKind::Case, &shared_brokers(), &env).await;
        let mut two = ServiceProc::configure(ServiceKind::Case, &shared_brokers(), &env);
        two.set_env("XIAONENG__DATABASE__NAME", &one.database);
        two.restart().await;
        TwoReplicas { _catalog: catalog, one, two, matter_id }
    }

    /// Both replicas killed and started again at `at`.
    async fn at(&mut self, at: &str) {
        restart_at(&mut self.one, at).await;
        restart_at(&mut self.two, at).await;
    }

    async fn clerk(&self, on: &ServiceProc) -> Cases {
        as_in(on, "clerk-01", &[roles::CLERK], "410702").await
    }

    /// The city's efficiency office on replica `on`.
    async fn office(&self, on: &ServiceProc) -> Cases {
        as_in(on, "xiaonengban", &[roles::SUPERVISOR], "410700").await
    }
}

fn clock<'a>(k: &'a cpb::Case, name: &str) -> &'a cpb::ClockState {
    k.clocks.iter().find(|c| c.clock == name).expect("clock running")
}

async fn load(c: &mut Cases, text: &str) -> Result<cpb::CalendarNotice, tonic::Status> {
    let req = cpb::LoadCalendarNoticeRequest { text: text.into() };
    c.load_calendar_notice(req).await.map(|r| r.into_inner().notice.expect("notice"))
}

/// Payloads of `event_type` in the outbox for case `id`.
async fn outbox(db: &sqlx::PgPool, event_type: &str, id: &str) -> Vec<Vec<u8>> {
    sqlx::query_scalar("SELECT payload FROM outbox WHERE event_type = $1 AND event_key = $2 ORDER BY id")
        .bind(format!("xiaoneng.case.events.v1.{event_type}"))
        .bind(id)
        .fetch_all(db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2027_notice_moves_provisional_deadlines_once_on_every_replica() {
    let mut t = TwoReplicas::start("2026-12-01T09:00:00+08:00").await;
    let k = accepted(&mut t.clerk(&t.one).await, &t.matter_id).await;
    assert_eq!((k.promised_deadline.as_str(), k.statutory_deadline.as_str()), ("2027-01-12", "2027-02-02"));
    assert!(k.deadline_provisional && clock(&k, "statutory").provisional && clock(&k, "promised").provisional);

    // 8 Jan: the provisional promise warns, once, and says it was provisional.
    t.at("2027-01-08T09:00:00+08:00").await;
    let mut clerk = t.clerk(&t.one).await;
    wait_fired(&t.one, &mut clerk, &k.id, &["promised/warning"], "8 Jan").await;
    let db = t.one.db().await;
    let warning = get(&mut clerk, &k.id).await.history.into_iter().find(|h| h.action == "warning").expect("warned");
    assert_eq!(warning.reason, "promised: 期限 2027-01-12 (暂定期限)");
    let warned = outbox(&db, "CaseEscalated", &k.id).await;
    assert_eq!(warned.len(), 1);
    assert!(CaseEscalated::decode(warned[0].as_slice()).unwrap().provisional);

    let notice = load(&mut t.office(&t.one).await, FABRICATED_2027).await.unwrap();
    assert_eq!(
        (notice.scope.as_str(), notice.version.as_str(), notice.fabricated),
        ("national:2027", "2027-test", true)
    );
    for replica in [&t.one, &t.two] {
        let mut c = t.clerk(replica).await;
        let id = k.id.clone();
        // The stored deadline moves once (whichever replica recomputes it); each replica shows it
        // as final once its own calendar has the notice (its next refresh, every 200 ms).
        let moved = xiaoneng_e2e::eventually(30, "the deadlines moved and final on this replica", || {
            let (mut c, id) = (c.clone(), id.clone());
            async move {
                let k = get(&mut c, &id).await;
                let done = k.statutory_deadline == "2027-02-03" && !k.deadline_provisional;
                Some(k).filter(|_| done)
            }
        })
        .await;
        assert_eq!(moved.promised_deadline, "2027-01-13");
        assert!(!clock(&moved, "statutory").provisional && !clock(&moved, "promised").provisional);
        c = t.clerk(replica).await;
        let cov = c.get_calendar_coverage(cpb::GetCalendarCoverageRequest { region_code: "410702".into() });
        assert_eq!(cov.await.unwrap().into_inner().covered_through, "2027-12-31");
    }

    // Once: one history entry naming the notice, one event, the timers on the new days, and
    // the warning that fired on the provisional date does not fire again.
    timer_passes(&t.one).await;
    timer_passes(&t.two).await;
    let k = wait_fired(&t.one, &mut clerk, &k.id, &["promised/warning"], "after the load").await;
    let recomputed: Vec<_> = k.history.iter().filter(|h| h.action == "recompute_deadlines").collect();
    assert_eq!(recomputed.len(), 1, "{:?}", k.history);
    let why = &recomputed[0].reason;
    assert!(why.contains("national:2027 2027-test") && why.contains("2027-02-02 → 2027-02-03"), "{why}");
    let moved = outbox(&db, "CaseDeadlinesMoved", &k.id).await;
    assert_eq!(moved.len(), 1);
    let e = CaseDeadlinesMoved::decode(moved[0].as_slice()).unwrap();
    let dates = [&e.old_promised_deadline, &e.promised_deadline, &e.old_statutory_deadline, &e.statutory_deadline];
    assert_eq!(dates, ["2027-01-12", "2027-01-13", "2027-02-02", "2027-02-03"]);
    assert_eq!((e.calendar_version.as_str(), e.provisional), ("2027-test", false));
    assert_eq!(outbox(&db, "CaseEscalated", &k.id).await.len(), 1, "no escalation fired twice");
    timers_on_the_new_days(&db, &k.id).await;
}

/// The case's six timers (warning, yellow, red of both clocks) on the new days, unfired —
/// but the promise's warning, fired on its old, provisional date.
async fn timers_on_the_new_days(db: &sqlx::PgPool, case_id: &str) {
    let deadlines: Vec<(String, String, Option<chrono::NaiveDate>, bool, bool)> = sqlx::query_as(
        "SELECT clock, kind, deadline, fired_at IS NOT NULL, provisional FROM case_timers WHERE case_id = $1::uuid
         ORDER BY clock, kind",
    )
    .bind(case_id)
    .fetch_all(db)
    .await
    .unwrap();
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    for (clock, kind, deadline, fired, provisional) in &deadlines {
        match (clock.as_str(), kind.as_str()) {
            ("promised", "warning") => {
                assert!(*fired && *provisional && *deadline == d("2027-01-12"), "fired on the old, provisional date")
            }
            ("promised", _) => assert_eq!((*deadline, *fired, *provisional), (d("2027-01-13"), false, false), "{kind}"),
            ("statutory", _) => {
                assert_eq!((*deadline, *fired, *provisional), (d("2027-02-03"), false, false), "{kind}")
            }
            other => panic!("unexpected timer {other:?}"),
        }
    }
    assert_eq!(deadlines.len(), 6, "warning, yellow and red of both clocks: {deadlines:?}");
}

/// A bad notice is refused with every bad line named, and nothing changes; a county office
/// cannot load a national year.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_notice_is_refused_whole_and_a_county_cannot_load_a_national_year() {
    let t = TwoReplicas::start("2026-12-01T09:00:00+08:00").await;
    let k = accepted(&mut t.clerk(&t.one).await, &t.matter_id).await;
    let bad = FABRICATED_2027
        .replace("2027-01-01", "2027-13-01")
        .replace("2027-02-14\" }", "2027-02-05\" }")
        .replace("\"2027-02-20\"", "\"2027-02-08\"");
    let err = load(&mut t.office(&t.one).await, &bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let lines: Vec<String> = {
        use tonic_types::StatusExt;
        let details = err.get_details_bad_request().expect("field violations");
        details.field_violations.into_iter().map(|f| format!("{}: {}", f.field, f.description)).collect()
    };
    assert_eq!(
        lines,
        [
            "text: line 7: from \"2027-13-01\" is not a date (YYYY-MM-DD)",
            "text: line 8: 春节 2027-02-06 .. 2027-02-05 ends before it starts",
            "text: line 10: make-up workday 2027-02-08 is a Mon, not a weekend day",
        ]
    );
    // The operator command says the same and exits non-zero.
    let file = std::env::temp_dir().join(format!("{}-bad-notice.toml", t.one.database));
    std::fs::write(&file, &bad).unwrap();
    let admin = std::process::Command::new(xiaoneng_e2e::bin_dir().join("xiaoneng-admin"))
        .args([
            "load-calendar",
            file.to_str().unwrap(),
            "--addr",
            &format!("127.0.0.1:{}", t.one.port),
            "--region",
            "410700",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&admin.stderr);
    assert!(!admin.status.success() && said.contains("line 7:") && said.contains("line 10:"), "{said}");
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM calendar_notices").fetch_one(&t.one.db().await).await.unwrap();
    assert_eq!(stored, 0);
    let county = as_in(&t.one, "xiaonengban-hq", &[roles::SUPERVISOR], "410702").await;
    let denied = load(&mut county.clone(), FABRICATED_2027).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let clerk = t.clerk(&t.two).await;
    let cov =
        clerk.clone().get_calendar_coverage(cpb::GetCalendarCoverageRequest::default()).await.unwrap().into_inner();
    assert_eq!((cov.covered_through.as_str(), cov.days_left, cov.notices.len()), ("2026-12-31", 30, 0));
    let again = get(&mut clerk.clone(), &k.id).await;
    assert_eq!((again.statutory_deadline.as_str(), again.version), ("2027-02-02", k.version));
}

/// A region's coverage is one command to check and the shipped drill template one to extend:
/// `calendar-coverage` says 30 days are left on 1 December and exits 1 (short); loading
/// `data/drill/2027.toml` with `load-calendar` extends it through 2027, marked fabricated.
#[tokio::test(flavor = "multi_thread")]
async fn coverage_is_one_command_to_check_and_the_drill_template_one_to_extend() {
    let t = TwoReplicas::start("2026-12-01T09:00:00+08:00").await;
    let addr = format!("127.0.0.1:{}", t.one.port);
    let admin = |args: &[&str]| {
        let o = std::process::Command::new(xiaoneng_e2e::bin_dir().join("xiaoneng-admin")).args(args).output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (ok, out, err) = admin(&["calendar-coverage", "--addr", &addr, "--region", "410702"]);
    assert!(!ok && err.contains("fewer than 45 days"), "{out}{err}");
    assert_eq!(out.trim(), "410702: covered through 2026-12-31 (30 days left)");
    let drill = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/calendar/data/drill/2027.toml");
    let (ok, out, err) = admin(&["load-calendar", drill.to_str().unwrap(), "--addr", &addr, "--region", "410700"]);
    assert!(ok && out.contains("loaded national:2027 2027-drill-1") && out.contains("fabricated"), "{out}{err}");
    let (ok, out, err) = admin(&["calendar-coverage", "--addr", &addr, "--region", "410702"]);
    assert!(ok, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "410702: covered through 2027-12-31 (395 days left)");
    assert!(lines[1].contains("national:2027 2027-drill-1") && lines[1].ends_with(", fabricated)"), "{out}");
}
