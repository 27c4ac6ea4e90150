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
];

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
}

impl AccountabilityApi {
    pub fn new(pool: PgPool) -> Self {
        AccountabilityApi { pool }
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
            records: rows
                .into_iter()
                .map(|x| pb::Record {
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
                })
                .collect(),
            next_page_token,
        }))
    }
}
