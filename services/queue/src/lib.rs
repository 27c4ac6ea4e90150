//! The queue service. Layout (shared by all six services): `api` (gRPC handlers, mapping only),
//! `domain` (pure rules), `store` (sqlx), `events`, `migrations/`. This service serves its
//! gRPC contract with health and reflection; its domain arrives with its own issue.

use xiaoneng_kit::config::Settings;
use xiaoneng_kit::{Foundation, ServiceKind};
use xiaoneng_proto::queue::v1::queue_service_server::QueueServiceServer;

/// The gRPC handlers.
pub mod api {
    /// The QueueService implementation.
    #[derive(Debug, Default)]
    pub struct QueueApi;

    impl xiaoneng_proto::queue::v1::queue_service_server::QueueService for QueueApi {}
}

/// Starts the service: database, relay, and the gRPC server on `service.grpc_addr`.
pub async fn build(settings: Settings) -> anyhow::Result<xiaoneng_kit::foundation::RunningService> {
    let f = Foundation::start(
        ServiceKind::Queue,
        settings,
        sqlx::migrate::Migrator::DEFAULT,
    )
    .await?;
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(QueueServiceServer::new(api::QueueApi));
    Ok(f.spawn(routes, &[]))
}
