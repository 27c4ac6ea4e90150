//! Ledger persistence.

use sqlx::{PgConnection, PgPool};
use xiaoneng_kit::events::ConsumedEvent;
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::{AppError, AppResult};

pub use crate::domain::LedgerRow;

pub async fn record(tx: &mut PgConnection, e: &ConsumedEvent) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO ledger_entries (event_id, event_type, source, subject, region_code, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.event_id)
    .bind(&e.event_type)
    .bind(&e.source)
    .bind(&e.subject)
    .bind(&e.region_code)
    .bind(e.occurred_at)
    .execute(tx)
    .await?;
    Ok(())
}

/// Entries in regions matching `region_like`, newest first, optionally of one type.
pub async fn list(
    pool: &PgPool,
    region_like: &str,
    event_type: Option<&str>,
    page: &PageRequest,
) -> AppResult<(Vec<LedgerRow>, String)> {
    let before = match &page.after {
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| AppError::invalid("page_token", "is not valid"))?,
        ),
        None => None,
    };
    let rows: Vec<LedgerRow> = sqlx::query_as(
        "SELECT id, event_id, event_type, source, subject, region_code, occurred_at, recorded_at
         FROM ledger_entries
         WHERE region_code LIKE $1 AND ($2::text IS NULL OR event_type = $2) AND ($3::bigint IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(region_like)
    .bind(event_type)
    .bind(before)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(page.finish(rows, |r| r.id.to_string()))
}
