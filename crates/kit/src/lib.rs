//! xiaoneng-kit: what all six services need, written once.
//!
//! Layout:
//! - [`config`]: layered settings (defaults → file → `XIAONENG__*` env), validated at start.
//! - [`telemetry`]: tracing, OTLP export, W3C propagation over gRPC metadata and Kafka headers,
//!   Prometheus metrics.
//! - [`db`]: per-service database created if missing, pool, migrations.
//! - [`events`], [`outbox`], [`consumer`], [`kafka`]: the event envelope (CloudEvents Kafka
//!   binding), the transactional outbox and its relay, the idempotent consumer, topic admin.
//! - [`error`]: domain errors → `tonic::Status` with `google.rpc` details; SQLSTATE mapping.
//! - [`auth`], [`region`]: JWT callers and region scoping (a county sees its own data, a city
//!   its counties).
//! - [`server`]: the gRPC server with health, reflection, auth, tracing and metrics layers,
//!   graceful shutdown; [`Foundation`] ties it together for a service's `build`.
//! - [`paging`]: AIP-158 page tokens.
//! - [`background`]: periodic loops with shutdown; [`failpoint`]: crash points for tests.
//! - [`calendar`]: the live working-day calendar (notices loaded at run time, every replica).
//! - [`mask`]: personal data masked for public reads.

pub mod auth;
pub mod background;
pub mod calendar;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod db;
pub mod error;
pub mod events;
pub mod failpoint;
pub mod kafka;
pub mod mask;
pub mod names;
pub mod outbox;
pub mod paging;
pub mod region;
pub mod server;
pub mod telemetry;

pub mod foundation;
pub mod gauges;
pub use foundation::{run_main, Foundation};

pub use error::{AppError, AppResult, Violations};

/// The six services. Names, default ports and topics are derived from here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    Catalog,
    Queue,
    Case,
    Evaluation,
    Complaint,
    Accountability,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 6] = [
        ServiceKind::Catalog,
        ServiceKind::Queue,
        ServiceKind::Case,
        ServiceKind::Evaluation,
        ServiceKind::Complaint,
        ServiceKind::Accountability,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Catalog => "catalog",
            ServiceKind::Queue => "queue",
            ServiceKind::Case => "case",
            ServiceKind::Evaluation => "evaluation",
            ServiceKind::Complaint => "complaint",
            ServiceKind::Accountability => "accountability",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            ServiceKind::Catalog => 50051,
            ServiceKind::Queue => 50052,
            ServiceKind::Case => 50053,
            ServiceKind::Evaluation => 50054,
            ServiceKind::Complaint => 50055,
            ServiceKind::Accountability => 50056,
        }
    }

    /// The fully-qualified gRPC service name.
    pub fn grpc_service(self) -> &'static str {
        use xiaoneng_proto::service_names as n;
        match self {
            ServiceKind::Catalog => n::CATALOG,
            ServiceKind::Queue => n::QUEUE,
            ServiceKind::Case => n::CASE,
            ServiceKind::Evaluation => n::EVALUATION,
            ServiceKind::Complaint => n::COMPLAINT,
            ServiceKind::Accountability => n::ACCOUNTABILITY,
        }
    }

    /// The one topic this service publishes on: `xiaoneng.<service>.events`.
    pub fn topic(self) -> String {
        format!("xiaoneng.{}.events", self.name())
    }

    /// The CloudEvents `source` of this service's events.
    pub fn event_source(self) -> String {
        format!("/xiaoneng/{}", self.name())
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// A `google.protobuf.Timestamp` of a UTC time.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// Today in China Standard Time (UTC+8, no daylight saving): the date halls and deadlines use.
pub fn today_cn() -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&clock::cst()).date_naive()
}

/// Parses a `YYYY-MM-DD` request field; empty means `default`.
pub fn parse_date_field(
    value: &str,
    field: &str,
    default: chrono::NaiveDate,
) -> Result<chrono::NaiveDate, AppError> {
    if value.is_empty() {
        return Ok(default);
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| AppError::invalid(field, "must be a date YYYY-MM-DD"))
}
