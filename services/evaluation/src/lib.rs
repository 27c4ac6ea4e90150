//! The evaluation service. Layout (shared by all six services): `api` (gRPC handlers, mapping only),
//! `domain` (pure rules), `store` (sqlx), `events`, `migrations/`. This service serves its
//! gRPC contract with health and reflection; its domain arrives with its own issue.

use xiaoneng_kit::config::Settings;
use xiaoneng_kit::{Foundation, ServiceKind};
use xiaoneng_proto::evaluation::v1::evaluation_service_server::EvaluationServiceServer;

/// The gRPC handlers.
pub mod api {
    /// The EvaluationService implementation.
    #[derive(Debug, Default)]
    pub struct EvaluationApi;

    impl xiaoneng_proto::evaluation::v1::evaluation_service_server::EvaluationService
        for EvaluationApi
    {
    }
}

/// Starts the service: database, relay, and the gRPC server on `service.grpc_addr`.
pub async fn build(settings: Settings) -> anyhow::Result<xiaoneng_kit::foundation::RunningService> {
    let f = Foundation::start(
        ServiceKind::Evaluation,
        settings,
        sqlx::migrate::Migrator::DEFAULT,
    )
    .await?;
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(EvaluationServiceServer::new(api::EvaluationApi));
    Ok(f.spawn(routes, &[]))
}
