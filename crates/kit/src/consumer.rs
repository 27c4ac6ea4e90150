//! The idempotent consumer. For each record: open a transaction, insert the event id into
//! `processed_events` (a duplicate inserts nothing and is skipped), run the handler in the same
//! transaction, commit, and only then store the offset for the next auto-commit. A crash
//! anywhere re-delivers the record; the dedupe row makes the second delivery a no-op.
//! A record that still fails after `max_attempts` goes to `dead_letters` (also once).

use std::future::Future;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::ConsumerSettings;
use crate::events::ConsumedEvent;

/// What a service does with one event, inside the transaction that also records it as applied.
pub trait EventHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a ConsumedEvent,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'a;
}

pub struct IdempotentConsumer<H> {
    name: String,
    pool: PgPool,
    consumer: StreamConsumer,
    handler: H,
    settings: ConsumerSettings,
}

enum Outcome {
    Applied,
    Duplicate,
    DeadLettered,
}

impl<H: EventHandler> IdempotentConsumer<H> {
    /// `name` identifies this consumer in `processed_events` (one service may run several).
    pub fn new(
        name: impl Into<String>,
        pool: PgPool,
        consumer: StreamConsumer,
        handler: H,
        settings: ConsumerSettings,
    ) -> Self {
        let name = name.into();
        // Every series exists from the start (0), before the broker first answers, so a
        // dashboard or alert reads zero, not "no data".
        for counter in [
            "events_applied_total",
            "events_duplicate_total",
            "events_dead_lettered_total",
            "consumer_rejoins_total",
        ] {
            metrics::counter!(counter, "consumer" => name.clone()).increment(0);
        }
        metrics::gauge!("consumer_last_lag_seconds", "consumer" => name.clone()).set(0.0);
        let _ = metrics::histogram!("consumer_lag_seconds", "consumer" => name.clone());
        IdempotentConsumer {
            name,
            pool,
            consumer,
            handler,
            settings,
        }
    }

