//! 潮汐窗口: every `tidal_interval_ms`, each hall with policies is looked at under its lock (one
//! replica at a time) by [`Queue::tidal_pass`].

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::Queue;

/// Looks at every hall with tidal policies, now and every `interval`, until shutdown.
pub async fn run(api: Arc<Queue>, interval: Duration, stop: CancellationToken) {
    xiaoneng_kit::background::every("queue_tidal", interval, stop, || {
        let api = api.clone();
        async move {
            for h in api.tidal_halls().await? {
                match api.tidal_pass(h).await {
                    Ok(events) => {
                        for e in events {
                            tracing::info!(hall = %h, category = %e.category, action = %e.action, window = %e.window_code, reason = %e.reason, "tidal window");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, hall = %h, "tidal evaluation failed"),
                }
            }
            Ok(())
        }
    })
    .await
}
