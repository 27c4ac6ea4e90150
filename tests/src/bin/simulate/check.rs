//! The invariants checked at the end of the day, each a line that can fail; and the figures
//! of the event pipeline (commit → applied) read from the services' own tables.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use prost::Message as _;
use xiaoneng_e2e::proto::accountability::v1 as apb;
use xiaoneng_e2e::proto::case::v1 as cpb;
use xiaoneng_e2e::proto::complaint::v1 as kpb;
use xiaoneng_e2e::proto::evaluation::v1 as epb;
use xiaoneng_e2e::proto::queue::v1 as qpb;
use xiaoneng_e2e::token;
use xiaoneng_kit::auth::roles;

use crate::day::World;
use crate::stack::CITY;
use crate::watch::Department;

#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &str, ok: bool, detail: String) -> Check {
    Check { name: name.into(), ok, detail }
}

/// Each service's database, by service name.
pub type Pools = Vec<(String, sqlx::PgPool)>;

async fn outbox_ids(pool: &sqlx::PgPool) -> HashMap<String, chrono::DateTime<chrono::Utc>> {
    sqlx::query_as::<_, (uuid::Uuid, chrono::DateTime<chrono::Utc>)>("SELECT event_id, created_at FROM outbox")
        .fetch_all(pool)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(i, t)| (i.to_string(), t))
        .collect()
}

