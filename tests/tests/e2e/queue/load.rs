//! 200 windows (comprehensive, department, green channel) calling at once over 5,000 tickets.
//! The expectation is written from the rules of the hall, not read from the service: urgent,
//! then elderly, then normal (no appointments here), then arrival; a comprehensive window serves
//! everything, a department window its own matters, the green channel urgent and elderly only.

use std::collections::{BTreeMap, HashMap, HashSet};

use xiaoneng_e2e::proto::queue::v1 as pb;
use xiaoneng_e2e::ServiceProc;
use xiaoneng_kit::auth::roles;

use super::driver::{Desk, Hall};
use super::{catalog, category, client, issue, open, queue_service, window};

/// A ticket as the record keeps it once served.
#[derive(sqlx::FromRow)]
struct Served {
    id: String,
    priority: i16,
    arrival_ms: i64,
    matter_id: String,
    state: String,
    call_seq: Option<i64>,
    window_id: Option<String>,
}

/// What a window may serve.
struct Rule {
    kind: pb::WindowKind,
    matters: Vec<String>,
}

impl Rule {
    fn may(&self, matter: &str, asked: pb::Priority) -> bool {
        match self.kind {
            pb::WindowKind::Comprehensive => true,
            pb::WindowKind::Department => self.matters.iter().any(|m| m == matter),
            pb::WindowKind::GreenChannel => class(asked) <= 1,
            _ => false,
        }
    }
}

fn class(p: pb::Priority) -> i64 {
    match p {
        pb::Priority::Urgent => 0,
        pb::Priority::Elderly => 1,
        _ => 2,
    }
}

/// 120 comprehensive, 60 department (two matters each) and 20 green-channel windows, open.
async fn two_hundred_windows(q: &ServiceProc, matters: &[String]) -> (Hall, Vec<(Desk, Rule)>) {
    let cats = vec![category("A", &[]), category("B", &[&matters[0], &matters[1]])];
    let mut h = Hall::with_categories(q, "红旗区政务服务中心", cats).await;
    let mut desks = Vec::new();
    for i in 0..200 {
        let (kind, ms) = match i % 10 {
            0..=5 => (pb::WindowKind::Comprehensive, vec![]),
            6..=8 => (pb::WindowKind::Department, vec![matters[i % 6].clone(), matters[(i + 1) % 6].clone()]),
            _ => (pb::WindowKind::GreenChannel, vec![]),
        };
        let w = window(&mut h.manager, &h.hall.id, &format!("W{i:03}"), kind, &ms, false).await;
        open(&mut h.manager, &w, &format!("staff-{i}")).await;
        let clerk = client(q, "clerk", &[roles::CLERK]).await;
        desks.push((Desk { clerk, window: w }, Rule { kind, matters: ms }));
    }
    (h, desks)
}

/// 5,000 tickets from 40 kiosks at once, one in 20 urgent, two elderly; what each asked for.
async fn issue_five_thousand(h: &Hall, matters: &[String]) -> HashMap<String, pb::Priority> {
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..40 {
        let (mut c, hall_id, matters) = (h.kiosk.clone(), h.id(), matters.to_vec());
        tasks.spawn(async move {
            let mut asked = Vec::new();
            for n in 0..125 {
                let i = k * 125 + n;
                let p = match i % 20 {
                    0 => pb::Priority::Urgent,
                    1 | 2 => pb::Priority::Elderly,
                    _ => pb::Priority::Normal,
                };
                asked.push((issue(&mut c, &hall_id, &matters[(i * 7 + n) % 6], p).await.id, p));
            }
            asked
        });
    }
    let mut asked = HashMap::new();
    while let Some(r) = tasks.join_next().await {
        asked.extend(r.unwrap());
    }
    asked
}

