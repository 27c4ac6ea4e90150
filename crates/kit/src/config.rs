//! Layered configuration: built-in defaults → optional file (`XIAONENG_CONFIG`) → environment
//! variables `XIAONENG__SECTION__KEY` (so a Helm chart only sets env). Unknown keys and bad
//! values fail at start with a message naming the key. Secrets are never printed.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ServiceKind;

/// Settings of one service; `D` holds the service's own section (`[domain]`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings<D = NoDomain> {
    pub service: ServiceSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub kafka: KafkaSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub outbox: OutboxSettings,
    pub consumer: ConsumerSettings,
    #[serde(default)]
    pub domain: D,
}

/// The `[domain]` section of a service that has none yet.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoDomain {}

impl DomainSettings for NoDomain {}

/// A service's own `[domain]` section: checked at load like the rest, so a bad value stops
/// the process at start with the key named (`domain.<key>`), never later in a loop.
pub trait DomainSettings: Default + Serialize + DeserializeOwned {
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// `domain.<key>` must be positive.
pub fn positive(key: &str, value: i64) -> Result<(), ConfigError> {
    if value <= 0 {
        return Err(invalid(&format!("domain.{key}"), "must be positive"));
    }
    Ok(())
}

/// `domain.business_time` is empty (real time) or an RFC 3339 time, and
/// `domain.business_clock_rate` a rate from 1 to [`crate::clock::MAX_RATE`].
pub fn business_clock(value: &str, rate: crate::clock::ClockRate) -> Result<(), ConfigError> {
    crate::clock::BusinessClock::starting_at(value, "domain.business_time")
        .map_err(|e| invalid("domain.business_time", e.to_string()))?;
    crate::clock::BusinessClock::new(value, rate, "domain.business_time")
        .map(|_| ())
        .map_err(|e| invalid("domain.business_clock_rate", e.to_string()))
}

/// `domain.<key>` is an http:// or https:// URL (another service's gRPC address).
pub fn service_url(key: &str, value: &str) -> Result<(), ConfigError> {
    if !(value.starts_with("http://") || value.starts_with("https://")) {
        return Err(invalid(
            &format!("domain.{key}"),
            format!("{value:?} is not an http:// or https:// URL"),
        ));
    }
    Ok(())
}

/// A secret (a signing key): read from configuration, never printed — `Debug` and
/// `Display` show `***`; [`Secret::expose`] is the one way to the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// Address the gRPC server binds, e.g. `127.0.0.1:50051` (port 0 picks a free port).
    pub grpc_addr: SocketAddr,
    /// Address of the Prometheus `/metrics` listener; empty disables it.
    pub metrics_addr: String,
    /// Seconds in-flight calls get to finish on shutdown.
    pub shutdown_grace_secs: u64,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Server URL without the database, e.g. `postgres://postgres@127.0.0.1:5432`.
    pub url: String,
    /// The service's own database, created when missing.
    pub name: String,
    pub max_connections: u32,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Comma-separated bootstrap servers.
    pub brokers: String,
    /// Partitions of topics this service creates when they are missing.
    pub partitions: i32,
    pub replication_factor: i32,
    /// How long the producer keeps trying one record before the relay retries it.
    pub message_timeout_ms: u32,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 key shared by the token issuer and every service (a Kubernetes Secret in a cluster).
    pub jwt_secret: Secret,
    pub issuer: String,
    pub audience: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `tracing` filter directives, e.g. `info,sqlx=warn`.
    pub log_level: String,
    /// `pretty` or `json`.
    pub log_format: String,
    /// OTLP/gRPC endpoint for traces, e.g. `http://otel-collector:4317`; empty disables export.
    pub otlp_endpoint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    pub batch_size: i64,
    /// Fallback poll when no notification arrives (notifications wake the relay on commit).
    pub poll_interval_ms: u64,
    /// Published rows older than this are deleted.
    pub retention_hours: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSettings {
    /// Consumer group id; each service consumes as its own group.
    pub group_id: String,
    /// Attempts before a record goes to `dead_letters`.
    pub max_attempts: u32,
    pub retry_backoff_ms: u64,
}

fn redact_url(url: &str) -> String {
    // postgres://user:secret@host → postgres://user:***@host
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("name", &self.name)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSettings")
            .field("jwt_secret", &self.jwt_secret)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl<D: fmt::Debug> fmt::Debug for Settings<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("service", &self.service)
            .field("database", &self.database)
            .field("redis", &self.redis)
            .field("kafka", &self.kafka)
            .field("auth", &self.auth)
            .field("telemetry", &self.telemetry)
            .field("outbox", &self.outbox)
            .field("consumer", &self.consumer)
            .field("domain", &self.domain)
            .finish()
    }
}

