//! The ledger's use cases: record each consumed event once (in the consumer's transaction,
//! which also marks the event applied) and read the ledger within a region scope.

use sqlx::{PgConnection, PgPool};
use xiaoneng_kit::consumer::EventHandler;
use xiaoneng_kit::events::ConsumedEvent;
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::AppResult;

use crate::domain::LedgerRow;
use crate::store;

/// Every event of every service, recorded in the ledger in the same transaction that marks it
/// applied.
pub struct LedgerHandler;

impl EventHandler for LedgerHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &ConsumedEvent) -> anyhow::Result<()> {
        store::record(tx, event).await?;
        Ok(())
    }
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
