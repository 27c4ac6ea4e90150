//! Telemetry in one place: structured `tracing` logs, OpenTelemetry spans (exported over OTLP
//! when `telemetry.otlp_endpoint` is set), W3C trace context carried through gRPC metadata and
//! Kafka headers, and Prometheus metrics over HTTP.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{global, Context};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::{ServiceSettings, TelemetrySettings};

/// Flushes and shuts the span exporter down when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Installs the global subscriber, propagator and tracer. Call once, from `main`.
pub fn init(service: &str, s: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = Resource::builder()
        .with_service_name(format!("xiaoneng-{service}"))
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if !s.otlp_endpoint.is_empty() {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(s.otlp_endpoint.clone())
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    // Without an exporter spans still get ids, so context propagates across services.
    let provider = builder.build();
    global::set_tracer_provider(provider.clone());
    let otel =
        tracing_opentelemetry::layer().with_tracer(provider.tracer(format!("xiaoneng-{service}")));
    let filter = EnvFilter::try_new(&s.log_level)?;
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    if s.log_format == "json" {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true),
            )
            .try_init()?;
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().compact().with_ansi(ansi))
            .try_init()?;
    }
    Ok(TelemetryGuard { provider })
}

/// Serves Prometheus metrics on `service.metrics_addr`, at `/metrics` only (any other path is
/// 404), unless it is empty. Call from inside the runtime.
pub fn init_metrics(s: &ServiceSettings) -> anyhow::Result<()> {
    if s.metrics_addr.is_empty() {
        return Ok(());
    }
    let addr: std::net::SocketAddr = s.metrics_addr.parse()?;
    // Histograms as buckets (not summaries): replicas aggregate and alerts take
    // histogram_quantile over them.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ])?
        .build_recorder();
    let handle = recorder.handle();
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("binding the metrics listener {addr}: {e}"))?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    metrics::set_global_recorder(recorder)?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    tokio::spawn(serve_metrics(listener, handle));
    Ok(())
}

/// A minimal HTTP/1.1 responder: `GET /metrics` (with or without a query) renders the
/// registry, anything else is 404; one request per connection.
async fn serve_metrics(
    listener: tokio::net::TcpListener,
    handle: metrics_exporter_prometheus::PrometheusHandle,
) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = Vec::with_capacity(1024);
            let mut chunk = [0u8; 1024];
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let line = String::from_utf8_lossy(&buf);
            let target = line.split_whitespace().take(2).collect::<Vec<_>>();
            let (status, kind, body) = match target.as_slice() {
                ["GET", path] if path.split('?').next() == Some("/metrics") => {
                    ("200 OK", "text/plain; version=0.0.4", handle.render())
                }
                _ => (
                    "404 Not Found",
                    "text/plain",
                    "metrics are at /metrics\n".to_string(),
                ),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

/// Trace context of the current span as W3C headers (`traceparent`, `tracestate`).
pub fn current_trace_headers() -> HashMap<String, String> {
    let cx = tracing::Span::current().context();
    let mut map = HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut map));
    map
}

/// Records `span`'s trace id in its `trace_id` field (declared `tracing::field::Empty`), so every
/// log line inside it names the trace.
pub fn record_trace_id(span: &tracing::Span) {
    use opentelemetry::trace::TraceContextExt;
    let id = span.context().span().span_context().trace_id();
    if id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(id));
    }
}

/// Makes `span` a child of the context carried in `carrier`.
pub fn set_parent(span: &tracing::Span, carrier: &dyn Extractor) {
    let cx: Context = global::get_text_map_propagator(|p| p.extract(carrier));
    let _ = span.set_parent(cx);
}

/// Reads W3C headers from HTTP/2 (gRPC) request headers.
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// A channel whose every call carries the calling span's trace context: the one kind of
/// channel the workspace's clients of another service use.
pub type TracedChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, ClientInterceptor>;

/// A lazily connected [`TracedChannel`] to `addr` (`setting` names it in errors).
pub fn traced_channel(addr: &str, setting: &str) -> anyhow::Result<TracedChannel> {
    let channel = tonic::transport::Channel::from_shared(addr.to_string())
        .map_err(|e| anyhow::anyhow!("{setting}: {e}"))?
        .connect_lazy();
    Ok(TracedChannel::new(channel, ClientInterceptor::new(None)))
}

/// A client interceptor: adds the current trace context and, when given, a bearer token.
#[derive(Clone, Default)]
pub struct ClientInterceptor {
    bearer: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl ClientInterceptor {
    pub fn new(token: Option<&str>) -> Self {
        ClientInterceptor {
            bearer: token.and_then(|t| format!("Bearer {t}").parse().ok()),
        }
    }
}

impl tonic::service::Interceptor for ClientInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let cx = tracing::Span::current().context();
        global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut MetadataInjector(req.metadata_mut()))
        });
        if let Some(b) = &self.bearer {
            req.metadata_mut().insert("authorization", b.clone());
        }
        Ok(req)
    }
}
