//! The accountability use cases: record each consumed event once in the ledger and, in the
//! same transaction, turn the facts it carries into supervision records by the region's rule
//! set in force on the event's business date (once per rule and event, or per person and
//! month for a counting rule); load rule sets; read the ledger and the records within a region.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use prost::Message as _;
use sqlx::{PgConnection, PgPool};
use xiaoneng_kit::consumer::EventHandler;
use xiaoneng_kit::events::ConsumedEvent;
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{outbox, AppError, AppResult};
use xiaoneng_proto::case::events::v1 as case_ev;
use xiaoneng_proto::complaint::events::v1 as complaint_ev;
use xiaoneng_proto::complaint::v1 as complaint_pb;
use xiaoneng_proto::evaluation::events::v1 as eval_ev;

use crate::domain::{Fact, LedgerRow, RecordRow, RuleSet};
use crate::{events, store};

/// The starter rule set of the city, from the repository.
pub const STARTER_RULES: &str = include_str!("../rules/410700.toml");

/// Every event of every service, recorded in the ledger, and its facts judged by the rules,
/// in the same transaction that marks it applied. The clock says what "still assigned" means
/// for a certificate that lapsed.
pub struct LedgerHandler {
    pub clock: xiaoneng_kit::clock::BusinessClock,
}

fn date(s: &str, fallback: NaiveDate) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or(fallback)
}

