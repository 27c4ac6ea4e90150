//! Kafka clients configured once: the idempotent producer of the outbox relay, the consumer of
//! the idempotent consumer, and topic creation (topics are never auto-created).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;

use crate::config::KafkaSettings;

fn base(s: &KafkaSettings, client_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.brokers)
        .set("client.id", client_id)
        .set("socket.keepalive.enable", "true")
        .set("reconnect.backoff.max.ms", "2000");
    c
}

/// Idempotent producer, `acks=all`: a record the broker acknowledged is durable and retries
/// inside the producer never duplicate it.
pub fn producer(s: &KafkaSettings, client_id: &str) -> anyhow::Result<FutureProducer> {
    Ok(base(s, client_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", s.message_timeout_ms.to_string())
        .set("linger.ms", "5")
        .create()?)
}

/// A consumer that never commits an offset it was not told to store: offsets are stored by
/// the idempotent consumer after the handler's transaction committed.
pub fn consumer(
    s: &KafkaSettings,
    group_id: &str,
    client_id: &str,
) -> anyhow::Result<StreamConsumer> {
    Ok(base(s, client_id)
        .set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "500")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        // The rebalance timeout a join announces. A broker may hold a rebalance until every
        // member it knows rejoins or this passes (tansu does, beside a member that died): one
        // minute, not librdkafka's five, bounds how long a restarted replica waits for its
        // partitions. A record is handled in milliseconds; a handler stuck longer than this
        // leaves the group and its record comes again (applied once by its dedupe row).
        .set("max.poll.interval.ms", "60000")
        .create()?)
}

/// Creates the topics that do not exist yet.
/// Creates each of `topics` that is missing; the ones it created (the others existed).
pub async fn ensure_topics(s: &KafkaSettings, topics: &[String]) -> anyhow::Result<Vec<String>> {
    let admin: AdminClient<DefaultClientContext> = base(s, "xiaoneng-admin").create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            NewTopic::new(
                t,
                s.partitions,
                TopicReplication::Fixed(s.replication_factor),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let mut created = Vec::new();
    for result in admin.create_topics(new.iter(), &opts).await? {
        match result {
            Ok(t) => {
                tracing::info!(topic = %t, "created topic");
                created.push(t);
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => anyhow::bail!("creating topic {t}: {code}"),
        }
    }
    Ok(created)
}