    pub async fn run(self, topics: Vec<String>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        self.consumer.subscribe(&refs)?;
        tracing::info!(consumer = %self.name, ?topics, "consumer subscribed");
        // A join can stall on a broker that holds the group for a member that died (seen with
        // tansu after a SIGKILL): until partitions first arrive, every 30 s without any the
        // consumer leaves and joins again with a new member id, at most five times (a replica
        // with no partition to take stops trying).
        let mut watchdog = tokio::time::interval(Duration::from_secs(30));
        watchdog.tick().await;
        let (mut assigned, mut rejoins) = (false, 0);
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = watchdog.tick(), if !assigned => {
                    if self.consumer.assignment().is_ok_and(|a| a.count() > 0) {
                        assigned = true;
                    } else if rejoins < 5 {
                        rejoins += 1;
                        tracing::warn!(consumer = %self.name, rejoins, "no partitions after 30 s; joining the group again");
                        metrics::counter!("consumer_rejoins_total", "consumer" => self.name.clone()).increment(1);
                        self.consumer.unsubscribe();
                        self.consumer.subscribe(&refs)?;
                    }
                    continue;
                }
                m = self.consumer.recv() => m,
            };
            let msg = match msg {
                Ok(m) => {
                    assigned = true;
                    m
                }
                Err(e) => {
                    tracing::warn!(consumer = %self.name, error = %e, "kafka receive error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            // A record is finished (applied, duplicate or dead-lettered) before the next one;
            // on shutdown mid-record the offset is simply not stored and it comes back.
            match self.process(&msg, &shutdown).await {
                Some(outcome) => {
                    if matches!(outcome, Outcome::Applied) {
                        // Committed, offset not yet stored: a crash here re-delivers the record.
                        crate::failpoint::hit("consumer.before_offset_store");
                    }
                    // Consumer lag: from the record's publication to its being done here.
                    if let Some(ms) = msg.timestamp().to_millis() {
                        let lag =
                            (chrono::Utc::now().timestamp_millis() - ms).max(0) as f64 / 1000.0;
                        metrics::histogram!("consumer_lag_seconds", "consumer" => self.name.clone()).record(lag);
                        metrics::gauge!("consumer_last_lag_seconds", "consumer" => self.name.clone()).set(lag);
                    }
                    match outcome {
                        Outcome::Applied => metrics::counter!("events_applied_total", "consumer" => self.name.clone()),
                        Outcome::Duplicate => {
                            metrics::counter!("events_duplicate_total", "consumer" => self.name.clone())
                        }
                        Outcome::DeadLettered => {
                            metrics::counter!("events_dead_lettered_total", "consumer" => self.name.clone())
                        }
                    }
                    .increment(1);
                    // After a rebalance the partition may be gone; the new owner re-reads the
                    // record and the dedupe row makes it a no-op, so this is not fatal.
                    if let Err(e) = self.consumer.store_offset_from_message(&msg) {
                        tracing::warn!(consumer = %self.name, error = %e, "cannot store offset");
                    }
                }
                None => break,
            }
        }
        // Commit what was stored; the group rebalances without us.
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "final offset commit");
        }
        self.consumer.unsubscribe();
        tracing::info!(consumer = %self.name, "consumer stopped");
        Ok(())
    }

    /// Applies one record; `None` when shutdown interrupted the retries.
    async fn process(
        &self,
        msg: &BorrowedMessage<'_>,
        shutdown: &CancellationToken,
    ) -> Option<Outcome> {
        let event = match ConsumedEvent::from_message(msg) {
            Ok(e) => e,
            Err(reason) => {
                tracing::warn!(topic = msg.topic(), offset = msg.offset(), %reason, "unreadable record");
                return self.dead_letter_raw(msg, None, &reason, shutdown).await;
            }
        };
        let span = tracing::info_span!("consume", otel.kind = "consumer", consumer = %self.name,
            event_type = %event.event_type, event_id = %event.event_id, region = %event.region_code,
            trace_id = tracing::field::Empty);
        crate::telemetry::set_parent(&span, &event.headers);
        crate::telemetry::record_trace_id(&span);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.apply(&event).instrument(span.clone()).await {
                Ok(true) => return Some(Outcome::Applied),
                Ok(false) => return Some(Outcome::Duplicate),
                Err(e) if attempt >= self.settings.max_attempts => {
                    tracing::error!(parent: &span, error = ?e, attempt, "giving up on event");
                    return self
                        .dead_letter_raw(msg, Some(&event), &format!("{e:#}"), shutdown)
                        .await;
                }
                Err(e) => {
                    tracing::warn!(parent: &span, error = %e, attempt, "event handler failed; retrying");
                    let wait = Duration::from_millis(
                        self.settings.retry_backoff_ms * u64::from(attempt.min(20)),
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Returns whether the event was applied now (false: it had been applied before).
    async fn apply(&self, event: &ConsumedEvent) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        if !mark_processed(&mut tx, &self.name, event).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        self.handler.handle(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn dead_letter_raw(
        &self,
        msg: &BorrowedMessage<'_>,
        event: Option<&ConsumedEvent>,
        error: &str,
        shutdown: &CancellationToken,
    ) -> Option<Outcome> {
        loop {
            let res: anyhow::Result<()> = async {
                let mut tx = self.pool.begin().await?;
                if let Some(ev) = event {
                    if !mark_processed(&mut tx, &self.name, ev).await? {
                        tx.rollback().await?;
                        return Ok(());
                    }
                }
                sqlx::query(
                    "INSERT INTO dead_letters (consumer, topic, kafka_partition, kafka_offset, event_id, event_type, payload, error)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&self.name)
                .bind(msg.topic())
                .bind(msg.partition())
                .bind(msg.offset())
                .bind(event.map(|e| e.event_id))
                .bind(event.map(|e| e.event_type.clone()))
                .bind(msg.payload().map(<[u8]>::to_vec))
                .bind(error)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
            .await;
            match res {
                Ok(()) => return Some(Outcome::DeadLettered),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record dead letter; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}

/// Records the event as applied by `consumer`; false when it already was.
async fn mark_processed(
    conn: &mut PgConnection,
    consumer: &str,
    ev: &ConsumedEvent,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO processed_events (consumer, event_id, topic, kafka_partition, kafka_offset)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(ev.event_id)
    .bind(&ev.topic)
    .bind(ev.partition)
    .bind(ev.offset)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}
