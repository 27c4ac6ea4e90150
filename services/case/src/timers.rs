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
    loop {
        let snap = calendars.current();
        let result = xiaoneng_kit::background::in_pass(
            "case_timers",
            service::fire_due(&pool, &snap, policy, &clock, batch),
        )
        .await;
        metrics::counter!("background_passes_total", "loop" => "case_timers").increment(1);
        let wait = match result {
            Ok(n) if n as i64 >= batch => Duration::ZERO,
            Ok(n) => {
                if n > 0 {
                    tracing::info!(fired = n, "case timers fired");
                }
                interval
            }
            Err(e) => {
                tracing::warn!(error = %e, "case timers: will retry");
                interval
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
