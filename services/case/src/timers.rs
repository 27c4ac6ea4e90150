//! The legal clock's firing loop: every interval it fires what is due ([`service::fire_due`]);
//! it goes on at once while batches are full. The rules are in `domain` (which clocks run,
//! what is due when, what a due timer does); the transaction is the service's.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use xiaoneng_kit::calendar::LiveCalendars;
use xiaoneng_kit::clock::BusinessClock;

use crate::domain::Policy;
use crate::service;

/// The firing loop: every `interval`, fires what is due; goes on at once while batches are full.
pub async fn run(
    pool: PgPool,
    calendars: LiveCalendars,
    policy: Policy,
    clock: BusinessClock,
    interval: Duration,
    batch: i64,
    stop: CancellationToken,
) {
    xiaoneng_kit::background::every_draining("case_timers", interval, stop, move || {
        let (pool, snap) = (pool.clone(), calendars.current());
        async move {
            let n = service::fire_due(&pool, &snap, policy, &clock, batch).await?;
            if n > 0 {
                tracing::info!(fired = n, "case timers fired");
            }
            Ok(n as i64 >= batch)
        }
    })
    .await
}
