//! The complaint service. Layout (shared by all six services): `api` (gRPC handlers, mapping only),
//! `domain` (pure rules), `store` (sqlx), `events`, `migrations/`. This service serves its
//! gRPC contract with health and reflection; its domain arrives with its own issue.

use xiaoneng_kit::config::Settings;
use xiaoneng_kit::{Foundation, ServiceKind};
use xiaoneng_proto::complaint::v1::complaint_service_server::ComplaintServiceServer;

/// The gRPC handlers.
pub mod api {
    /// The ComplaintService implementation.
    #[derive(Debug, Default)]
    pub struct ComplaintApi;

    impl xiaoneng_proto::complaint::v1::complaint_service_server::ComplaintService for ComplaintApi {}
}

/// Starts the service: database, relay, and the gRPC server on `service.grpc_addr`.
pub async fn build(settings: Settings) -> anyhow::Result<xiaoneng_kit::foundation::RunningService> {
    let f = Foundation::start(
        ServiceKind::Complaint,
        settings,
        sqlx::migrate::Migrator::DEFAULT,
    )
    .await?;
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(ComplaintServiceServer::new(api::ComplaintApi));
    Ok(f.spawn(routes, &[]))
}
