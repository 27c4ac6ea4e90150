//! The reconciler's loop: every `reconcile_interval_ms`, and at start, each hall's hot queue
//! is compared with the record ([`Queue::reconcile_hall`]).

use xiaoneng_kit::AppResult;

use crate::service::Queue;

/// Reconciles every hall; returns how many stranded tickets went back.
pub async fn pass(api: &Queue, grace_ms: i64) -> AppResult<usize> {
    let mut requeued = 0;
    for hall in api.hall_ids().await? {
        requeued += api.reconcile_hall(hall, grace_ms).await?;
    }
    Ok(requeued)
}
