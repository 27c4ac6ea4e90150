//! The accountability service (效能督查): consumes every service's events and turns them into
//! warnings, cards, rankings and bulletins.
//!
//! Layout (shared by all six services, ARCHITECTURE.md): [`api`] the gRPC adapter, [`service`]
//! the use cases (the ledger consumer among them), [`domain`] records and rules, [`store`] sqlx,
//! [`events`] what it publishes, `migrations/`, `rules/` the starter rule set. It keeps the
//! supervision ledger — every event applied exactly once, visible by region — and turns the
//! facts of the events into supervision records by each region's versioned rule set.

pub mod api;
pub mod domain;
pub mod events;
pub mod service;
pub mod store;

use xiaoneng_kit::config::Settings;
use xiaoneng_kit::foundation::RunningService;
use xiaoneng_kit::{Foundation, ServiceKind};
use xiaoneng_proto::accountability::v1::accountability_service_server::AccountabilityServiceServer;

/// Starts the service: database, relay, the ledger consumer over every topic, and gRPC.
pub async fn build(settings: Settings) -> anyhow::Result<RunningService> {
    let f = Foundation::start(
        ServiceKind::Accountability,
        settings,
        sqlx::migrate!("./migrations"),
    )
    .await?;
    service::load_starter(&f.pool).await?;
    let topics = ServiceKind::ALL.iter().map(|k| k.topic()).collect();
    f.spawn_consumer("ledger", topics, service::LedgerHandler)?;
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(AccountabilityServiceServer::new(
        api::AccountabilityApi::new(f.pool.clone()),
    ));
    Ok(f.spawn(routes, &[]))
}
