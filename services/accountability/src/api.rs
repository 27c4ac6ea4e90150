//! The gRPC adapter: check the caller's roles against [`AUTHORIZATION`], parse, call one use
//! case of [`crate::service`], map.

use sqlx::PgPool;
use tonic::{Request, Response, Status};
use xiaoneng_kit::auth::{self, roles, Authorization};
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::region;
use xiaoneng_proto::accountability::v1 as pb;

use crate::service;

/// Method → the roles that may call it: the efficiency office and discipline inspectors, each
/// within their region (the city over its counties).
pub const AUTHORIZATION: Authorization = &[
    ("ListLedgerEntries", &[roles::SUPERVISOR, roles::INSPECTOR]),
    // The efficiency office sets the rules of its region.
    ("LoadRuleSet", &[roles::SUPERVISOR]),
    ("ListRuleSets", &[roles::SUPERVISOR, roles::INSPECTOR]),
    ("ListRecords", &[roles::SUPERVISOR, roles::INSPECTOR]),
    ("ExemptRecord", &[roles::SUPERVISOR]),
    ("RecordInspection", &[roles::SUPERVISOR, roles::INSPECTOR]),
    ("WhatIf", &[roles::SUPERVISOR]),
    ("GetRanking", &[roles::SUPERVISOR, roles::INSPECTOR]),
    ("RecordAction", &[roles::SUPERVISOR]),
    ("PublishBulletin", &[roles::SUPERVISOR]),
    ("GetBulletin", &[roles::SUPERVISOR, roles::INSPECTOR]),
    ("ListBulletins", &[roles::SUPERVISOR, roles::INSPECTOR]),
    ("GrantTitle", &[roles::SUPERVISOR]),
    ("AssessTitles", &[roles::SUPERVISOR]),
];

fn record_pb(x: crate::domain::RecordRow) -> pb::Record {
    pb::Record {
        id: x.id.to_string(),
        region_code: x.region_code,
        rule_id: x.rule_id,
        rule_version: x.rule_version,
        level: x.level.name().to_string(),
        title: x.title,
        unit: x.unit,
        person: x.person,
        subject: x.subject,
        evidence: x.evidence.iter().map(|e| e.to_string()).collect(),
        on_date: x.on_date.to_string(),
        exemption_reason: x.exemption_reason.unwrap_or_default(),
        exemption_approver: x.exemption_approver.unwrap_or_default(),
        exemption_date: x.exemption_date.map(|d| d.to_string()).unwrap_or_default(),
    }
}

/// The region of a period's request (the caller's or one inside it) once its period is a
/// period: a bad region and a bad period are both reported, in one INVALID_ARGUMENT.
fn scope_of_period(
    caller: &auth::Caller,
    region_code: &str,
    period: &str,
) -> Result<xiaoneng_kit::region::RegionCode, xiaoneng_kit::AppError> {
    let mut v = xiaoneng_kit::Violations::new();
    if let (false, Err(e)) = (
        region_code.is_empty(),
        xiaoneng_kit::region::RegionCode::parse(region_code),
    ) {
        v.add("region_code", e);
    }
    if crate::domain::scoring::period(period.trim()).is_none() {
        v.add(
            "period",
            "must be a month (2026-11), a quarter (2026-Q4) or a year (2026)",
        );
    }
    v.into_result()?;
    region::narrow(&caller.region, region_code, "region_code")
}

fn bulletin_pb(b: crate::domain::bulletin::BulletinRow) -> pb::Bulletin {
    pb::Bulletin {
        id: b.id.to_string(),
        region_code: b.region_code,
        period: b.period,
        markdown: b.markdown,
        html: b.html,
        published_by: b.published_by,
        published_at: b.published_at.to_rfc3339(),
    }
}

fn info(region: String, version: String, from: chrono::NaiveDate, rules: i32) -> pb::RuleSetInfo {
    pb::RuleSetInfo {
        region_code: region,
        version,
        effective_from: from.to_string(),
        rules,
    }
}

