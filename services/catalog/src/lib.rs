//! The catalog service (事项目录, 办事指南, departments, staff, certificates).
//!
//! Layout (shared by all six services, ARCHITECTURE.md): [`api`] the gRPC adapter, [`service`]
//! the use cases, [`domain`] records and pure rules, [`store`] sqlx, [`cache`] the guide cache
//! in Redis, [`events`] what it publishes, `migrations/`; [`starter`] loads the starter catalog.

pub mod api;
pub mod cache;
pub mod domain;
pub mod events;
pub mod service;
pub mod starter;
pub mod store;

use serde::{Deserialize, Serialize};
use xiaoneng_kit::clock::BusinessClock;
use xiaoneng_kit::config::{self, ConfigError, DomainSettings, Settings};
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

/// The catalog's own settings (`[domain]`, env `XIAONENG__DOMAIN__*`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogSettings {
    /// Empty: real time. An RFC 3339 time starts the business clock there (drills, tests): the
    /// day a guide is in force, a certificate expires, a matter is assigned.
    pub business_time: String,
    /// How many times faster than real time the business clock runs (1: real speed; a drill
    /// or the simulated day runs at 60 or more).
    pub business_clock_rate: xiaoneng_kit::clock::ClockRate,
}

impl DomainSettings for CatalogSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        config::business_clock(&self.business_time, self.business_clock_rate)
    }
}

/// Starts the service: database, relay, and the gRPC server on `service.grpc_addr`.
pub async fn build(settings: Settings<CatalogSettings>) -> anyhow::Result<RunningService> {
    let clock = BusinessClock::new(
        &settings.domain.business_time,
        settings.domain.business_clock_rate,
        "domain.business_time",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let f = Foundation::start(
        ServiceKind::Catalog,
        settings,
        sqlx::migrate!("./migrations"),
    )
    .await?;
    f.spawn_gauges(store::GAUGES);
    let mut routes = tonic::service::RoutesBuilder::default();
    let catalog = service::Catalog::new(f.pool.clone(), cache::Cache::new(f.redis.clone()), clock);
    routes.add_service(CatalogServiceServer::new(api::CatalogApi(catalog)));
    Ok(f.spawn(routes, PUBLIC_METHODS))
}

#[cfg(test)]
mod reference {
    /// The README's configuration reference names every setting of this service (generated
    /// from the settings types' defaults, so a new key cannot go undocumented).
    #[test]
    fn the_readme_names_every_setting() {
        let readme = include_str!("../../../README.md");
        let missing = xiaoneng_kit::config::undocumented::<super::CatalogSettings>(
            xiaoneng_kit::ServiceKind::Catalog,
            xiaoneng_kit::config::reference_section(readme),
        );
        assert!(
            missing.is_empty(),
            "not in the README's configuration section: {missing:?}"
        );
    }
}