/// When window W called T (sequence s), every ticket W could serve with a better (class,
/// arrival) had been called before s. Tickets of equal key may go either way.
fn assert_best_first(desk: &Desk, rule: &Rule, rows: &[Served], asked: &HashMap<String, pb::Priority>) {
    let mut allowed: Vec<&Served> = rows.iter().filter(|r| rule.may(&r.matter_id, asked[&r.id])).collect();
    let key = |r: &&Served| (class(asked[&r.id]), r.arrival_ms);
    allowed.sort_by_key(key);
    let mut best_before = 0i64;
    for group in allowed.chunk_by(|a, b| key(a) == key(b)) {
        for r in group.iter().filter(|r| r.window_id.as_deref() == Some(desk.window.id.as_str())) {
            let seq = r.call_seq.unwrap();
            assert!(
                seq > best_before,
                "{} called {} (seq {seq}) while a better ticket waited until {best_before}",
                desk.window.code,
                r.id
            );
        }
        best_before = best_before.max(group.iter().map(|r| r.call_seq.unwrap()).max().unwrap());
    }
}

/// Every ticket is called exactly once and finished, no window calls a ticket it may not serve,
/// the record keeps what each kiosk asked for, and each window always got the best ticket it
/// was allowed to serve at the moment it called (the hall-wide call sequence tells the order).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_windows_serve_five_thousand_tickets_once_in_priority_order() {
    let (catalog, matters) = catalog().await;
    let q = queue_service(&catalog, &[("XIAONENG__DATABASE__MAX_CONNECTIONS", "30")]).await;
    let (h, desks) = two_hundred_windows(&q, &matters).await;
    let asked = issue_five_thousand(&h, &matters).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (d, _) in &desks {
        let mut d = d.clone();
        tasks.spawn(async move {
            let mut n = 0;
            while d.serve_next().await.is_some() {
                n += 1;
            }
            n
        });
    }
    let mut served = 0;
    while let Some(r) = tasks.join_next().await {
        served += r.unwrap();
    }
    assert_eq!(served, 5000);

    let db = q.db().await;
    let rows: Vec<Served> = sqlx::query_as("SELECT id::text, priority, arrival_ms, matter_id, state, call_seq, window_id::text FROM tickets WHERE hall_id = $1::uuid")
        .bind(h.id())
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 5000);
    assert!(rows.iter().all(|r| r.state == "finished"), "every ticket served");
    let seqs: HashSet<i64> = rows.iter().filter_map(|r| r.call_seq).collect();
    assert_eq!(seqs.len(), 5000, "each ticket called once, one call sequence number each");
    let events: Vec<(String, i64)> = sqlx::query_as("SELECT event_type, count(*) FROM outbox WHERE event_type LIKE '%.TicketCalled' OR event_type LIKE '%.ServiceFinished' GROUP BY 1 ORDER BY 1")
        .fetch_all(&db)
        .await
        .unwrap();
    let counts: Vec<i64> = events.iter().map(|e| e.1).collect();
    assert_eq!(counts, [5000, 5000], "{events:?}");

    let rules: HashMap<&str, (&Rule, &str)> =
        desks.iter().map(|(d, r)| (d.window.id.as_str(), (r, d.window.code.as_str()))).collect();
    let mut ranks: BTreeMap<i64, HashSet<i16>> = BTreeMap::new();
    for r in &rows {
        let (rule, code) = rules[r.window_id.as_deref().expect("called at a window")];
        assert!(rule.may(&r.matter_id, asked[&r.id]), "{code} called {} which it may not serve", r.id);
        ranks.entry(class(asked[&r.id])).or_default().insert(r.priority);
    }
    let ranks: Vec<&HashSet<i16>> = ranks.values().collect();
    assert!(ranks.iter().all(|s| s.len() == 1), "one stored priority per asked one: {ranks:?}");
    assert!(ranks.windows(2).all(|p| p[0].iter().next() < p[1].iter().next()), "urgent < elderly < normal");
    for (d, rule) in &desks {
        assert_best_first(d, rule, &rows, &asked);
    }
}
