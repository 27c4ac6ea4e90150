//! Domain gauges from the database: each service declares queries whose rows are label values
//! and a number (open cases by clock and level, waiting tickets per hall, open 差评 loops, …);
//! a background loop sets them every interval. A label set that no longer comes back is set to
//! 0, so a gauge never sticks at its last value; a query with no row at all reports one series
//! at 0 with its labels empty, so the gauge exists from the first pass. Every replica reports the same figures (the
//! dashboards and alerts take `max` by the labels).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;

/// One gauge: its metric name, its label names, and the SQL that returns, per row, the label
/// values (text, in order) and then the value (float8).
#[derive(Debug, Clone, Copy)]
pub struct GaugeQuery {
    pub metric: &'static str,
    pub labels: &'static [&'static str],
    pub sql: &'static str,
}

/// Runs every query, returning for each metric its label values → value.
pub async fn read(
    pool: &PgPool,
    queries: &[GaugeQuery],
) -> sqlx::Result<BTreeMap<&'static str, BTreeMap<Vec<String>, f64>>> {
    let mut out = BTreeMap::new();
    for q in queries {
        let rows = sqlx::query(q.sql).fetch_all(pool).await?;
        let mut values = BTreeMap::new();
        for row in rows {
            let mut labels = Vec::with_capacity(q.labels.len());
            for i in 0..q.labels.len() {
                labels.push(row.try_get::<Option<String>, _>(i)?.unwrap_or_default());
            }
            let v: Option<f64> = row.try_get(q.labels.len())?;
            values.insert(labels, v.unwrap_or(0.0));
        }
        out.insert(q.metric, values);
    }
    Ok(out)
}

fn set(metric: &'static str, names: &[&'static str], values: &[String], v: f64) {
    let labels: Vec<(&'static str, String)> =
        names.iter().copied().zip(values.iter().cloned()).collect();
    metrics::gauge!(metric, &labels).set(v);
}

/// Sets the gauges every `every` until `stop`.
pub async fn run(
    pool: PgPool,
    queries: &'static [GaugeQuery],
    every: Duration,
    stop: CancellationToken,
) {
    let mut seen: BTreeMap<&'static str, BTreeSet<Vec<String>>> = BTreeMap::new();
    loop {
        match read(&pool, queries).await {
            Ok(all) => {
                for q in queries {
                    let mut now = all.get(q.metric).cloned().unwrap_or_default();
                    if now.is_empty() {
                        // No row anywhere: the gauge is still there, at 0, with its labels
                        // empty (to Prometheus, absent), so "none" reads 0, not "no data".
                        now.insert(vec![String::new(); q.labels.len()], 0.0);
                    }
                    let before = seen.entry(q.metric).or_default();
                    for gone in before.iter().filter(|l| !now.contains_key(*l)) {
                        set(q.metric, q.labels, gone, 0.0);
                    }
                    for (labels, v) in &now {
                        set(q.metric, q.labels, labels, *v);
                    }
                    *before = now.into_keys().collect();
                }
            }
            Err(e) => tracing::warn!(error = %e, "domain gauges not read"),
        }
        metrics::counter!("background_passes_total", "loop" => "gauges").increment(1);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
