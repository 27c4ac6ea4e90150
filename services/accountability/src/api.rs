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
pub const AUTHORIZATION: Authorization =
    &[("ListLedgerEntries", &[roles::SUPERVISOR, roles::INSPECTOR])];

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
}
