//! Keeps each hall's hot queue equal to the record. A call takes a ticket out of Redis before
//! its transaction commits; a process that dies in between leaves the ticket `waiting` in
//! PostgreSQL and nowhere in the queue (the hall's `ready` marker still stands, so nothing
//! rebuilds). The same holds for a crash between a commit and its enqueue. Every
//! `reconcile_interval_ms`, and at start, each loaded hall is compared with the record under
//! the hall's rebuild lock (one replica per hall at a time): stranded tickets go back to their
//! lane, entries that left `waiting` are removed, in-flight entries of dead calls forgotten.

use std::collections::BTreeSet;

use chrono::Utc;
use uuid::Uuid;
use xiaoneng_kit::AppResult;

use super::{entry_of, Queue};
use crate::domain;
use crate::store;

impl Queue {
    /// Every hall's id.
    pub async fn hall_ids(&self) -> AppResult<Vec<Uuid>> {
        store::hall_ids(&self.pool).await
    }

    /// One hall, under its rebuild lock (skipped when another replica holds it).
    pub async fn reconcile_hall(&self, hall: Uuid, grace_ms: i64) -> AppResult<usize> {
        let api = self;
        let mut conn = api.pool.acquire().await?;
        if !store::try_lock_hall_queue(&mut conn, hall).await? {
            return Ok(0);
        }
        let result = async {
            let windows: Vec<Uuid> = store::windows(&mut conn, hall)
                .await?
                .iter()
                .map(|w| w.id)
                .collect();
            // Redis first, then the record: a ticket that commits in between is either already
            // in the snapshot or still waiting in the record, and enqueueing it twice is a no-op.
            let Some(snap) = api.hot.snapshot(hall, &windows).await? else {
                return Ok(0); // not loaded: the next call rebuilds it from the record
            };
            let waiting = store::waiting_tickets(&mut conn, hall).await?;
            let ids: BTreeSet<Uuid> = waiting.iter().map(|t| t.id).collect();
            let plan = domain::repair(
                &snap.queued,
                &snap.in_flight,
                &ids,
                Utc::now().timestamp_millis(),
                grace_ms,
            );
            let back: Vec<_> = waiting
                .iter()
                .filter(|t| plan.requeue.contains(&t.id))
                .map(entry_of)
                .collect();
            if !back.is_empty() {
                api.hot.enqueue(hall, &back).await?;
                tracing::warn!(%hall, tickets = back.len(), "stranded tickets put back in the queue");
                metrics::counter!("queue_tickets_requeued_total").increment(back.len() as u64);
            }
            for (key, t) in &plan.unqueue {
                api.hot.zrem(key, *t).await?;
            }
            for t in &plan.forget {
                api.hot.settle(hall, *t).await?;
            }
            Ok(back.len())
        }
        .await;
        store::unlock_hall_queue(&mut conn, hall).await?;
        result
    }
}
