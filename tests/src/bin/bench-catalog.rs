//! Catalog read and search benchmark (run by ./scripts/bench): starts a release catalog with a
//! fresh database, loads the starter catalog (66 matters), then drives GetMatter and
//! SearchMatters from many concurrent clients and prints throughput and latency percentiles.

use std::time::Duration;

use xiaoneng_e2e::proto::catalog::v1 as pb;
use xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use xiaoneng_e2e::{channel, load_phase, shared_brokers};

const QUERIES: &[&str] =
    &["营业执照", "结婚", "身份证", "社保卡", "开饭店", "异地就医", "过户", "低保", "退税", "入学"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let (catalog, ids) = xiaoneng_e2e::starter_catalog(&shared_brokers(), 100).await?;
    println!("catalog benchmark: {} matters, {concurrency} concurrent clients, {seconds} s per phase, one HTTP/2 connection per client", ids.len());
    // One connection per client, as many devices and systems would have.
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        clients.push(CatalogServiceClient::new(channel(&catalog.addr(), None).await));
    }
    let clients = std::sync::Arc::new(clients);
    let ids = std::sync::Arc::new(ids);

    let (c, i) = (clients.clone(), ids.clone());
    load_phase(concurrency, seconds, move |w, n| {
        let mut client = c[w].clone();
        let id = i[(w * 7 + n as usize) % i.len()].clone();
        async move { client.get_matter(pb::GetMatterRequest { matter_id: id, as_of: String::new() }).await.is_ok() }
    })
    .await
    .print("GetMatter (Redis cache)");

    search_phase(&clients, concurrency, seconds).await.print("SearchMatters (Redis cache)");

    // Keep invalidating the cache so nearly every search goes to PostgreSQL.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let redis_url = xiaoneng_e2e::settings().redis.url;
    let invalidator = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let client = redis::Client::open(redis_url.as_str()).expect("redis url");
            let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _: Result<i64, _> = redis::cmd("INCR").arg("xn:catalog:gen").query_async(&mut conn).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    search_phase(&clients, concurrency, seconds).await.print("SearchMatters (cache invalidated)");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    invalidator.await?;
    if let Some(kib) = catalog.peak_rss_kib() {
        println!("catalog peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    Ok(())
}

type Clients = std::sync::Arc<Vec<CatalogServiceClient<xiaoneng_e2e::Intercepted>>>;

/// SearchMatters over the benchmark queries, each client on its own connection.
async fn search_phase(clients: &Clients, concurrency: usize, seconds: u64) -> xiaoneng_e2e::Figures {
    let c = clients.clone();
    load_phase(concurrency, seconds, move |w, n| {
        let mut client = c[w].clone();
        let q = QUERIES[(w + n as usize) % QUERIES.len()].to_string();
        async move {
            client
                .search_matters(pb::SearchMattersRequest {
                    query: q,
                    region_code: "410702".into(),
                    ..Default::default()
                })
                .await
                .is_ok()
        }
    })
    .await
}
