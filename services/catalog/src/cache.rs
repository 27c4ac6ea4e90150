//! Redis cache of published-catalog reads. Keys carry a generation number that every publish
//! and retire increments after its commit, so one INCR invalidates every cached answer; the
//! old keys expire on their own. A Redis failure only costs the cache, never the answer.

use prost::Message;
use redis::aio::ConnectionManager;

const GENERATION: &str = "xn:catalog:gen";
const TTL_SECS: u64 = 300;

#[derive(Clone)]
pub struct Cache {
    redis: ConnectionManager,
}

impl Cache {
    pub fn new(redis: ConnectionManager) -> Self {
        Cache { redis }
    }

    async fn key(&self, suffix: &str) -> Option<String> {
        let mut r = self.redis.clone();
        let generation: Option<i64> = redis::cmd("GET")
            .arg(GENERATION)
            .query_async(&mut r)
            .await
            .ok()?;
        Some(format!("xn:catalog:{}:{suffix}", generation.unwrap_or(0)))
    }

    /// The cached message for `suffix`, or the one `fetch` returns (then cached).
    pub async fn get_or<M, F, Fut, E>(&self, suffix: &str, fetch: F) -> Result<M, E>
    where
        M: Message + Default,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<M, E>>,
    {
        let key = self.key(suffix).await;
        if let Some(k) = &key {
            let mut r = self.redis.clone();
            if let Ok(Some(bytes)) = redis::cmd("GET")
                .arg(k)
                .query_async::<Option<Vec<u8>>>(&mut r)
                .await
            {
                if let Ok(m) = M::decode(bytes.as_slice()) {
                    metrics::counter!("catalog_cache_hits_total").increment(1);
                    return Ok(m);
                }
            }
        }
        metrics::counter!("catalog_cache_misses_total").increment(1);
        let m = fetch().await?;
        if let Some(k) = key {
            let mut r = self.redis.clone();
            let _: Result<(), _> = redis::cmd("SET")
                .arg(&k)
                .arg(m.encode_to_vec())
                .arg("EX")
                .arg(TTL_SECS)
                .query_async(&mut r)
                .await;
        }
        Ok(m)
    }

    /// Invalidates every cached answer (after a publish or retire committed).
    pub async fn invalidate(&self) {
        let mut r = self.redis.clone();
        if let Err(e) = redis::cmd("INCR")
            .arg(GENERATION)
            .query_async::<i64>(&mut r)
            .await
        {
            tracing::warn!(error = %e, "cannot invalidate the catalog cache; entries expire in {TTL_SECS}s");
        }
    }
}