pub struct AccountabilityApi {
    pool: PgPool,
    /// The business clock: the default day of exemptions, inspections and what-if.
    clock: xiaoneng_kit::clock::BusinessClock,
}

impl AccountabilityApi {
    pub fn new(pool: PgPool, clock: xiaoneng_kit::clock::BusinessClock) -> Self {
        AccountabilityApi { pool, clock }
    }
}

#[tonic::async_trait]
impl pb::accountability_service_server::AccountabilityService for AccountabilityApi {
    async fn list_ledger_entries(
        &self,
        req: Request<pb::ListLedgerEntriesRequest>,
    ) -> Result<Response<pb::ListLedgerEntriesResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "ListLedgerEntries")?;
        let r = req.get_ref();
        let page = PageRequest::parse(r.page_size, &r.page_token)?;
        let scope = region::narrow(&caller.region, &r.region_code, "region_code")?;
        let event_type = Some(r.event_type.as_str()).filter(|t| !t.is_empty());
        let (rows, next_page_token) =
            service::ledger(&self.pool, &scope, event_type, &page).await?;
        Ok(Response::new(pb::ListLedgerEntriesResponse {
            entries: rows
                .into_iter()
                .map(|e| pb::LedgerEntry {
                    event_id: e.event_id.to_string(),
                    event_type: e.event_type,
                    source: e.source,
                    subject: e.subject,
                    region_code: e.region_code,
                    occur_time: Some(xiaoneng_kit::timestamp(e.occurred_at)),
                    record_time: Some(xiaoneng_kit::timestamp(e.recorded_at)),
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn load_rule_set(
        &self,
        req: Request<pb::LoadRuleSetRequest>,
    ) -> Result<Response<pb::LoadRuleSetResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "LoadRuleSet")?;
        let set = service::load_rule_set(
            &self.pool,
            &caller.region,
            &req.get_ref().text,
            &caller.subject,
        )
        .await?;
        let n = set.rules.len() as i32;
        Ok(Response::new(pb::LoadRuleSetResponse {
            rule_set: Some(info(set.region, set.version, set.effective_from, n)),
        }))
    }

    async fn list_rule_sets(
        &self,
        req: Request<pb::ListRuleSetsRequest>,
    ) -> Result<Response<pb::ListRuleSetsResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "ListRuleSets")?;
        let scope = region::narrow(&caller.region, &req.get_ref().region_code, "region_code")?;
        let sets = service::rule_sets(&self.pool, &scope).await?;
        Ok(Response::new(pb::ListRuleSetsResponse {
            rule_sets: sets.into_iter().map(|(r, v, f)| info(r, v, f, 0)).collect(),
        }))
    }

    async fn list_records(
        &self,
        req: Request<pb::ListRecordsRequest>,
    ) -> Result<Response<pb::ListRecordsResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "ListRecords")?;
        let r = req.get_ref();
        let page = PageRequest::parse(r.page_size, &r.page_token)?;
        let scope = region::narrow(&caller.region, &r.region_code, "region_code")?;
        let (rows, next_page_token) = service::records(&self.pool, &scope, &page).await?;
        Ok(Response::new(pb::ListRecordsResponse {
            records: rows.into_iter().map(record_pb).collect(),
            next_page_token,
        }))
    }

    async fn exempt_record(
        &self,
        req: Request<pb::ExemptRecordRequest>,
    ) -> Result<Response<pb::ExemptRecordResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "ExemptRecord")?;
        let r = req.get_ref();
        let id = uuid::Uuid::parse_str(&r.record_id)
            .map_err(|_| xiaoneng_kit::AppError::invalid("record_id", "must be an id"))?;
        let rec = service::exempt(
            &self.pool,
            &caller.region,
            id,
            &r.reason,
            &r.approver,
            self.clock.today(),
        )
        .await?;
        Ok(Response::new(pb::ExemptRecordResponse {
            record: Some(record_pb(rec)),
        }))
    }

    async fn record_inspection(
        &self,
        req: Request<pb::RecordInspectionRequest>,
    ) -> Result<Response<pb::RecordInspectionResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "RecordInspection")?;
        let r = req.get_ref();
        let mut v = xiaoneng_kit::Violations::new();
        let kind = crate::domain::InspectionKind::from_name(&r.kind);
        v.check(
            kind.is_some(),
            "kind",
            "must be open_visit, covert_visit, simulated or random_check",
        );
        v.text(&r.place, "place", 200);
        v.check(
            !r.findings.is_empty(),
            "findings",
            "an inspection records its findings",
        );
        let findings: Vec<_> = r
            .findings
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                crate::domain::Finding::parse(i, &f.unit, &f.person, &f.level, &f.title, &mut v)
            })
            .collect();
        let on = xiaoneng_kit::parse_date_field(&r.on_date, "on_date", self.clock.today());
        v.into_result()?;
        let on = on?;
        let region = region::narrow(&caller.region, &r.region_code, "region_code")?;
        let (id, records) = service::inspect(
            &self.pool,
            &region,
            kind.expect("checked"),
            r.place.trim(),
            &caller.subject,
            on,
            &findings,
            &r.photos,
        )
        .await?;
        Ok(Response::new(pb::RecordInspectionResponse {
            inspection_id: id.to_string(),
            records: records.into_iter().map(record_pb).collect(),
        }))
    }

    async fn what_if(
        &self,
        req: Request<pb::WhatIfRequest>,
    ) -> Result<Response<pb::WhatIfResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "WhatIf")?;
        let r = req.get_ref();
        let from = xiaoneng_kit::parse_date_field(&r.from_date, "from_date", self.clock.today())?;
        let to = xiaoneng_kit::parse_date_field(&r.to_date, "to_date", self.clock.today())?;
        let (rules, proposed) =
            service::what_if(&self.pool, &caller.region, &r.text, from, to).await?;
        Ok(Response::new(pb::WhatIfResponse {
            rules: rules
                .into_iter()
                .map(|(rule_id, actual, proposed)| pb::WhatIfRule {
                    rule_id,
                    actual,
                    proposed,
                })
                .collect(),
            proposed: proposed
                .into_iter()
                .map(|p| pb::Record {
                    rule_id: p.rule_id,
                    level: p.level.name().to_string(),
                    unit: p.unit,
                    person: p.person,
                    subject: p.subject,
                    on_date: p.on.to_string(),
                    ..Default::default()
                })
                .collect(),
        }))
    }

    async fn get_ranking(
        &self,
        req: Request<pb::GetRankingRequest>,
    ) -> Result<Response<pb::GetRankingResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "GetRanking")?;
        let r = req.get_ref();
        let scope = scope_of_period(&caller, &r.region_code, &r.period)?;
        let (rows, rule_version) = service::ranking(&self.pool, &scope, &r.period, r.staff).await?;
        Ok(Response::new(pb::GetRankingResponse {
            rows: rows
                .into_iter()
                .map(|x| {
                    let (s, lo, hi) = x.satisfaction.unwrap_or_default();
                    pb::RankingRow {
                        key: x.key,
                        rank: x.rank.unwrap_or(0) as i32,
                        score: x.score,
                        ratings: x.observed.ratings as i32,
                        good_ratings: x.observed.good as i32,
                        satisfaction: s,
                        satisfaction_lower: lo,
                        satisfaction_upper: hi,
                        cases: x.observed.cases as i32,
                        on_time: x.observed.on_time as i32,
                        expected_on_time: x.observed.expected_on_time,
                        on_time_index: x.on_time_index.unwrap_or_default(),
                        penalty: x.penalty,
                        records: x
                            .observed
                            .records
                            .iter()
                            .map(|(l, n)| format!("{l}:{n}"))
                            .collect(),
                        bottom: x.bottom,
                        top: x.top,
                    }
                })
                .collect(),
            rule_version,
        }))
    }

    async fn record_action(
        &self,
        req: Request<pb::RecordActionRequest>,
    ) -> Result<Response<pb::RecordActionResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "RecordAction")?;
        let r = req.get_ref();
        let scope = scope_of_period(&caller, &r.region_code, &r.period)?;
        let a = crate::domain::bulletin::ActionRow {
            key: r.key.trim().to_string(),
            action: r.action.trim().to_string(),
            note: r.note.trim().to_string(),
        };
        service::record_action(&self.pool, &scope, &r.period, &a, &caller.subject).await?;
        Ok(Response::new(pb::RecordActionResponse {}))
    }

    async fn publish_bulletin(
        &self,
        req: Request<pb::PublishBulletinRequest>,
    ) -> Result<Response<pb::PublishBulletinResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "PublishBulletin")?;
        let r = req.get_ref();
        let scope = scope_of_period(&caller, &r.region_code, &r.period)?;
        let (id, markdown, html) =
            service::publish_bulletin(&self.pool, &scope, &r.period, &caller.subject).await?;
        Ok(Response::new(pb::PublishBulletinResponse {
            bulletin_id: id.to_string(),
            markdown,
            html,
        }))
    }

    async fn get_bulletin(
        &self,
        req: Request<pb::GetBulletinRequest>,
    ) -> Result<Response<pb::GetBulletinResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "GetBulletin")?;
        let id = uuid::Uuid::parse_str(&req.get_ref().bulletin_id)
            .map_err(|_| xiaoneng_kit::AppError::invalid("bulletin_id", "must be an id"))?;
        let b = service::bulletin(&self.pool, &caller.region, id).await?;
        Ok(Response::new(pb::GetBulletinResponse {
            bulletin: Some(bulletin_pb(b)),
        }))
    }

    async fn list_bulletins(
        &self,
        req: Request<pb::ListBulletinsRequest>,
    ) -> Result<Response<pb::ListBulletinsResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "ListBulletins")?;
        let r = req.get_ref();
        let page = PageRequest::parse(r.page_size, &r.page_token)?;
        let scope = region::narrow(&caller.region, &r.region_code, "region_code")?;
        let (rows, next_page_token) =
            service::bulletins(&self.pool, &scope, &r.period, &page).await?;
        Ok(Response::new(pb::ListBulletinsResponse {
            bulletins: rows.into_iter().map(bulletin_pb).collect(),
            next_page_token,
        }))
    }

    async fn grant_title(
        &self,
        req: Request<pb::GrantTitleRequest>,
    ) -> Result<Response<pb::GrantTitleResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "GrantTitle")?;
        let r = req.get_ref();
        let region = region::narrow(&caller.region, &r.region_code, "region_code")?;
        service::grant_title(&self.pool, &region, &r.unit, r.year, &caller.subject).await?;
        Ok(Response::new(pb::GrantTitleResponse {
            title: Some(pb::Title {
                region_code: region.as_str().to_string(),
                unit: r.unit.trim().to_string(),
                year: r.year,
                status: "held".into(),
                reasons: vec![],
            }),
        }))
    }

    async fn assess_titles(
        &self,
        req: Request<pb::AssessTitlesRequest>,
    ) -> Result<Response<pb::AssessTitlesResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "AssessTitles")?;
        let r = req.get_ref();
        let scope = region::narrow(&caller.region, &r.region_code, "region_code")?;
        let titles = service::assess_titles(&self.pool, &scope, r.year, &caller.subject).await?;
        Ok(Response::new(pb::AssessTitlesResponse {
            titles: titles
                .into_iter()
                .map(|(region_code, unit, status, reasons)| pb::Title {
                    region_code,
                    unit,
                    year: r.year,
                    status,
                    reasons,
                })
                .collect(),
        }))
    }
}
