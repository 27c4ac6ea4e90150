//! The catalog service (事项目录, 办事指南, departments, staff, certificates).
//!
//! Layout (shared by all six services): [`api`] gRPC handlers (mapping only), [`domain`] pure
//! rules, [`store`] sqlx, [`events`] what it publishes, `migrations/`.
//! So far it holds departments; matters, guides, posts, staff and certificates come with the
//! catalog issue.

pub mod api;
pub mod cache;
pub mod domain;
pub mod events;
pub mod service;
pub mod starter;
pub mod store;

use xiaoneng_kit::config::Settings;
use xiaoneng_kit::foundation::RunningService;
use xiaoneng_kit::{Foundation, ServiceKind};
use xiaoneng_proto::catalog::v1::catalog_service_server::CatalogServiceServer;

/// Methods anyone may call without a token: reads of public data.
pub const PUBLIC_METHODS: &[&str] = &[
    "/xiaoneng.catalog.v1.CatalogService/GetDepartment",
    "/xiaoneng.catalog.v1.CatalogService/ListDepartments",
    "/xiaoneng.catalog.v1.CatalogService/GetMatter",
    "/xiaoneng.catalog.v1.CatalogService/ListMatters",
    "/xiaoneng.catalog.v1.CatalogService/SearchMatters",
    "/xiaoneng.catalog.v1.CatalogService/ListPosts",
    "/xiaoneng.catalog.v1.CatalogService/GetStaff",
    "/xiaoneng.catalog.v1.CatalogService/ListCertificateNotices",
];

/// Starts the service: database, relay, and the gRPC server on `service.grpc_addr`.
pub async fn build(settings: Settings) -> anyhow::Result<RunningService> {
    let f = Foundation::start(
        ServiceKind::Catalog,
        settings,
        sqlx::migrate!("./migrations"),
    )
    .await?;
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(CatalogServiceServer::new(api::CatalogApi::new(
        f.pool.clone(),
        cache::Cache::new(f.redis.clone()),
    )));
    Ok(f.spawn(routes, PUBLIC_METHODS))
}
