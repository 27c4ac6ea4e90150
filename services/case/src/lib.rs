//! The case service (办件 lifecycle under the legal clock).
//!
//! Layout (shared by all six services): [`api`] gRPC handlers (mapping only), [`domain`] pure
//! rules (state machine, one-time notice, deemed acceptance, 容缺, parallel review,
//! escalation), [`store`] sqlx, [`events`] what it publishes, `migrations/`.
//! So far: submission against the matter version in force, pre-review, one-time notices with
//! violation detection, supplying materials, acceptance (with 容缺 and deadlines) and refusal.

pub mod api;
pub mod domain;
pub mod events;
pub mod store;

use serde::{Deserialize, Serialize};
use xiaoneng_kit::config::Settings;
use xiaoneng_kit::foundation::RunningService;
use xiaoneng_kit::{Foundation, ServiceKind};
use xiaoneng_proto::case::v1::case_service_server::CaseServiceServer;
use xiaoneng_proto::catalog::v1::catalog_service_client::CatalogServiceClient;

/// The case service's own settings (`[domain]`, env `XIAONENG__DOMAIN__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSettings {
    /// Where the catalog serves gRPC: matter terms come from there.
    pub catalog_addr: String,
}

impl Default for CaseSettings {
    fn default() -> Self {
        CaseSettings { catalog_addr: "http://127.0.0.1:50051".into() }
    }
}

/// Starts the service: database, relay, and the gRPC server on `service.grpc_addr`.
pub async fn build(settings: Settings<CaseSettings>) -> anyhow::Result<RunningService> {
    let catalog = tonic::transport::Channel::from_shared(settings.domain.catalog_addr.clone())
        .map_err(|e| anyhow::anyhow!("domain.catalog_addr: {e}"))?
        .connect_lazy();
    let f = Foundation::start(ServiceKind::Case, settings, sqlx::migrate!("./migrations")).await?;
    let api = api::CaseApi::new(f.pool.clone(), CatalogServiceClient::new(catalog), xiaoneng_calendar::Calendars::national_only());
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(CaseServiceServer::new(api));
    Ok(f.spawn(routes, &[]))
}