/// The development signing key. Services refuse it when `XIAONENG_ENV=production`.
pub const DEV_JWT_SECRET: &str = "xiaoneng-dev-secret-not-for-production";

impl<D: Default> Settings<D> {
    /// Built-in defaults: everything on loopback, ready for `./scripts/up`.
    pub fn defaults(kind: ServiceKind) -> Self {
        Settings {
            service: ServiceSettings {
                grpc_addr: SocketAddr::from(([127, 0, 0, 1], kind.default_port())),
                metrics_addr: format!("127.0.0.1:{}", kind.default_port() + 1000),
                shutdown_grace_secs: 10,
            },
            database: DatabaseSettings {
                url: "postgres://postgres@127.0.0.1:5432".into(),
                name: format!("xiaoneng_{}", kind.name()),
                max_connections: 16,
            },
            redis: RedisSettings {
                url: "redis://127.0.0.1:6379".into(),
            },
            kafka: KafkaSettings {
                brokers: "127.0.0.1:9092".into(),
                partitions: 3,
                replication_factor: 1,
                message_timeout_ms: 15_000,
            },
            auth: AuthSettings {
                jwt_secret: Secret::new(DEV_JWT_SECRET),
                issuer: "xiaoneng".into(),
                audience: "xiaoneng".into(),
            },
            telemetry: TelemetrySettings {
                log_level: "info".into(),
                log_format: "pretty".into(),
                otlp_endpoint: String::new(),
            },
            outbox: OutboxSettings {
                batch_size: 500,
                poll_interval_ms: 1000,
                retention_hours: 24 * 7,
            },
            consumer: ConsumerSettings {
                group_id: format!("xiaoneng-{}", kind.name()),
                max_attempts: 10,
                retry_backoff_ms: 200,
            },
            domain: D::default(),
        }
    }
}

/// A configuration problem, naming the key when one is to blame.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid configuration: `{key}`: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Loads settings from the process: defaults, the file named by `XIAONENG_CONFIG`, then
/// `XIAONENG__*` environment variables.
pub fn load<D>(kind: ServiceKind) -> Result<Settings<D>, ConfigError>
where
    D: DomainSettings,
{
    let file = std::env::var("XIAONENG_CONFIG")
        .ok()
        .filter(|s| !s.is_empty());
    load_from(kind, file.as_deref(), None)
}

/// The directory of settings kept as files (Kubernetes Secrets mounted as a volume): each file
/// is named as its environment variable (`XIAONENG__AUTH__JWT_SECRET`) and holds its value.
/// They apply after the config file and before the environment.
pub const SECRETS_DIR: &str = "XIAONENG_SECRETS_DIR";

/// The settings in `dir`'s files named `XIAONENG__*` (a trailing newline dropped).
fn secret_files(dir: &str) -> Result<HashMap<String, String>, ConfigError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| invalid(SECRETS_DIR, format!("{dir}: {e}")))?;
    let mut out = HashMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| invalid(SECRETS_DIR, format!("{dir}: {e}")))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with("XIAONENG__") || !entry.path().is_file() {
            continue;
        }
        let value = std::fs::read_to_string(entry.path())
            .map_err(|e| invalid(SECRETS_DIR, format!("{name}: {e}")))?;
        out.insert(name, value.trim_end_matches(['\n', '\r']).to_string());
    }
    Ok(out)
}

