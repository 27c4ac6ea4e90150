//! The reconciler's loop: every `reconcile_interval_ms`, and at start, each hall's hot queue
//! is compared with the record ([`Queue::reconcile_hall`]).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use xiaoneng_kit::AppResult;

use crate::service::Queue;

/// The loop: a pass now, then one every `interval`, until `stop`.
pub async fn run(queue: Arc<Queue>, interval: Duration, grace_ms: i64, stop: CancellationToken) {
    xiaoneng_kit::background::every("queue_reconcile", interval, stop, move || {
        let queue = queue.clone();
        async move {
            pass(&queue, grace_ms).await?;
            Ok(())
        }
    })
    .await
}

/// Reconciles every hall; returns how many stranded tickets went back.
pub async fn pass(api: &Queue, grace_ms: i64) -> AppResult<usize> {
    let mut requeued = 0;
    for hall in api.hall_ids().await? {
        requeued += api.reconcile_hall(hall, grace_ms).await?;
    }
    Ok(requeued)
}
