//! The transactional outbox. A service writes its state change and its event in one
//! transaction ([`enqueue`]); the [`Relay`] publishes pending events in id order with the
//! idempotent producer and marks them published in the *same* transaction that claimed them,
//! so the claim is held until the broker acknowledged. A crash or a broker outage at any
//! point leaves the rows pending, to be sent again; consumers drop the rare duplicate by
//! event id. `pg_notify` at commit wakes the relay at once; a slow poll is only a fallback.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::OutboxSettings;
use crate::events::{headers, NewEvent};

/// The notification channel the relay listens on.
pub const CHANNEL: &str = "xiaoneng_outbox";

/// Only one relay per database publishes at a time, so events leave in commit order.
const RELAY_LOCK: i64 = 0x5849_414f_4e45_4e47; // "XIAONENG"

/// Writes `event` into the outbox inside the caller's transaction.
pub async fn enqueue(conn: &mut PgConnection, event: &NewEvent) -> sqlx::Result<()> {
    let mut headers = crate::telemetry::current_trace_headers();
    if headers.is_empty() {
        // A change made outside any call: in a background pass, the pass's root span (made at
        // its first change); elsewhere (a catalog load) a root span of its own. Every event
        // carries a traceparent.
        let root = crate::background::pass_root().unwrap_or_else(|| {
            tracing::info_span!(parent: None, "change", otel.kind = "internal",
                event_type = %event.event_type, subject = %event.key)
        });
        headers = root.in_scope(crate::telemetry::current_trace_headers);
    }
    let trace = serde_json::to_value(headers).unwrap_or_default();
    sqlx::query(
        "INSERT INTO outbox (event_id, topic, event_key, event_type, source, region_code, occurred_at, payload, trace_context)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event.event_id)
    .bind(&event.topic)
    .bind(&event.key)
    .bind(&event.event_type)
    .bind(&event.source)
    .bind(&event.region_code)
    .bind(event.occurred_at)
    .bind(&event.payload)
    .bind(trace)
    .execute(&mut *conn)
    .await?;
    // Delivered when (and only if) the transaction commits.
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Pending {
    id: i64,
    event_id: Uuid,
    topic: String,
    event_key: String,
    event_type: String,
    source: String,
    region_code: String,
    occurred_at: DateTime<Utc>,
    payload: Vec<u8>,
    trace_context: serde_json::Value,
}

/// Builds the relay's producer (again).
pub type MakeProducer = Box<dyn Fn() -> anyhow::Result<FutureProducer> + Send + Sync>;

/// Publishes the outbox of one service database.
pub struct Relay {
    pool: PgPool,
    producer: std::sync::Mutex<FutureProducer>,
    make: MakeProducer,
    settings: OutboxSettings,
}

impl Relay {
    pub fn new(pool: PgPool, make: MakeProducer, settings: OutboxSettings) -> anyhow::Result<Self> {
        // The relay's series exist from the start, before the broker first answers.
        metrics::counter!("outbox_published_total").increment(0);
        metrics::counter!("outbox_publish_failures_total").increment(0);
        let _ = metrics::histogram!("outbox_relay_lag_seconds");
        metrics::gauge!("outbox_backlog").set(0.0);
        metrics::gauge!("outbox_oldest_pending_seconds").set(0.0);
        Ok(Relay {
            pool,
            producer: std::sync::Mutex::new(make()?),
            make,
            settings,
        })
    }

    fn producer(&self) -> FutureProducer {
        self.producer.lock().expect("producer lock").clone()
    }

    /// After a send that was not acknowledged, the next attempt starts on a new producer (a new
    /// producer id, sequences from zero). An idempotent producer whose messages timed out in a
    /// broker outage otherwise keeps its old sequences, which a restarted broker may refuse for
    /// good: the outbox would never drain again. Rows already delivered come again and the
    /// consumers' idempotence drops them.
    fn renew_producer(&self) {
        match (self.make)() {
            Ok(p) => *self.producer.lock().expect("producer lock") = p,
            Err(e) => tracing::warn!(error = %e, "outbox producer not renewed"),
        }
    }

    /// Runs until `shutdown`, then publishes what is pending once more and flushes.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay cannot listen; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay cannot listen; polling only");
                None
            }
        };
        let poll = Duration::from_millis(self.settings.poll_interval_ms);
        let mut backoff = Duration::from_millis(200);
        let mut last_purge = std::time::Instant::now() - Duration::from_secs(3600);
        loop {
            let drained = self.drain().await;
            self.report_backlog().await;
            match drained {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox publish failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            if last_purge.elapsed() > Duration::from_secs(600) {
                last_purge = std::time::Instant::now();
                if let Err(e) = self.purge().await {
                    tracing::warn!(error = %e, "outbox purge failed");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                n = async {
                    match listener.as_mut() {
                        Some(l) => l.recv().await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                } => {
                    if let Err(e) = n {
                        tracing::warn!(error = %e, "outbox listener lost; it reconnects");
                    }
                }
                _ = tokio::time::sleep(poll) => {}
            }
        }
        // Shutdown: one last bounded drain, then flush the producer.
        match tokio::time::timeout(Duration::from_secs(5), self.drain()).await {
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "outbox final drain failed; rows stay pending")
            }
            Err(_) => tracing::warn!("outbox final drain timed out; rows stay pending"),
            Ok(Ok(())) => {}
        }
        let _ = self.producer().flush(Duration::from_secs(5));
        tracing::info!("outbox relay stopped");
    }

    /// Publishes batches until nothing is pending.
    pub async fn drain(&self) -> anyhow::Result<()> {
        while self.publish_batch().await? > 0 {}
        Ok(())
    }

    /// Claims up to `batch_size` pending rows, publishes them, marks the acknowledged ones.
    /// Returns how many were published.
    pub async fn publish_batch(&self) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(0);
        }
        let rows: Vec<Pending> = sqlx::query_as(
            "SELECT id, event_id, topic, event_key, event_type, source, region_code, occurred_at, payload, trace_context
             FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.settings.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // Enqueue in id order (join_all polls in order), then wait for every acknowledgement.
        let producer = self.producer();
        // One producer span per event, a child of the change that made it (its stored trace
        // context) or, for an event a background pass made, a trace of its own; the record
        // carries the producer span's context, so the consumer's span follows it.
        let spans: Vec<tracing::Span> = rows
            .iter()
            .map(|r| {
                let span = tracing::info_span!(
                    "publish",
                    otel.name = %format!("{} publish", r.topic),
                    otel.kind = "producer",
                    messaging.system = "kafka",
                    messaging.destination.name = %r.topic,
                    event_type = %r.event_type,
                );
                let stored: HashMap<String, String> =
                    serde_json::from_value(r.trace_context.clone()).unwrap_or_default();
                if !stored.is_empty() {
                    crate::telemetry::set_parent(&span, &stored);
                }
                span
            })
            .collect();
        let sends = rows.iter().zip(&spans).map(|(r, span)| {
            let trace = span.in_scope(crate::telemetry::current_trace_headers);
            let record = FutureRecord::to(&r.topic)
                .key(&r.event_key)
                .payload(&r.payload)
                .headers(headers(
                    &r.event_id,
                    &r.event_type,
                    &r.source,
                    &r.event_key,
                    &r.region_code,
                    &r.occurred_at,
                    &trace,
                ));
            producer.send(record, Duration::from_secs(5))
        });
        let results = futures::future::join_all(sends).await;
        drop(spans);
        let mut done = Vec::with_capacity(rows.len());
        let mut lags = Vec::with_capacity(rows.len());
        let mut failed = Vec::new();
        let mut first_error = None;
        let now = chrono::Utc::now();
        for (row, res) in rows.iter().zip(results) {
            match res {
                Ok(_) => {
                    done.push(row.id);
                    lags.push((now - row.occurred_at).num_milliseconds().max(0) as f64 / 1000.0);
                }
                Err((e, _)) => {
                    failed.push(row.id);
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        sqlx::query(
            "UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY($1)",
        )
        .bind(&done)
        .execute(&mut *tx)
        .await?;
        if let Some(err) = &first_error {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1)",
            )
            .bind(&failed)
            .bind(err)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        metrics::counter!("outbox_published_total").increment(done.len() as u64);
        // Relay lag: from the state change (its commit) to the broker's acknowledgement.
        let lag = metrics::histogram!("outbox_relay_lag_seconds");
        for l in lags {
            lag.record(l);
        }
        if let Some(err) = first_error {
            metrics::counter!("outbox_publish_failures_total").increment(failed.len() as u64);
            self.renew_producer();
            anyhow::bail!(
                "{} of {} events not acknowledged: {err}",
                failed.len(),
                rows.len()
            );
        }
        Ok(done.len())
    }

    /// The events not yet published and the age of the oldest (a broker outage shows here).
    async fn report_backlog(&self) {
        let r: sqlx::Result<(i64, Option<f64>)> = sqlx::query_as(
            "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await;
        match r {
            Ok((n, age)) => {
                metrics::gauge!("outbox_backlog").set(n as f64);
                metrics::gauge!("outbox_oldest_pending_seconds").set(age.unwrap_or(0.0).max(0.0));
            }
            Err(e) => tracing::debug!(error = %e, "outbox backlog not read"),
        }
    }

    async fn purge(&self) -> sqlx::Result<()> {
        sqlx::query(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(hours => $1::int)",
        )
        .bind(self.settings.retention_hours as i32)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
