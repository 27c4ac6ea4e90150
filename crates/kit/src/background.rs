//! Background loops every service runs the same way: one pass now, then one every interval,
//! until shutdown. A pass that fails is logged and the loop goes on. Loops that must not run
//! twice at once across replicas take their lock in the database inside the pass. A pass that
//! changes something (enqueues an event) starts its own root span at its first change, and
//! every event of the pass is in that trace; a pass that changes nothing makes no span.

use std::future::Future;
use std::time::Duration;

pub use tokio_util::sync::CancellationToken;

tokio::task_local! {
    /// The running pass: its loop's name and its root span, made at its first change
    /// ([`pass_root`]).
    static PASS_ROOT: (&'static str, std::cell::RefCell<Option<tracing::Span>>);
}

/// Runs `fut` as one pass of the loop `name`: the changes it makes share one trace.
pub async fn in_pass<F: Future>(name: &'static str, fut: F) -> F::Output {
    PASS_ROOT
        .scope((name, std::cell::RefCell::new(None)), fut)
        .await
}

/// The root span of the running pass, made now if this is its first change; `None` outside a
/// pass.
pub fn pass_root() -> Option<tracing::Span> {
    PASS_ROOT
        .try_with(|(name, cell)| {
            cell.borrow_mut()
                .get_or_insert_with(|| {
                    tracing::info_span!(parent: None, "pass", otel.kind = "internal", background = *name)
                })
                .clone()
        })
        .ok()
}

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
    let pass = move || {
        let fut = pass();
        async move { fut.await.map(|()| false) }
    };
    every_draining(name, interval, stop, pass).await
}

/// As [`every`], for a pass that takes a batch: `Ok(true)` (a full batch: more is waiting)
/// runs the next pass at once instead of after `interval`.
pub async fn every_draining<F, Fut>(
    name: &'static str,
    interval: Duration,
    stop: CancellationToken,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    loop {
        let wait = tokio::select! {
            _ = stop.cancelled() => return,
            r = in_pass(name, pass()) => {
                metrics::counter!("background_passes_total", "loop" => name).increment(1);
                match r {
                    Ok(true) => Duration::ZERO,
                    Ok(false) => interval,
                    Err(e) => {
                        tracing::warn!(background = name, error = %e, "background pass failed");
                        interval
                    }
                }
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn traceparent(span: tracing::Span) -> String {
        span.in_scope(crate::telemetry::current_trace_headers)
            .remove("traceparent")
            .unwrap_or_default()
    }

    /// The changes of one pass share its root span (one trace); the next pass has a trace of
    /// its own; outside a pass there is none to share.
    #[tokio::test]
    async fn the_changes_of_a_pass_share_one_trace() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let _default = tracing::subscriber::set_default(subscriber);
        let (first, second) = in_pass("test", async {
            (
                pass_root().map(traceparent).unwrap(),
                pass_root().map(traceparent).unwrap(),
            )
        })
        .await;
        assert!(first.starts_with("00-") && first.len() == 55, "{first}");
        assert_eq!(first, second, "one pass, one root span");
        let next = in_pass("test", async { pass_root().map(traceparent).unwrap() }).await;
        assert_ne!(&next[3..35], &first[3..35], "each pass its own trace");
        assert!(pass_root().is_none());
    }
}
