//! The gRPC server every service runs: its own service plus `grpc.health.v1` and server
//! reflection (v1 and v1alpha), behind one [`GrpcLayer`] that verifies tokens, continues the
//! caller's trace and records Prometheus metrics. Shuts down gracefully: health turns
//! NOT_SERVING, new connections are refused, in-flight calls finish within the grace period.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::auth::TokenVerifier;
use crate::error::AppError;
use crate::telemetry::{set_parent, HeaderExtractor};
use crate::ServiceKind;

/// Paths callable without a token, besides the ones a service declares public.
const ALWAYS_PUBLIC: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Auth, trace context and metrics for every call.
#[derive(Clone)]
pub struct GrpcLayer {
    verifier: Arc<TokenVerifier>,
    /// Full method paths (`/pkg.Service/Method`) that need no token.
    public: Arc<HashSet<String>>,
}

impl GrpcLayer {
    pub fn new(verifier: TokenVerifier, public_methods: &[&str]) -> Self {
        GrpcLayer {
            verifier: Arc::new(verifier),
            public: Arc::new(public_methods.iter().map(|m| m.to_string()).collect()),
        }
    }

    fn is_public(&self, path: &str) -> bool {
        self.public.contains(path) || ALWAYS_PUBLIC.iter().any(|p| path.starts_with(p))
    }
}

impl<S> Layer<S> for GrpcLayer {
    type Service = GrpcMiddleware<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMiddleware {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GrpcMiddleware<S> {
    inner: S,
    layer: GrpcLayer,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for GrpcMiddleware<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_string();
        let header = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        let denied = match header {
            Some(value) => match self.layer.verifier.verify_header(value) {
                Ok(caller) => {
                    req.extensions_mut().insert(caller);
                    None
                }
                Err(e) => Some(e),
            },
            None if self.layer.is_public(&path) => None,
            None => Some(AppError::Unauthenticated(
                "a bearer token is required".into(),
            )),
        };
        if let Some(err) = denied {
            metrics::counter!("grpc_server_requests_total", "method" => path, "code" => "Unauthenticated")
                .increment(1);
            let status: tonic::Status = err.into();
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let span = tracing::info_span!("grpc", otel.name = %path, otel.kind = "server", rpc.system = "grpc",
            trace_id = tracing::field::Empty);
        set_parent(&span, &HeaderExtractor(req.headers()));
        // Every log line of the call carries its trace id (a span field).
        crate::telemetry::record_trace_id(&span);
        // The service that was driven to readiness is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let start = Instant::now();
            let res = inner.call(req).instrument(span.clone()).await;
            let code = match &res {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map(|c| format!("{:?}", tonic::Code::from_i32(c)))
                    .unwrap_or_else(|| "Ok".to_string()),
                Err(_) => "Transport".to_string(),
            };
            let elapsed = start.elapsed().as_secs_f64();
            if code != "Ok" {
                // A refused or failed call is one line, findable by its trace id.
                tracing::info!(parent: &span, code = %code, seconds = elapsed, "call not ok");
            }
            metrics::histogram!("grpc_server_request_duration_seconds", "method" => path.clone())
                .record(elapsed);
            metrics::counter!("grpc_server_requests_total", "method" => path, "code" => code)
                .increment(1);
            res
        })
    }
}

/// Serves `routes` plus health and reflection on `listener` until `shutdown`; in-flight calls
/// get `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    kind: ServiceKind,
    mut routes: RoutesBuilder,
    layer: GrpcLayer,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(kind.grpc_service(), ServingStatus::Serving)
        .await;
    let reflection = |b: tonic_reflection::server::Builder<'static>| {
        b.register_encoded_file_descriptor_set(xiaoneng_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(kind.grpc_service())
            .with_service_name("grpc.health.v1.Health")
    };
    routes
        .add_service(health)
        .add_service(reflection(tonic_reflection::server::Builder::configure()).build_v1()?)
        .add_service(reflection(tonic_reflection::server::Builder::configure()).build_v1alpha()?);
    // No Nagle: small gRPC frames must not wait for the peer's delayed ACK (~40 ms).
    let incoming = tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    let stopping = CancellationToken::new();
    let signal = {
        let shutdown = shutdown.clone();
        let stopping = stopping.clone();
        async move {
            shutdown.cancelled().await;
            reporter
                .set_service_status(kind.grpc_service(), ServingStatus::NotServing)
                .await;
            reporter
                .set_service_status("", ServingStatus::NotServing)
                .await;
            tracing::info!("shutting down: finishing in-flight calls");
            stopping.cancel();
        }
    };
    let server = tonic::transport::Server::builder()
        .layer(layer)
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, signal);
    tokio::pin!(server);
    tokio::select! {
        res = &mut server => res?,
        _ = async { stopping.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs(), "calls still running after the grace period; stopping");
        }
    }
    Ok(())
}
