//! Background loops every service runs the same way: one pass now, then one every interval,
//! until shutdown. A pass that fails is logged and the loop goes on. Loops that must not run
//! twice at once across replicas take their lock in the database inside the pass.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs `pass` now and then every `interval` until `stop` is cancelled.
pub async fn every<F, Fut>(
    name: &'static str,
    interval: Duration,
    stop: CancellationToken,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = pass() => {
                if let Err(e) = r {
                    tracing::warn!(background = name, error = %e, "background pass failed");
                }
                metrics::counter!("background_passes_total", "loop" => name).increment(1);
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
