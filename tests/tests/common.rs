// Shared by the test files (each test file is its own crate).
#![allow(dead_code)]

use xiaoneng_e2e::proto::catalog::v1::{
    catalog_service_client::CatalogServiceClient, CreateDepartmentRequest, Department,
};
use xiaoneng_e2e::{channel, token, ServiceProc};
use xiaoneng_kit::auth::roles;

/// Creates `n` departments in `region` through the catalog's gRPC API, 8 at a time.
pub async fn create_departments(catalog: &ServiceProc, region: &str, prefix: &str, n: usize) {
    let admin = token("admin", &[roles::CATALOG_ADMIN], region);
    let client = CatalogServiceClient::new(channel(&catalog.addr(), Some(&admin)).await);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let mut c = client.clone();
        let region = region.to_string();
        let prefix = prefix.to_string();
        tasks.spawn(async move {
            for i in (worker..n).step_by(8) {
                c.create_department(CreateDepartmentRequest {
                    department: Some(Department {
                        region_code: region.clone(),
                        code: format!("{prefix}{i}"),
                        display_name: format!("部门{prefix}{i}"),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .expect("create department");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("worker");
    }
}

/// (rows, distinct event ids) in accountability's ledger.
pub async fn ledger_counts(pool: &sqlx::PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM ledger_entries")
        .fetch_one(pool)
        .await
        .unwrap_or((0, 0))
}

pub async fn pending_outbox(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
        .expect("outbox")
}