/// Loads settings from an explicit file and environment (`None` reads the process env).
pub fn load_from<D>(
    kind: ServiceKind,
    file: Option<&str>,
    env: Option<HashMap<String, String>>,
) -> Result<Settings<D>, ConfigError>
where
    D: DomainSettings,
{
    let defaults = Settings::<D>::defaults(kind);
    let mut builder = config::Config::builder().add_source(config::Config::try_from(&defaults)?);
    if let Some(path) = file {
        builder = builder.add_source(config::File::with_name(path).required(true));
    }
    let dir = match &env {
        Some(e) => e.get(SECRETS_DIR).cloned(),
        None => std::env::var(SECRETS_DIR).ok(),
    };
    if let Some(dir) = dir.filter(|d| !d.is_empty()) {
        builder = builder.add_source(
            config::Environment::with_prefix("XIAONENG")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(secret_files(&dir)?)),
        );
    }
    builder = builder.add_source(
        config::Environment::with_prefix("XIAONENG")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(env),
    );
    let settings: Settings<D> = builder.build()?.try_deserialize()?;
    settings.validate()?;
    settings.domain.validate()?;
    Ok(settings)
}

/// Every key of the settings as the defaults of `kind` serialize them, as dotted paths
/// (`database.max_connections`, `domain.limits.merge_window_days`); a map or list that is
/// empty by default is one path. What the README's configuration reference is checked against.
pub fn key_paths<D: DomainSettings>(kind: ServiceKind) -> Vec<String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut out = Vec::new();
    let v = serde_json::to_value(Settings::<D>::defaults(kind)).unwrap_or_default();
    walk("", &v, &mut out);
    out
}

/// The paths of [`key_paths`] that `reference` (the README's configuration section) does not
/// name: a `domain` key by its path below `domain` in backticks (`` `limits.merge_window_days` ``),
/// a key of a common section by its name.
pub fn undocumented<D: DomainSettings>(kind: ServiceKind, reference: &str) -> Vec<String> {
    key_paths::<D>(kind)
        .into_iter()
        .filter(|p| match p.strip_prefix("domain.") {
            // A map's key is data: `keys.<id>` documents `keys.dev-insecure`.
            Some(rest) => {
                let parent = rest.rsplit_once('.').map(|(p, _)| p).unwrap_or(rest);
                !reference.contains(&format!("`{rest}`"))
                    && !reference.contains(&format!("`{parent}.<"))
            }
            None => !reference.contains(p.rsplit('.').next().unwrap_or(p)),
        })
        .collect()
}

/// The README's configuration section (from `## Configuration` to the next `## `).
pub fn reference_section(readme: &str) -> &str {
    let start = readme.find("## Configuration").unwrap_or(readme.len());
    let rest = &readme[start..];
    let end = rest[3..].find("\n## ").map(|i| i + 3).unwrap_or(rest.len());
    &rest[..end]
}