/// The facts an event carries (none when the rules and scores do not look at it).
pub fn facts_of(e: &ConsumedEvent) -> anyhow::Result<Vec<Fact>> {
    let on = e
        .occurred_at
        .with_timezone(&xiaoneng_kit::clock::cst())
        .date_naive();
    let name = e.event_type.rsplit('.').next().unwrap_or("");
    let mut attrs = BTreeMap::new();
    let fact = |kind: &str, unit: String, person: String, on: NaiveDate, attrs| Fact {
        event_id: e.event_id,
        kind: kind.into(),
        region_code: e.region_code.clone(),
        subject: e.subject.clone(),
        unit,
        person,
        on,
        attrs,
    };
    let p = e.payload.as_slice();
    let mut out = Vec::new();
    let one = match (e.source.as_str(), name) {
        ("/xiaoneng/case", "CaseEscalated") => {
            let m = case_ev::CaseEscalated::decode(p)?;
            attrs.insert("level".into(), m.level.clone());
            attrs.insert("clock".into(), m.clock.clone());
            let on = date(&m.due_date, on);
            fact(
                "case_escalated",
                m.handling_department,
                m.handler,
                on,
                attrs,
            )
        }
        ("/xiaoneng/case", "OneTimeNoticeViolated") => {
            let m = case_ev::OneTimeNoticeViolated::decode(p)?;
            fact(
                "one_time_notice_violated",
                String::new(),
                m.actor,
                on,
                attrs,
            )
        }
        ("/xiaoneng/evaluation", "RatingSubmitted") => {
            let m = eval_ev::RatingSubmitted::decode(p)?;
            if m.defaulted {
                return Ok(out);
            }
            // The day it was rated on the evaluation service's clock.
            let on = m
                .rate_time
                .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
                .map(|t| t.with_timezone(&xiaoneng_kit::clock::cst()).date_naive())
                .unwrap_or(on);
            attrs.insert("window".into(), m.window_code.clone());
            attrs.insert("matter".into(), m.matter_id.clone());
            let mut all = attrs.clone();
            all.insert("good".into(), (!m.bad).to_string());
            out.push(fact(
                "rating",
                m.department.clone(),
                m.staff_id.clone(),
                on,
                all,
            ));
            if !m.bad {
                return Ok(out);
            }
            fact("bad_rating", m.department, m.staff_id, on, attrs)
        }
        ("/xiaoneng/queue", "ServiceFinished") => {
            let m = xiaoneng_proto::queue::events::v1::ServiceFinished::decode(p)?;
            if m.case_id.is_empty() {
                return Ok(out);
            }
            attrs.insert("matter".into(), m.matter_id.clone());
            attrs.insert("ticket".into(), m.ticket_id.clone());
            let mut f = fact("visit", String::new(), m.staff_id, on, attrs);
            f.subject = m.case_id;
            f
        }
        ("/xiaoneng/case", "CaseTransitioned") => {
            let m = case_ev::CaseTransitioned::decode(p)?;
            if m.to_state != xiaoneng_proto::case::v1::CaseState::Delivered as i32 {
                return Ok(out);
            }
            let on = date(&m.on_date, on);
            let promised = date(&m.promised_deadline, on);
            attrs.insert("matter".into(), m.matter_id.clone());
            attrs.insert("on_time".into(), (on <= promised).to_string());
            fact(
                "case_completed",
                m.handling_department,
                m.handler,
                on,
                attrs,
            )
        }
        ("/xiaoneng/evaluation", "BadRatingLoopChanged") => {
            let m = eval_ev::BadRatingLoopChanged::decode(p)?;
            if !m.overdue {
                return Ok(out);
            }
            let on = date(&m.on_date, on);
            fact("bad_rating_overdue", m.department, m.staff_id, on, attrs)
        }
        ("/xiaoneng/complaint", "ComplaintFiled") => {
            let m = complaint_ev::ComplaintFiled::decode(p)?;
            let on = date(&m.on_date, on);
            let kind =
                complaint_pb::Kind::try_from(m.kind).unwrap_or(complaint_pb::Kind::Unspecified);
            attrs.insert(
                "kind".into(),
                kind.as_str_name()
                    .trim_start_matches("KIND_")
                    .to_lowercase(),
            );
            attrs.insert("category".into(), m.category.clone());
            let t = m.target.unwrap_or_default();
            let staff = t.kind == complaint_pb::TargetKind::Staff as i32;
            fact(
                "complaint_filed",
                t.department,
                if staff { t.id } else { String::new() },
                on,
                attrs,
            )
        }
        ("/xiaoneng/complaint", "ComplaintConcluded") => {
            let m = complaint_ev::ComplaintConcluded::decode(p)?;
            let on = date(&m.on_date, on);
            let f = complaint_pb::Finding::try_from(m.finding)
                .unwrap_or(complaint_pb::Finding::Unspecified);
            attrs.insert(
                "finding".into(),
                f.as_str_name()
                    .trim_start_matches("FINDING_")
                    .to_lowercase(),
            );
            attrs.insert("category".into(), m.category.clone());
            attrs.insert("retaliation".into(), m.retaliation.to_string());
            fact(
                "complaint_concluded",
                m.responsible_unit,
                m.responsible_person,
                on,
                attrs,
            )
        }
        _ => return Ok(out),
    };
    out.push(one);
    Ok(out)
}

/// Parsed rule sets by (region, version): a loaded version never changes, so every replica
/// parses each once.
type ParsedRuleSets =
    std::sync::Mutex<std::collections::HashMap<(String, String), std::sync::Arc<RuleSet>>>;
static RULE_SETS: std::sync::LazyLock<ParsedRuleSets> = std::sync::LazyLock::new(Default::default);

/// The rule set in force for `region` on `on` (its version and rules), parsed once.
pub async fn in_force(
    conn: &mut PgConnection,
    region: &str,
    on: NaiveDate,
) -> anyhow::Result<Option<(String, std::sync::Arc<RuleSet>)>> {
    let Some(key) = store::rule_set_in_force(conn, region, on).await? else {
        return Ok(None);
    };
    let cached = RULE_SETS
        .lock()
        .map_err(|_| anyhow::anyhow!("rule set cache poisoned"))?
        .get(&key)
        .cloned();
    let set = match cached {
        Some(set) => set,
        None => {
            let body = store::rule_set_body(conn, &key.0, &key.1).await?;
            let set = RuleSet::parse(&body)
                .map_err(|bad| anyhow::anyhow!("stored rule set {key:?}: {bad:?}"))?;
            let set = std::sync::Arc::new(set);
            RULE_SETS
                .lock()
                .map_err(|_| anyhow::anyhow!("rule set cache poisoned"))?
                .insert(key.clone(), set.clone());
            set
        }
    };
    Ok(Some((key.1, set)))
}

