//! Drivers shared by the modules.
#![allow(dead_code)]

use xiaoneng_e2e::proto::catalog::v1::{
    catalog_service_client::CatalogServiceClient, CreateDepartmentRequest, Department,
};
use xiaoneng_e2e::{channel, token, Intercepted, ServiceProc};
use xiaoneng_kit::auth::roles;

/// Creates the department `code` named `name` in `region` through the catalog's API; its id.
pub async fn department(c: &mut CatalogServiceClient<Intercepted>, region: &str, code: &str, name: &str) -> String {
    let department = Some(Department {
        region_code: region.into(),
        code: code.into(),
        display_name: name.into(),
        ..Default::default()
    });
    let req = CreateDepartmentRequest { department, request_id: String::new() };
    c.create_department(req).await.expect("create department").into_inner().department.expect("department").id
}

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
        .expect("ledger counts")
}

pub async fn pending_outbox(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetch_one(pool).await.expect("outbox")
}

/// Whether consumer group `group` has committed offsets up to the end of every partition of
/// `topic`: then nothing more is delivered to it, duplicates included.
pub async fn group_caught_up(brokers: &str, group: &str, topic: &str) -> bool {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let (brokers, group, topic) = (brokers.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let timeout = std::time::Duration::from_secs(10);
        let Ok(meta) = c.fetch_metadata(Some(&topic), timeout) else {
            return false;
        };
        let mut tpl = TopicPartitionList::new();
        for p in meta.topics().iter().flat_map(|t| t.partitions()) {
            tpl.add_partition(&topic, p.id());
        }
        let Ok(committed) = c.committed_offsets(tpl, timeout) else {
            return false;
        };
        committed.elements().iter().all(|e| {
            let Ok((_, high)) = c.fetch_watermarks(&topic, e.partition(), timeout) else {
                return false;
            };
            match e.offset() {
                Offset::Offset(o) => o >= high,
                _ => high == 0,
            }
        })
    })
    .await
    .expect("watermarks")
}

/// The ledger's entries about `subject` (an aggregate id), by event type, once the ledger's
/// consumer group has committed every record of `topic`.
pub async fn ledger_of(
    acc: &ServiceProc,
    brokers: &str,
    topic: &str,
    subject: &str,
    at_least: usize,
) -> std::collections::BTreeMap<String, i64> {
    let pool = acc.db().await;
    let group = format!("{}-group", acc.database);
    xiaoneng_e2e::eventually(120, &format!("the ledger to hold {subject}"), || {
        let (pool, group) = (pool.clone(), group.clone());
        async move {
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT event_type, count(*) FROM ledger_entries WHERE subject = $1 GROUP BY 1")
                    .bind(subject)
                    .fetch_all(&pool)
                    .await
                    .expect("ledger");
            let total: i64 = rows.iter().map(|r| r.1).sum();
            let done = total as usize >= at_least && group_caught_up(brokers, &group, topic).await;
            done.then(|| rows.into_iter().collect())
        }
    })
    .await
}

/// The fields an INVALID_ARGUMENT names, sorted.
pub fn violations(e: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    let bad = e.get_details_bad_request().expect("field violations");
    let mut fields: Vec<String> = bad.field_violations.into_iter().map(|f| f.field).collect();
    fields.sort();
    fields
}

/// The reason a client switches on, from the error details ("" when none).
pub fn reason(e: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    e.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}

/// A Redis server of the test's own on a free port, which the test may restart empty.
pub struct PrivateRedis {
    pub port: u16,
    child: std::process::Child,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let port = xiaoneng_e2e::free_port();
        let child = Self::spawn(port).await;
        PrivateRedis { port, child }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(port: u16) -> std::process::Child {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server");
        xiaoneng_e2e::eventually(10, "redis", || async move { xiaoneng_e2e::port_open(port).then_some(()) }).await;
        child
    }

    /// Kills it and starts it again with nothing in it.
    pub async fn restart_empty(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self.port).await;
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