impl<D> Settings<D> {
    /// Checks what serde cannot: addresses, ranges, identifiers.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.service.metrics_addr.is_empty() {
            self.service
                .metrics_addr
                .parse::<SocketAddr>()
                .map_err(|e| {
                    invalid(
                        "service.metrics_addr",
                        format!("{:?} is not host:port ({e})", self.service.metrics_addr),
                    )
                })?;
        }
        if !self.database.url.starts_with("postgres://")
            && !self.database.url.starts_with("postgresql://")
        {
            return Err(invalid("database.url", "must start with postgres://"));
        }
        let name_ok = !self.database.name.is_empty()
            && self.database.name.len() <= 63
            && self
                .database
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return Err(invalid(
                "database.name",
                "must be 1-63 characters of a-z, 0-9 and _",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if !self.redis.url.starts_with("redis://") && !self.redis.url.starts_with("rediss://") {
            return Err(invalid(
                "redis.url",
                "must start with redis:// or rediss://",
            ));
        }
        if self.kafka.brokers.trim().is_empty() {
            return Err(invalid("kafka.brokers", "must name at least one broker"));
        }
        if self.kafka.partitions < 1 {
            return Err(invalid("kafka.partitions", "must be at least 1"));
        }
        if self.kafka.replication_factor < 1 {
            return Err(invalid("kafka.replication_factor", "must be at least 1"));
        }
        if self.kafka.message_timeout_ms < 1000 {
            return Err(invalid("kafka.message_timeout_ms", "must be at least 1000"));
        }
        if self.auth.jwt_secret.expose().len() < 16 {
            return Err(invalid("auth.jwt_secret", "must be at least 16 bytes"));
        }
        if std::env::var("XIAONENG_ENV").as_deref() == Ok("production")
            && self.auth.jwt_secret.expose() == DEV_JWT_SECRET
        {
            return Err(invalid(
                "auth.jwt_secret",
                "the development key is refused in production",
            ));
        }
        if !matches!(self.telemetry.log_format.as_str(), "pretty" | "json") {
            return Err(invalid(
                "telemetry.log_format",
                "must be `pretty` or `json`",
            ));
        }
        if !self.telemetry.otlp_endpoint.is_empty()
            && !self.telemetry.otlp_endpoint.starts_with("http://")
            && !self.telemetry.otlp_endpoint.starts_with("https://")
        {
            return Err(invalid(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL",
            ));
        }
        if self.outbox.batch_size < 1 {
            return Err(invalid("outbox.batch_size", "must be at least 1"));
        }
        if self.outbox.poll_interval_ms == 0 {
            return Err(invalid("outbox.poll_interval_ms", "must be at least 1"));
        }
        if self.consumer.group_id.is_empty() {
            return Err(invalid("consumer.group_id", "must not be empty"));
        }
        if self.consumer.max_attempts == 0 {
            return Err(invalid("consumer.max_attempts", "must be at least 1"));
        }
        Ok(())
    }

    /// The full URL of this service's own database.
    pub fn database_url(&self) -> String {
        format!(
            "{}/{}",
            self.database.url.trim_end_matches('/'),
            self.database.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// Kubernetes Secrets mounted as files: each applies as its variable would, before the
    /// environment; other files are ignored; a missing directory stops the start.
    #[test]
    fn settings_kept_as_files_apply_before_the_environment() {
        let dir = std::env::temp_dir().join(format!("xn-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = "a-signing-key-from-a-mounted-secret-0123456789";
        std::fs::write(
            dir.join("XIAONENG__AUTH__JWT_SECRET"),
            format!("{secret}\n"),
        )
        .unwrap();
        std::fs::write(dir.join("XIAONENG__DATABASE__MAX_CONNECTIONS"), "7").unwrap();
        std::fs::write(dir.join("XIAONENG__REDIS__URL"), "redis://cache:6379").unwrap();
        std::fs::write(dir.join("README"), "not a setting").unwrap();
        let d = dir.to_str().unwrap();
        let both = [
            (SECRETS_DIR, d),
            ("XIAONENG__DATABASE__MAX_CONNECTIONS", "9"),
        ];
        let s = load_from::<NoDomain>(ServiceKind::Catalog, None, env(&both)).unwrap();
        assert_eq!(s.auth.jwt_secret.expose(), secret);
        assert_eq!(s.redis.url, "redis://cache:6379");
        assert_eq!(s.database.max_connections, 9, "the environment wins");
        let gone = [(SECRETS_DIR, "/nonexistent/xiaoneng-secrets")];
        let err = load_from::<NoDomain>(ServiceKind::Catalog, None, env(&gone)).unwrap_err();
        assert!(err.to_string().contains(SECRETS_DIR), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn load_env(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        load_from(ServiceKind::Catalog, None, env(pairs))
    }

    #[test]
    fn defaults_are_valid_and_per_service() {
        let s = load_env(&[]).unwrap();
        assert_eq!(s.service.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(s.database.name, "xiaoneng_catalog");
        let q: Settings = load_from(ServiceKind::Accountability, None, env(&[])).unwrap();
        assert_eq!(q.service.grpc_addr.to_string(), "127.0.0.1:50056");
    }

    #[test]
    fn env_overrides_with_double_underscore() {
        let s = load_env(&[
            ("XIAONENG__DATABASE__MAX_CONNECTIONS", "3"),
            ("XIAONENG__KAFKA__BROKERS", "10.0.0.1:9092"),
        ])
        .unwrap();
        assert_eq!(s.database.max_connections, 3);
        assert_eq!(s.kafka.brokers, "10.0.0.1:9092");
    }

    #[test]
    fn file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.toml");
        std::fs::write(
            &path,
            "[database]\nname = \"from_file\"\nmax_connections = 4\n",
        )
        .unwrap();
        let s: Settings = load_from(
            ServiceKind::Catalog,
            path.to_str(),
            env(&[("XIAONENG__DATABASE__MAX_CONNECTIONS", "5")]),
        )
        .unwrap();
        assert_eq!(s.database.name, "from_file");
        assert_eq!(s.database.max_connections, 5);
    }

    #[test]
    fn malformed_value_names_the_key() {
        let err = load_env(&[("XIAONENG__DATABASE__MAX_CONNECTIONS", "many")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.max_connections"), "{err}");
        let err = load_env(&[("XIAONENG__SERVICE__GRPC_ADDR", "nowhere")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("service.grpc_addr"), "{err}");
        let err = load_env(&[("XIAONENG__DATABASE__NAME", "drop table x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.name"), "{err}");
        let err = load_env(&[("XIAONENG__TELEMETRY__LOG_FORMAT", "xml")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("telemetry.log_format"), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = load_env(&[("XIAONENG__DATABASE__PASSWRD", "x")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field") && err.contains("passwrd"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[nonsense]\nx = 1\n").unwrap();
        let err = load_from::<NoDomain>(ServiceKind::Catalog, path.to_str(), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nonsense"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err =
            load_from::<NoDomain>(ServiceKind::Catalog, Some("/nonexistent/x.toml"), env(&[]))
                .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x"), "{err}");
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = load_env(&[
            ("XIAONENG__DATABASE__URL", "postgres://app:hunter2@db:5432"),
            ("XIAONENG__AUTH__JWT_SECRET", "a-very-secret-signing-key"),
        ])
        .unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("a-very-secret"),
            "{shown}"
        );
        assert!(shown.contains("app:***@db"));
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        interval_ms: u64,
        business_time: String,
        catalog_addr: String,
    }

    impl Default for Demo {
        fn default() -> Self {
            Demo {
                interval_ms: 1000,
                business_time: String::new(),
                catalog_addr: "http://127.0.0.1:50051".into(),
            }
        }
    }

    impl DomainSettings for Demo {
        fn validate(&self) -> Result<(), ConfigError> {
            positive("interval_ms", self.interval_ms as i64)?;
            business_clock(&self.business_time, crate::clock::ClockRate::default())?;
            service_url("catalog_addr", &self.catalog_addr)
        }
    }

    fn load_demo(pairs: &[(&str, &str)]) -> Result<Settings<Demo>, ConfigError> {
        load_from(ServiceKind::Case, None, env(pairs))
    }

    #[test]
    fn the_domain_block_is_validated_at_load_naming_the_key() {
        assert!(load_demo(&[]).is_ok());
        let cases = [
            ("XIAONENG__DOMAIN__INTERVAL_MS", "0", "domain.interval_ms"),
            (
                "XIAONENG__DOMAIN__BUSINESS_TIME",
                "yesterday",
                "domain.business_time",
            ),
            (
                "XIAONENG__DOMAIN__CATALOG_ADDR",
                "127.0.0.1:50051",
                "domain.catalog_addr",
            ),
        ];
        for (var, value, key) in cases {
            let err = load_demo(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{var}={value}: {err}");
        }
        let ok = load_demo(&[(
            "XIAONENG__DOMAIN__BUSINESS_TIME",
            "2026-09-14T09:00:00+08:00",
        )]);
        assert_eq!(
            ok.unwrap().domain.business_time,
            "2026-09-14T09:00:00+08:00"
        );
    }

    #[test]
    fn a_secret_shows_stars_and_exposes_its_value_only_when_asked() {
        let s = Secret::new("a-very-secret-signing-key");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "a-very-secret-signing-key");
    }
}