/// (consumer, topic) → applied event ids with the moment each was applied.
async fn processed(pool: &sqlx::PgPool) -> BTreeMap<(String, String), HashMap<String, chrono::DateTime<chrono::Utc>>> {
    let rows: Vec<(String, String, uuid::Uuid, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT consumer, topic, event_id, processed_at FROM processed_events")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    let mut m: BTreeMap<(String, String), HashMap<String, chrono::DateTime<chrono::Utc>>> = BTreeMap::new();
    for (c, t, id, at) in rows {
        m.entry((c, t)).or_default().insert(id.to_string(), at);
    }
    m
}

/// Waits (at most `secs`) until every event committed has reached the department's consumer and
/// every service consumer; true when it did.
pub async fn settle(pools: &Pools, dept: &Department, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut stable = 0;
    let mut last = (0usize, 0usize);
    while Instant::now() < deadline {
        let mut total = 0;
        let mut applied = 0;
        let mut wanted = 0;
        let mut by_topic = HashMap::new();
        for (name, pool) in pools {
            let n = outbox_ids(pool).await.len();
            by_topic.insert(format!("xiaoneng.{name}.events"), n);
            total += n;
        }
        for (_, pool) in pools {
            for ((_, topic), ids) in processed(pool).await {
                applied += ids.len();
                wanted += by_topic.get(&topic).copied().unwrap_or(0);
            }
        }
        let now = (total, applied);
        if dept.distinct() >= total && applied >= wanted && now == last {
            stable += 1;
            if stable >= 3 {
                return true;
            }
        } else {
            stable = 0;
        }
        last = now;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    false
}

/// Commit → applied, in milliseconds, per consumer: the outbox row's commit and the consumer's
/// processed row, both stamped by the same PostgreSQL server.
pub async fn pipeline_latency(pools: &Pools) -> BTreeMap<String, Vec<f64>> {
    let mut committed = HashMap::new();
    for (_, pool) in pools {
        committed.extend(outbox_ids(pool).await);
    }
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (name, pool) in pools {
        for ((consumer, _), ids) in processed(pool).await {
            let v = out.entry(format!("{name}/{consumer}")).or_default();
            for (id, at) in ids {
                if let Some(c) = committed.get(&id) {
                    v.push((at - *c).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                }
            }
        }
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    }
    out
}

/// Every case of the day as the case service holds it now, beside what the simulation did.
pub async fn fetch_cases(w: &World) -> anyhow::Result<Vec<(crate::day::CaseRec, cpb::Case)>> {
    let recs = w.cases.lock().expect("cases").clone();
    let mut out = Vec::new();
    for r in recs {
        let k = get_case(w, &r.id).await?;
        out.push((r, k));
    }
    Ok(out)
}

pub async fn run(
    w: &World,
    pools: &Pools,
    dept: &Department,
    settled: bool,
    all_cases: &[(crate::day::CaseRec, cpb::Case)],
) -> anyhow::Result<Vec<Check>> {
    let mut out = vec![check(
        "the pipeline settled: every committed event reached every consumer",
        settled,
        format!("{} distinct events seen by the department", dept.distinct()),
    )];
    out.extend(tickets(w, dept).await?);
    out.push(cases(w, all_cases));
    out.push(escalations(all_cases, dept));
    out.extend(ratings(w).await?);
    out.push(complaints(w).await?);
    out.push(records(w).await?);
    out.extend(department_view(pools, dept).await);
    out.push(isolation(w).await?);
    let errors = w.case_errors.lock().expect("errors").clone();
    out.push(check(
        "no call was refused that the day's script expected to succeed",
        errors.is_empty(),
        if errors.is_empty() { "none".into() } else { errors.iter().take(5).cloned().collect::<Vec<_>>().join("; ") },
    ));
    Ok(out)
}

async fn tickets(w: &World, dept: &Department) -> anyhow::Result<Vec<Check>> {
    let recs = w.tickets.lock().expect("tickets").clone();
    let office = token("sim-office", &[roles::HALL_MANAGER], CITY);
    let q = w.q(&office);
    let mut stranded = Vec::new();
    for t in &recs {
        let req = qpb::GetTicketRequest { ticket_id: t.id.clone() };
        let got = w
            .calls
            .call("queue.GetTicket", || {
                let (mut q, r) = (q.clone(), req.clone());
                async move { q.get_ticket(r).await }
            })
            .await?
            .ticket
            .unwrap_or_default();
        if got.state != qpb::TicketState::Finished as i32 {
            stranded.push(format!("{} {:?}", got.number, qpb::TicketState::try_from(got.state).unwrap_or_default()));
        }
    }
    let mut calls: HashMap<String, usize> = HashMap::new();
    for s in dept.of_type("queue.events.v1.TicketCalled") {
        if let Ok(e) = xiaoneng_e2e::proto::queue::events::v1::TicketCalled::decode(s.payload.as_slice()) {
            // Recalls, no-shows, holds and transfers are events of their own action.
            if e.action == xiaoneng_e2e::proto::queue::events::v1::CallAction::Called as i32 {
                *calls.entry(e.ticket_id).or_default() += 1;
            }
        }
    }
    let twice: Vec<&String> = calls.iter().filter(|(_, n)| **n > 1).map(|(k, _)| k).collect();
    let finished = dept.of_type("queue.events.v1.ServiceFinished").len();
    Ok(vec![
        check(
            "every ticket called at most once",
            twice.is_empty(),
            format!("{} tickets called, {} more than once", calls.len(), twice.len()),
        ),
        check(
            "no ticket stranded: every ticket issued was served by closing",
            stranded.is_empty() && finished == recs.len(),
            format!(
                "{} issued, {} ServiceFinished events{}",
                recs.len(),
                finished,
                if stranded.is_empty() { String::new() } else { format!("; left: {}", stranded.join(", ")) }
            ),
        ),
    ])
}

async fn get_case(w: &World, id: &str) -> anyhow::Result<cpb::Case> {
    let t = token("sim-office", &[roles::SUPERVISOR], CITY);
    let c = w.c(&t);
    let req = cpb::GetCaseRequest { id: id.into() };
    Ok(w.calls
        .call("case.GetCase", || {
            let (mut c, r) = (c.clone(), req.clone());
            async move { c.get_case(r).await }
        })
        .await?
        .case
        .unwrap_or_default())
}

/// Every accepted case's promised and statutory deadlines equal the working-day count of
/// `workdays` (written from the State Council notice, independent of the services' calendar).
fn cases(w: &World, all: &[(crate::day::CaseRec, cpb::Case)]) -> Check {
    let (mut checked, mut wrong) = (0, Vec::new());
    for (r, k) in all {
        let Ok(accepted) = k.accepted_date.parse::<chrono::NaiveDate>() else { continue };
        if k.paused_working_days > 0 || k.extension_days > 0 {
            continue;
        }
        let m = &w.matters[r.county][r.matter];
        let promised = crate::workdays::after(accepted, m.promised).to_string();
        let statutory = crate::workdays::after(accepted, m.statutory).to_string();
        checked += 1;
        if k.promised_deadline != promised || (m.statutory > 0 && k.statutory_deadline != statutory) {
            wrong.push(format!(
                "{} accepted {accepted}: promised {} (count {promised}), statutory {} (count {statutory})",
                &k.id[..8],
                k.promised_deadline,
                k.statutory_deadline
            ));
        }
    }
    check(
        "every case's deadlines equal an independent working-day count",
        wrong.is_empty() && checked > 0,
        format!(
            "{checked} accepted cases checked{}",
            if wrong.is_empty() {
                String::new()
            } else {
                format!("; wrong: {}", wrong.iter().take(3).cloned().collect::<Vec<_>>().join("; "))
            }
        ),
    )
}

/// Every escalation once: on each case at most one per clock and level, and the department saw
/// exactly the escalations the case service holds.
fn escalations(all: &[(crate::day::CaseRec, cpb::Case)], dept: &Department) -> Check {
    let mut held = HashSet::new();
    let mut dup = 0;
    for (_, k) in all {
        for e in &k.escalations {
            if !held.insert((k.id.clone(), e.clock.clone(), e.level)) {
                dup += 1;
            }
        }
    }
    let mut seen: HashMap<(String, String, String), usize> = HashMap::new();
    for s in dept.of_type("case.events.v1.CaseEscalated") {
        if let Ok(e) = xiaoneng_e2e::proto::case::events::v1::CaseEscalated::decode(s.payload.as_slice()) {
            *seen.entry((e.case_id, e.clock, e.level)).or_default() += 1;
        }
    }
    let twice = seen.values().filter(|n| **n > 1).count();
    let same = seen.len() == held.len();
    check(
        "every escalation once",
        dup == 0 && twice == 0 && same,
        format!(
            "{} escalations held, {} CaseEscalated seen, {twice} seen twice, {dup} held twice",
            held.len(),
            seen.len()
        ),
    )
}

async fn ratings(w: &World) -> anyhow::Result<Vec<Check>> {
    let tickets = w.tickets.lock().expect("tickets").clone();
    let office = token("sim-office", &[roles::SUPERVISOR], CITY);
    let e = w.e(&office);
    let (mut missing, mut extra) = (0, 0);
    let mut rated_per_inv: HashMap<String, usize> = HashMap::new();
    for r in w.ratings.lock().expect("ratings").iter() {
        *rated_per_inv.entry(r.invitation.clone()).or_default() += 1;
    }
    for t in &tickets {
        let req = epb::ListInvitationsRequest { ticket_id: t.id.clone(), ..Default::default() };
        let inv = w
            .calls
            .call("evaluation.ListInvitations", || {
                let (mut e, r) = (e.clone(), req.clone());
                async move { e.list_invitations(r).await }
            })
            .await?
            .invitations;
        match inv.len() {
            0 => missing += 1,
            1 => {}
            _ => extra += 1,
        }
    }
    let (refused, accepted) = *w.double_ratings.lock().expect("double");
    let twice = rated_per_inv.values().filter(|n| **n > 1).count();
    // Loops: a 差评's loop is on its clock when its step's due day equals the count.
    let recs = w.ratings.lock().expect("ratings").clone();
    let mut loops = 0;
    let mut off_clock = Vec::new();
    for r in recs.iter().filter(|r| r.level <= 2) {
        let req = epb::GetRatingRequest { id: r.rating.clone() };
        let got = w
            .calls
            .call("evaluation.GetRating", || {
                let (mut e, r) = (e.clone(), req.clone());
                async move { e.get_rating(r).await }
            })
            .await?
            .rating
            .unwrap_or_default();
        let Some(l) = got.r#loop else {
            off_clock.push(format!("{} has no loop", &r.rating[..8]));
            continue;
        };
        loops += 1;
        if !l.step_due_date.is_empty() {
            let due: chrono::NaiveDate = l.step_due_date.parse()?;
            let overdue_by_count = due < w.clock.now().with_timezone(&xiaoneng_kit::clock::cst()).date_naive();
            if !crate::workdays::is_working_day(due) || (l.step_overdue != overdue_by_count && !l.step_overdue) {
                off_clock.push(format!("{} step due {} overdue {}", &r.rating[..8], l.step_due_date, l.step_overdue));
            }
        }
    }
    Ok(vec![
        check(
            "every finished service invited once",
            missing == 0 && extra == 0,
            format!("{} tickets: {missing} without an invitation, {extra} with more than one", tickets.len()),
        ),
        check(
            "every invitation rated at most once",
            twice == 0 && accepted == 0,
            format!("{} ratings; a second press refused {refused} times, accepted {accepted} times", recs.len()),
        ),
        check(
            "every 差评 loop on its clock",
            off_clock.is_empty(),
            format!(
                "{loops} loops{}",
                if off_clock.is_empty() { String::new() } else { format!("; {}", off_clock.join("; ")) }
            ),
        ),
    ])
}

/// Every complaint on its clock: its due day is the working-day count of its kind's limit
/// (10 working days for a complaint) from the day it was filed.
async fn complaints(w: &World) -> anyhow::Result<Check> {
    let recs = w.complaints.lock().expect("complaints").clone();
    let inspector = token("sim-inspector", &[roles::INSPECTOR], CITY);
    let k = w.k(&inspector);
    let mut wrong = Vec::new();
    for r in &recs {
        let req = kpb::GetComplaintRequest { id: r.id.clone() };
        let c = w
            .calls
            .call("complaint.GetComplaint", || {
                let (mut k, r) = (k.clone(), req.clone());
                async move { k.get_complaint(r).await }
            })
            .await?
            .complaint
            .unwrap_or_default();
        let filed = c
            .file_time
            .as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
            .map(|t| t.with_timezone(&xiaoneng_kit::clock::cst()).date_naive())
            .unwrap_or(w.date);
        let expected = crate::workdays::after(filed, 10).to_string();
        if c.merged == 0 && c.linked_complaint_id.is_empty() && c.due_date != expected && !c.extended {
            wrong.push(format!("{} filed {filed} due {} (count {expected})", &c.id[..8], c.due_date));
        }
    }
    Ok(check(
        "every complaint on its clock",
        wrong.is_empty(),
        format!(
            "{} complaints{}",
            recs.len(),
            if wrong.is_empty() { String::new() } else { format!("; {}", wrong.join("; ")) }
        ),
    ))
}

pub async fn all_records(w: &World, region: &str) -> anyhow::Result<Vec<apb::Record>> {
    let t = token("sim-office", &[roles::SUPERVISOR], region);
    let a = w.acc(&t);
    let mut out = Vec::new();
    let mut page = String::new();
    loop {
        let req = apb::ListRecordsRequest { region_code: region.into(), page_size: 500, page_token: page.clone() };
        let r = w
            .calls
            .call("accountability.ListRecords", || {
                let (mut a, r) = (a.clone(), req.clone());
                async move { a.list_records(r).await }
            })
            .await?;
        out.extend(r.records);
        if r.next_page_token.is_empty() {
            return Ok(out);
        }
        page = r.next_page_token;
    }
}

async fn records(w: &World) -> anyhow::Result<Check> {
    let all = all_records(w, CITY).await?;
    let mut seen: HashMap<(String, String, String, String, Vec<String>), usize> = HashMap::new();
    for r in &all {
        let mut ev = r.evidence.clone();
        ev.sort();
        let key = (r.rule_id.clone(), r.subject.clone(), r.unit.clone(), r.person.clone(), ev);
        *seen.entry(key).or_default() += 1;
    }
    let twice = seen.values().filter(|n| **n > 1).count();
    Ok(check(
        "every record once per rule and fact",
        twice == 0,
        format!("{} records, {twice} made twice from the same evidence", all.len()),
    ))
}

/// The department's consumer saw exactly what the services committed to their outboxes (nothing
/// lost, no payload changed), and every service consumer applied each event of its topics once.
async fn department_view(pools: &Pools, dept: &Department) -> Vec<Check> {
    let seen: HashSet<String> = dept.events.lock().expect("events").keys().cloned().collect();
    let mut committed = HashSet::new();
    let mut by_topic: HashMap<String, HashSet<String>> = HashMap::new();
    for (name, pool) in pools {
        let ids: HashSet<String> = outbox_ids(pool).await.into_keys().collect();
        committed.extend(ids.iter().cloned());
        by_topic.insert(format!("xiaoneng.{name}.events"), ids);
    }
    let lost = committed.difference(&seen).count();
    let unknown = seen.difference(&committed).count();
    let conflicts = dept.conflicts.load(std::sync::atomic::Ordering::Relaxed);
    let deliveries = dept.deliveries.load(std::sync::atomic::Ordering::Relaxed);
    let mut consumer_gaps = Vec::new();
    let mut applied = 0;
    for (name, pool) in pools {
        for ((consumer, topic), ids) in processed(pool).await {
            applied += ids.len();
            let want = by_topic.get(&topic).cloned().unwrap_or_default();
            let missing = want.iter().filter(|i| !ids.contains_key(*i)).count();
            if missing > 0 {
                consumer_gaps.push(format!("{name}/{consumer} misses {missing} of {topic}"));
            }
        }
    }
    vec![
        check(
            "the department consumer's view equals the services' own (nothing lost, nothing changed)",
            lost == 0 && unknown == 0 && conflicts == 0,
            format!(
                "{} committed, {} seen ({deliveries} deliveries), {lost} lost, {unknown} unknown, {conflicts} changed",
                committed.len(),
                seen.len()
            ),
        ),
        check(
            "every service consumer applied every event of its topics, once",
            consumer_gaps.is_empty(),
            format!(
                "{applied} applications{}",
                if consumer_gaps.is_empty() { String::new() } else { format!("; {}", consumer_gaps.join("; ")) }
            ),
        ),
    ]
}

/// No county sees another's: each county office's lists hold only its own rows, and asking
/// for a neighbour's region is refused.
async fn isolation(w: &World) -> anyhow::Result<Check> {
    let mut leaks = Vec::new();
    let mut refused = 0;
    let mut rows = 0;
    for (i, county) in w.counties.iter().enumerate() {
        let t = token(&format!("{}-office", county.code), &[roles::SUPERVISOR], &county.code);
        let mine = |r: &str| r.starts_with(&county.code);
        let cases = w
            .c(&t)
            .list_cases(cpb::ListCasesRequest { page_size: 500, ..Default::default() })
            .await?
            .into_inner()
            .cases;
        let records = all_records(w, &county.code).await?;
        let complaints = w
            .k(&t)
            .list_complaints(kpb::ListComplaintsRequest { page_size: 500, ..Default::default() })
            .await?
            .into_inner()
            .complaints;
        let invitations = w
            .e(&t)
            .list_invitations(epb::ListInvitationsRequest { page_size: 500, ..Default::default() })
            .await?
            .into_inner()
            .invitations;
        rows += cases.len() + records.len() + complaints.len() + invitations.len();
        for r in cases
            .iter()
            .map(|c| &c.region_code)
            .chain(records.iter().map(|r| &r.region_code))
            .chain(complaints.iter().map(|c| &c.region_code))
            .chain(invitations.iter().map(|x| &x.region_code))
        {
            if !mine(r) {
                leaks.push(format!("{} saw {r}", county.code));
            }
        }
        let other = &w.counties[(i + 1) % w.counties.len()].code;
        if other != &county.code {
            let asked = w
                .c(&t)
                .list_cases(cpb::ListCasesRequest { page_size: 5, region_code: other.clone(), ..Default::default() })
                .await;
            match asked {
                Err(s) if s.code() == tonic::Code::PermissionDenied => refused += 1,
                Ok(r) if r.get_ref().cases.is_empty() => refused += 1,
                _ => leaks.push(format!("{} read {other}'s cases", county.code)),
            }
        }
    }
    Ok(check(
        "no county ever saw another's data",
        leaks.is_empty(),
        format!(
            "{rows} rows read by {} county offices, all their own; {refused} asks for a neighbour refused{}",
            w.counties.len(),
            if leaks.is_empty() {
                String::new()
            } else {
                format!("; {}", leaks.iter().take(5).cloned().collect::<Vec<_>>().join("; "))
            }
        ),
    ))
}
