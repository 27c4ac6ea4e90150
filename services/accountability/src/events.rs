//! What accountability consumes: every event of every service, recorded in the ledger in the
//! same transaction that marks it applied.

use sqlx::PgConnection;
use xiaoneng_kit::consumer::EventHandler;
use xiaoneng_kit::events::ConsumedEvent;

pub struct LedgerHandler;

impl EventHandler for LedgerHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &ConsumedEvent) -> anyhow::Result<()> {
        crate::store::record(tx, event).await?;
        Ok(())
    }
}