/// Judges a fact by the rule set in force for its region on its date; the records it made.
pub async fn judge(tx: &mut PgConnection, f: &Fact) -> anyhow::Result<Vec<RecordRow>> {
    store::insert_fact(tx, f).await?;
    let Some((version, set)) = in_force(tx, &f.region_code, f.on).await? else {
        return Ok(Vec::new());
    };
    let mut made = Vec::new();
    for rule in set.rules.iter().filter(|r| r.matches(f)) {
        let evidence = if rule.count > 0 {
            let since = f.on - chrono::Duration::days(rule.within_days as i64 - 1);
            let ids = store::facts_of(tx, &f.kind, &f.person, since, f.on).await?;
            if f.person.is_empty() || ids.len() < rule.count as usize {
                continue;
            }
            ids
        } else {
            vec![f.event_id]
        };
        if let Some(r) = store::insert_record(tx, rule, &version, f, &evidence).await? {
            outbox::enqueue(tx, &events::record_created(&r)?).await?;
            made.push(r);
        }
    }
    Ok(made)
}

impl EventHandler for LedgerHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &ConsumedEvent) -> anyhow::Result<()> {
        store::record(tx, event).await?;
        if event.source == "/xiaoneng/catalog" {
            catalog_state(tx, event, self.clock.today()).await?;
        }
        for mut f in facts_of(event)? {
            // A window rating or a visit names no department: its matter's is the unit.
            if f.unit.is_empty() {
                if let Some(m) = f.attrs.get("matter") {
                    if let Some(unit) = store::unit_of_matter(tx, m).await? {
                        f.unit = unit;
                    }
                }
            }
            let visit = f.kind == "visit";
            judge(tx, &f).await?;
            if visit {
                over_promise(tx, &f.subject).await?;
            }
        }
        Ok(())
    }
}

