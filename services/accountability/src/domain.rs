//! The ledger's record. The supervision rules (warnings, cards, rankings, bulletins) come with
//! the accountability issue and live here, pure.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One event as the supervision ledger recorded it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LedgerRow {
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub source: String,
    pub subject: String,
    pub region_code: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}
