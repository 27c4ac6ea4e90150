//! The case service. Layout (shared by all six services): `api` (gRPC handlers, mapping only),
//! `domain` (pure rules), `store` (sqlx), `events`, `migrations/`. This service serves its
//! gRPC contract with health and reflection. [`domain`] holds the pure rules of the lifecycle
//! and the legal clock; the store, API and timers that use them arrive with the case issue.

use xiaoneng_kit::config::Settings;
use xiaoneng_kit::{Foundation, ServiceKind};
use xiaoneng_proto::case::v1::case_service_server::CaseServiceServer;

pub mod domain;

/// The gRPC handlers.
pub mod api {
    /// The CaseService implementation.
    #[derive(Debug, Default)]
    pub struct CaseApi;

    impl xiaoneng_proto::case::v1::case_service_server::CaseService for CaseApi {}
}

/// Starts the service: database, relay, and the gRPC server on `service.grpc_addr`.
pub async fn build(settings: Settings) -> anyhow::Result<xiaoneng_kit::foundation::RunningService> {
    let f = Foundation::start(ServiceKind::Case, settings, sqlx::migrate::Migrator::DEFAULT).await?;
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(CaseServiceServer::new(api::CaseApi));
    Ok(f.spawn(routes, &[]))
}
