//! The event envelope: CloudEvents' Kafka binary binding. The record key is the aggregate id
//! (ordering per aggregate), the value the protobuf event, and the headers carry
//! `ce_specversion`, `ce_id`, `ce_type` (the full protobuf message name), `ce_source`,
//! `ce_subject`, `ce_time`, `ce_regioncode`, `content-type`, plus W3C `traceparent` /
//! `tracestate` — readable by any department's consumer with stock tools.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rdkafka::message::{BorrowedMessage, Headers, OwnedHeaders};
use rdkafka::Message;
use uuid::Uuid;

use crate::region::RegionCode;
use crate::ServiceKind;

pub const CONTENT_TYPE: &str = "application/protobuf";

/// An event a service is about to write into its outbox.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub topic: String,
    /// Aggregate id: the record key and `ce_subject`.
    pub key: String,
    pub event_type: String,
    pub source: String,
    pub region_code: String,
    pub occurred_at: DateTime<Utc>,
    pub payload: Vec<u8>,
}

impl NewEvent {
    /// An event of `kind`'s topic about aggregate `key` in `region`.
    pub fn new<M: prost::Message + prost::Name>(
        kind: ServiceKind,
        key: impl Into<String>,
        region: &RegionCode,
        message: &M,
    ) -> Self {
        NewEvent {
            event_id: Uuid::now_v7(),
            topic: kind.topic(),
            key: key.into(),
            event_type: M::full_name(),
            source: kind.event_source(),
            region_code: region.as_str().to_string(),
            occurred_at: Utc::now(),
            payload: message.encode_to_vec(),
        }
    }
}

/// The headers of a record, from the envelope fields and the trace context.
#[allow(clippy::too_many_arguments)]
pub fn headers(
    event_id: &Uuid,
    event_type: &str,
    source: &str,
    subject: &str,
    region_code: &str,
    occurred_at: &DateTime<Utc>,
    trace: &HashMap<String, String>,
) -> OwnedHeaders {
    use rdkafka::message::Header;
    let id = event_id.to_string();
    let time = occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut h = OwnedHeaders::new_with_capacity(10);
    for (k, v) in [
        ("ce_specversion", "1.0"),
        ("ce_id", id.as_str()),
        ("ce_type", event_type),
        ("ce_source", source),
        ("ce_subject", subject),
        ("ce_time", time.as_str()),
        ("ce_regioncode", region_code),
        ("content-type", CONTENT_TYPE),
    ] {
        h = h.insert(Header {
            key: k,
            value: Some(v),
        });
    }
    for (k, v) in trace {
        h = h.insert(Header {
            key: k.as_str(),
            value: Some(v.as_str()),
        });
    }
    h
}

/// An event as a consumer receives it.
#[derive(Debug, Clone)]
pub struct ConsumedEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub source: String,
    pub subject: String,
    pub region_code: String,
    pub occurred_at: DateTime<Utc>,
    pub payload: Vec<u8>,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Every header, including the trace context.
    pub headers: HashMap<String, String>,
}

impl ConsumedEvent {
    /// Reads the envelope; an error names what is missing or malformed.
    pub fn from_message(m: &BorrowedMessage<'_>) -> Result<Self, String> {
        let mut headers = HashMap::new();
        if let Some(hs) = m.headers() {
            for h in hs.iter() {
                if let Some(v) = h.value {
                    headers.insert(h.key.to_string(), String::from_utf8_lossy(v).into_owned());
                }
            }
        }
        let get = |k: &str| {
            headers
                .get(k)
                .cloned()
                .ok_or_else(|| format!("header {k} is missing"))
        };
        let event_id = Uuid::parse_str(&get("ce_id")?).map_err(|e| format!("ce_id: {e}"))?;
        let occurred_at = DateTime::parse_from_rfc3339(&get("ce_time")?)
            .map_err(|e| format!("ce_time: {e}"))?
            .with_timezone(&Utc);
        Ok(ConsumedEvent {
            event_id,
            event_type: get("ce_type")?,
            source: get("ce_source")?,
            subject: headers.get("ce_subject").cloned().unwrap_or_default(),
            region_code: get("ce_regioncode")?,
            occurred_at,
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            headers,
        })
    }

    /// Decodes the payload as `M`, checking the event type first.
    pub fn decode<M: prost::Message + prost::Name + Default>(&self) -> Result<M, String> {
        if self.event_type != M::full_name() {
            return Err(format!(
                "event type {} is not {}",
                self.event_type,
                M::full_name()
            ));
        }
        M::decode(self.payload.as_slice()).map_err(|e| format!("decoding {}: {e}", self.event_type))
    }
}