/// What the catalog's events tell the rules: departments' names, matters' promises and
/// departments, staff members' certificates and enforcement matters (a staff member left
/// without a valid certificate on `today` is judged at once).
async fn catalog_state(
    tx: &mut PgConnection,
    event: &ConsumedEvent,
    today: NaiveDate,
) -> anyhow::Result<()> {
    use xiaoneng_proto::catalog::events::v1 as cat;
    let p = event.payload.as_slice();
    let name = event.event_type.rsplit('.').next().unwrap_or("");
    let on = event
        .occurred_at
        .with_timezone(&xiaoneng_kit::clock::cst())
        .date_naive();
    match name {
        "DepartmentCreated" => {
            let m = cat::DepartmentCreated::decode(p)?;
            store::set_department(tx, &m.department_id, &m.display_name).await?;
            store::name_department(tx, &m.department_id, &m.display_name).await?;
        }
        "MatterPublished" => {
            let m = cat::MatterPublished::decode(p)?;
            store::set_matter(tx, &m.matter_id, m.max_visits, &m.department_id).await?;
            if let Some(unit) = store::unit_of_matter(tx, &m.matter_id).await? {
                store::unit_for_matter_facts(tx, &m.matter_id, &unit).await?;
            }
            // Visits that arrived before the matter's promise was known are held against it now.
            for case in store::cases_visiting(tx, &m.matter_id).await? {
                over_promise(tx, &case).await?;
            }
        }
        "CertificateChanged" => {
            let m = cat::CertificateChanged::decode(p)?;
            let expiry = NaiveDate::parse_from_str(&m.expiry_date, "%Y-%m-%d")?;
            let revoked = m.status == "REVOKED";
            let (id, staff, region) = (&m.certificate_id, &m.staff_id, &m.region_code);
            store::set_certificate(tx, id, staff, region, revoked, expiry, on, event.event_id)
                .await?;
            uncertified(tx, &m.staff_id, today.max(on)).await?;
        }
        "MatterAssigned" => {
            let m = cat::MatterAssigned::decode(p)?;
            if m.enforcement {
                store::assign_enforcement(tx, &m.staff_id, &m.matter_id, &m.department_id).await?;
                uncertified(tx, &m.staff_id, today.max(date(&m.assigned_date, on))).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// 持证上岗: when none of a staff member's certificates is valid on `today` while they still
/// hold enforcement matters, the certificate that lapsed last becomes an
/// `uncertified_enforcement` fact (its subject: the certificate; attributes: the cause and the
/// matters), on the day it lapsed.
pub async fn uncertified(
    tx: &mut PgConnection,
    staff: &str,
    today: NaiveDate,
) -> anyhow::Result<()> {
    let Some((lapsed, matters)) = store::lapsed_certificate(tx, staff, today).await? else {
        return Ok(());
    };
    let unit = store::unit_of_department(tx, &matters[0].1).await?;
    let ids: Vec<&str> = matters.iter().map(|m| m.0.as_str()).collect();
    let cause = if lapsed.revoked { "revoked" } else { "expired" };
    let f = Fact {
        event_id: lapsed.event_id,
        kind: "uncertified_enforcement".into(),
        region_code: lapsed.region_code,
        subject: lapsed.certificate_id,
        unit,
        person: staff.to_string(),
        on: lapsed.lapsed_on,
        attrs: BTreeMap::from([
            ("cause".to_string(), cause.to_string()),
            ("matters".to_string(), ids.join(",")),
        ]),
    };
    judge(tx, &f).await?;
    Ok(())
}

/// The sweep's loop: every `interval`, a batch of certificates that expired with enforcement
/// matters still held ([`sweep_expired`]); again at once while batches are full.
pub async fn certificate_expiry(
    pool: PgPool,
    clock: xiaoneng_kit::clock::BusinessClock,
    interval: std::time::Duration,
    batch: i64,
    stop: xiaoneng_kit::background::CancellationToken,
) {
    xiaoneng_kit::background::every_draining("certificate_expiry", interval, stop, move || {
        let (pool, today) = (pool.clone(), clock.today());
        async move { Ok(sweep_expired(&pool, today, batch).await? as i64 >= batch) }
    })
    .await
}

/// One pass of the expiry sweep: up to `batch` certificates that expired before `today`,
/// claimed so that replicas share them, each staff member judged by [`uncertified`]; the
/// number claimed.
pub async fn sweep_expired(pool: &PgPool, today: NaiveDate, batch: i64) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let claimed = store::claim_expired(&mut tx, today, batch).await?;
    let mut staff: Vec<&str> = claimed.iter().map(|c| c.1.as_str()).collect();
    staff.sort();
    staff.dedup();
    for s in staff {
        uncertified(&mut tx, s, today).await?;
    }
    let ids: Vec<String> = claimed.iter().map(|c| c.0.clone()).collect();
    store::mark_expiry_judged(&mut tx, &ids).await?;
    tx.commit().await?;
    Ok(claimed.len())
}

/// 最多跑一次: when a case's visits exceed what its matter promises, the visit that went over
/// becomes an `excess_visit` fact (its attributes: the visits and the promise).
async fn over_promise(tx: &mut PgConnection, case_id: &str) -> anyhow::Result<()> {
    let visits = store::visits_of(tx, case_id).await?;
    let Some(last) = visits.last() else {
        return Ok(());
    };
    let matter = last.attrs.get("matter").cloned().unwrap_or_default();
    let Some(max) = store::max_visits(tx, &matter).await? else {
        return Ok(());
    };
    if (visits.len() as i32) <= max {
        return Ok(());
    }
    let mut f = last.clone();
    f.kind = "excess_visit".into();
    f.attrs.insert("visits".into(), visits.len().to_string());
    f.attrs.insert("max_visits".into(), max.to_string());
    judge(tx, &f).await?;
    Ok(())
}

/// A rule set from a request's `text`: INVALID_ARGUMENT naming every bad rule.
fn parse_rule_set(text: &str) -> AppResult<RuleSet> {
    RuleSet::parse(text).map_err(|bad| {
        let mut v = xiaoneng_kit::Violations::new();
        for b in bad {
            v.add("text", b);
        }
        v.into_result()
            .err()
            .unwrap_or_else(|| AppError::invalid("text", "is not valid"))
    })
}

/// Loads the starter rule set unless its version is there.
pub async fn load_starter(pool: &PgPool) -> anyhow::Result<()> {
    let set = RuleSet::parse(STARTER_RULES).map_err(|b| anyhow::anyhow!("starter rules: {b:?}"))?;
    let mut conn = pool.acquire().await?;
    store::insert_rule_set(&mut conn, &set, STARTER_RULES, "starter").await?;
    Ok(())
}

/// Loads a rule set for a region inside the caller's scope; refused whole when any rule is bad.
pub async fn load_rule_set(
    pool: &PgPool,
    scope: &RegionCode,
    text: &str,
    by: &str,
) -> AppResult<RuleSet> {
    let set = parse_rule_set(text)?;
    let region = RegionCode::parse(&set.region).map_err(|e| AppError::invalid("text", e))?;
    if !scope.contains(&region) {
        return Err(AppError::PermissionDenied(
            "a rule set is loaded for the caller's own region".into(),
        ));
    }
    let mut conn = pool.acquire().await?;
    if !store::insert_rule_set(&mut conn, &set, text, by).await? {
        return Err(AppError::AlreadyExists(format!(
            "rule set {} {} is loaded already",
            set.region, set.version
        )));
    }
    Ok(set)
}

/// Rule sets of a region scope (region, version, effective from), newest first.
pub async fn rule_sets(
    pool: &PgPool,
    scope: &RegionCode,
) -> AppResult<Vec<(String, String, NaiveDate)>> {
    store::rule_sets(pool, &scope.like_pattern()).await
}

/// Records of a region scope, newest first.
pub async fn records(
    pool: &PgPool,
    scope: &RegionCode,
    page: &PageRequest,
) -> AppResult<(Vec<RecordRow>, String)> {
    store::records(pool, &scope.like_pattern(), page).await
}

/// Ledger entries of a region scope, newest first, optionally of one event type.
pub async fn ledger(
    pool: &PgPool,
    scope: &RegionCode,
    event_type: Option<&str>,
    page: &PageRequest,
) -> AppResult<(Vec<LedgerRow>, String)> {
    store::list(pool, &scope.like_pattern(), event_type, page).await
}

/// 容错纠错: exempts a record of the caller's scope once, with its event.
pub async fn exempt(
    pool: &PgPool,
    scope: &RegionCode,
    id: uuid::Uuid,
    reason: &str,
    approver: &str,
    today: NaiveDate,
) -> AppResult<RecordRow> {
    let mut tx = pool.begin().await?;
    let mut r = store::record_for_update(&mut tx, id, &scope.like_pattern()).await?;
    r.exempt(reason, approver, today)?;
    store::save_exemption(&mut tx, &r).await?;
    outbox::enqueue(&mut tx, &events::record_exempted(&r)?).await?;
    tx.commit().await?;
    Ok(r)
}

/// An inspection with its findings, each a record with its event, in one transaction.
#[allow(clippy::too_many_arguments)]
pub async fn inspect(
    pool: &PgPool,
    region: &RegionCode,
    kind: crate::domain::InspectionKind,
    place: &str,
    inspector: &str,
    on: NaiveDate,
    findings: &[crate::domain::Finding],
    photos: &[String],
) -> AppResult<(uuid::Uuid, Vec<RecordRow>)> {
    let id = uuid::Uuid::now_v7();
    let mut tx = pool.begin().await?;
    store::insert_inspection(
        &mut tx,
        id,
        region.as_str(),
        kind,
        place,
        inspector,
        on,
        photos,
    )
    .await?;
    let mut made = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        let key = format!("inspection|{id}|{i}");
        if let Some(r) =
            store::insert_finding_record(&mut tx, &key, region.as_str(), f, &id.to_string(), on)
                .await?
        {
            outbox::enqueue(&mut tx, &events::record_created(&r)?).await?;
            made.push(r);
        }
    }
    tx.commit().await?;
    Ok((id, made))
}

/// What a proposed rule set would have made over a period's facts, beside what was made.
pub async fn what_if(
    pool: &PgPool,
    scope: &RegionCode,
    text: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<(Vec<(String, i64, i64)>, Vec<crate::domain::Proposed>)> {
    let set = parse_rule_set(text)?;
    let facts = store::facts_in(pool, &scope.like_pattern(), from, to).await?;
    let proposed = crate::domain::replay(&set, &facts);
    let actual = store::records_by_rule(pool, &scope.like_pattern(), from, to).await?;
    let mut rows: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (rule, n) in actual {
        rows.entry(rule).or_default().0 = n;
    }
    for r in set.rules.iter() {
        rows.entry(r.id.clone()).or_default();
    }
    for p in &proposed {
        rows.entry(p.rule_id.clone()).or_default().1 += 1;
    }
    Ok((
        rows.into_iter().map(|(k, (a, p))| (k, a, p)).collect(),
        proposed,
    ))
}

fn period_of(p: &str) -> AppResult<(NaiveDate, NaiveDate)> {
    crate::domain::scoring::period(p).ok_or_else(|| {
        AppError::invalid(
            "period",
            "must be a month (2026-11), a quarter (2026-Q4) or a year (2026)",
        )
    })
}

/// What a period's rankings are computed from: its facts and records, and the weights (with
/// the rule set's version) in force at its end.
struct PeriodData {
    facts: Vec<Fact>,
    records: Vec<RecordRow>,
    weights: crate::domain::scoring::Weights,
    version: String,
}

async fn period_data(pool: &PgPool, scope: &RegionCode, period: &str) -> AppResult<PeriodData> {
    let (from, to) = period_of(period)?;
    let facts = store::facts_in(pool, &scope.like_pattern(), from, to).await?;
    let records = store::records_in(pool, &scope.like_pattern(), from, to).await?;
    let mut conn = pool.acquire().await?;
    let (version, weights) = match in_force(&mut conn, scope.as_str(), to).await? {
        Some((v, set)) => (v, set.scoring.clone()),
        None => (String::new(), crate::domain::scoring::Weights::default()),
    };
    Ok(PeriodData {
        facts,
        records,
        weights,
        version,
    })
}

/// The ranking of the units (or, `by_staff`, the staff) from a period's data.
fn ranked(d: &PeriodData, by_staff: bool) -> Vec<crate::domain::scoring::Ranked> {
    use crate::domain::scoring::{self, Completion, Observed};
    let key = |unit: &str, person: &str| {
        if by_staff {
            person.to_string()
        } else {
            unit.to_string()
        }
    };
    let completions: Vec<Completion> = d
        .facts
        .iter()
        .filter(|f| f.kind == "case_completed")
        .map(|f| Completion {
            key: key(&f.unit, &f.person),
            matter: f.attrs.get("matter").cloned().unwrap_or_default(),
            on_time: f.attrs.get("on_time").is_some_and(|v| v == "true"),
        })
        .collect();
    let expected = scoring::expected_on_time(&completions);
    let mut observed: BTreeMap<String, Observed> = BTreeMap::new();
    for f in d.facts.iter().filter(|f| f.kind == "rating") {
        let o = observed.entry(key(&f.unit, &f.person)).or_default();
        o.ratings += 1;
        o.good += f.attrs.get("good").is_some_and(|v| v == "true") as u32;
    }
    for c in &completions {
        let o = observed.entry(c.key.clone()).or_default();
        o.cases += 1;
        o.on_time += c.on_time as u32;
    }
    for (k, e) in expected {
        observed.entry(k).or_default().expected_on_time = e;
    }
    scoring::count_records(&mut observed, &d.records, |r| key(&r.unit, &r.person));
    observed.remove("");
    scoring::rank(observed, &d.weights)
}

/// Scores and ranks the units (or, `by_staff`, the staff) of a region scope in a period, by the
/// weights of the rule set in force at its end; the rule set's version.
pub async fn ranking(
    pool: &PgPool,
    scope: &RegionCode,
    period: &str,
    by_staff: bool,
) -> AppResult<(Vec<crate::domain::scoring::Ranked>, String)> {
    let d = period_data(pool, scope, period).await?;
    Ok((ranked(&d, by_staff), d.version))
}

/// Records an action on a unit or person at the bottom (or, a commendation, the top) of the
/// period's ranking once, with its event.
pub async fn record_action(
    pool: &PgPool,
    scope: &RegionCode,
    period: &str,
    a: &crate::domain::bulletin::ActionRow,
    by: &str,
) -> AppResult<()> {
    period_of(period)?;
    let mut v = xiaoneng_kit::Violations::new();
    v.text(&a.key, "key", 100);
    v.check(
        crate::domain::bulletin::ACTIONS
            .iter()
            .any(|(k, _)| *k == a.action),
        "action",
        "must be interview, training, adjustment or commendation",
    );
    v.into_result()?;
    // One read of the period for both rankings: the key may be a unit or a person.
    let d = period_data(pool, scope, period).await?;
    crate::domain::bulletin::check_action(
        &a.action,
        &a.key,
        &[&ranked(&d, false), &ranked(&d, true)],
    )?;
    let mut tx = pool.begin().await?;
    if !store::insert_action(&mut tx, scope.as_str(), period, a, by).await? {
        return Err(AppError::AlreadyExists(
            "the action is recorded already".into(),
        ));
    }
    outbox::enqueue(&mut tx, &events::action_recorded(scope, period, a)?).await?;
    tx.commit().await?;
    Ok(())
}

/// Renders, stores and publishes the bulletin of a region scope and period: (Markdown, HTML).
pub async fn publish_bulletin(
    pool: &PgPool,
    scope: &RegionCode,
    period: &str,
    by: &str,
) -> AppResult<(uuid::Uuid, String, String)> {
    let d = period_data(pool, scope, period).await?;
    let actions = store::actions(pool, scope.as_str(), period).await?;
    let (md, html) = crate::domain::bulletin::render(
        scope.as_str(),
        period,
        &ranked(&d, false),
        &d.records,
        &actions,
    );
    let id = uuid::Uuid::now_v7();
    let mut tx = pool.begin().await?;
    store::insert_bulletin(&mut tx, id, scope.as_str(), period, &md, &html, by).await?;
    outbox::enqueue(
        &mut tx,
        &events::bulletin_published(id, scope, period, &d.records)?,
    )
    .await?;
    tx.commit().await?;
    Ok((id, md, html))
}

/// A stored bulletin of the caller's scope (another region's is not found).
pub async fn bulletin(
    pool: &PgPool,
    scope: &RegionCode,
    id: uuid::Uuid,
) -> AppResult<crate::domain::bulletin::BulletinRow> {
    store::bulletin(pool, &scope.like_pattern(), id)
        .await?
        .ok_or_else(|| AppError::not_found("bulletin", id.to_string()))
}

/// The stored bulletins of a region scope, newest first, optionally of one period.
pub async fn bulletins(
    pool: &PgPool,
    scope: &RegionCode,
    period: &str,
    page: &PageRequest,
) -> AppResult<(Vec<crate::domain::bulletin::BulletinRow>, String)> {
    let period = period.trim();
    if !period.is_empty() && crate::domain::scoring::period(period).is_none() {
        return Err(AppError::invalid(
            "period",
            "must be YYYY-MM, YYYY-Qn or YYYY",
        ));
    }
    store::bulletins(
        pool,
        &scope.like_pattern(),
        (!period.is_empty()).then_some(period),
        page,
    )
    .await
}

/// Names a demonstration unit of `year` in the caller's region, with its event.
pub async fn grant_title(
    pool: &PgPool,
    region: &RegionCode,
    unit: &str,
    year: i32,
    by: &str,
) -> AppResult<()> {
    let mut v = xiaoneng_kit::Violations::new();
    v.text(unit, "unit", 100);
    v.check((2000..=2100).contains(&year), "year", "must be a year");
    v.into_result()?;
    let mut tx = pool.begin().await?;
    if !store::grant_title(&mut tx, region.as_str(), unit.trim(), year, by).await? {
        return Err(AppError::AlreadyExists(format!(
            "{unit} holds the title of {year}"
        )));
    }
    outbox::enqueue(
        &mut tx,
        &events::title_changed(region, unit.trim(), year, "held", &[])?,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Assesses every demonstration unit of `year` in the scope against its region's criteria: kept,
/// or lost with every reason; each with its event. Returns (region, unit, status, reasons).
pub async fn assess_titles(
    pool: &PgPool,
    scope: &RegionCode,
    year: i32,
    by: &str,
) -> AppResult<Vec<(String, String, String, Vec<String>)>> {
    use crate::domain::scoring::{assess, Year};
    let from = NaiveDate::from_ymd_opt(year, 1, 1)
        .ok_or_else(|| AppError::invalid("year", "must be a year"))?;
    let to = NaiveDate::from_ymd_opt(year, 12, 31)
        .ok_or_else(|| AppError::invalid("year", "must be a year"))?;
    let facts = store::facts_in(pool, &scope.like_pattern(), from, to).await?;
    let records = store::records_in(pool, &scope.like_pattern(), from, to).await?;
    let mut tx = pool.begin().await?;
    let held = store::held_titles(&mut tx, &scope.like_pattern(), year).await?;
    let mut out = Vec::new();
    for (region, unit) in held {
        let criteria = in_force(&mut tx, &region, to)
            .await?
            .map(|(_, s)| s.demonstration.clone())
            .unwrap_or_default();
        let mut y = Year::default();
        for f in facts
            .iter()
            .filter(|f| f.unit == unit && f.region_code == region)
        {
            match f.kind.as_str() {
                "rating" => {
                    y.ratings += 1;
                    y.good += f.attrs.get("good").is_some_and(|v| v == "true") as u32;
                }
                "complaint_concluded" => {
                    let found = f.attrs.get("finding").map(String::as_str);
                    let category = f.attrs.get("category").cloned().unwrap_or_default();
                    if matches!(found, Some("substantiated" | "partly_substantiated"))
                        && criteria.misconduct.contains(&category)
                    {
                        y.misconduct += 1;
                    }
                }
                _ => {}
            }
        }
        y.red_cards = records
            .iter()
            .filter(|r| r.unit == unit && r.region_code == region && r.exemption_reason.is_none())
            .filter(|r| r.level == crate::domain::Level::RedCard)
            .count() as u32;
        let (status, reasons) = match assess(&y, &criteria) {
            Ok(()) => ("held", Vec::new()),
            Err(why) => ("revoked", why),
        };
        store::set_title(&mut tx, &region, &unit, year, status, &reasons, by).await?;
        let r = RegionCode::parse(&region).map_err(anyhow::Error::msg)?;
        outbox::enqueue(
            &mut tx,
            &events::title_changed(&r, &unit, year, status, &reasons)?,
        )
        .await?;
        out.push((region, unit, status.to_string(), reasons));
    }
    tx.commit().await?;
    Ok(out)
}
