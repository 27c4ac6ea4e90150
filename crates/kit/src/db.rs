//! The service's own PostgreSQL database: created when missing, pooled, migrated at start.
//! The kit's tables (outbox, processed events, dead letters) migrate first, then the
//! service's; the two migration sets share `_sqlx_migrations` with disjoint versions.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::config::DatabaseSettings;

/// Connects to `settings.name`, creating the database first when it does not exist.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let server =
        PgConnectOptions::from_str(&settings.url)?.log_statements(tracing::log::LevelFilter::Trace);
    create_database_if_missing(&server, &settings.name).await?;
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(server.database(&settings.name))
        .await?;
    Ok(pool)
}

pub async fn create_database_if_missing(
    server: &PgConnectOptions,
    name: &str,
) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect_with(&server.clone().database("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // `name` is validated by the config to [a-z0-9_]; identifiers cannot be bound.
        match sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
        {
            Ok(_) => tracing::info!(database = name, "created database"),
            // Another instance won the race.
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P04") | Some("23505")) => {}
            Err(e) => return Err(e.into()),
        }
    }
    conn.close().await?;
    Ok(())
}

/// Applies the kit's migrations, then the service's.
pub async fn migrate(pool: &PgPool, mut service: Migrator) -> anyhow::Result<()> {
    let mut kit = sqlx::migrate!("./migrations");
    kit.set_ignore_missing(true);
    kit.run(pool).await?;
    service.set_ignore_missing(true);
    service.run(pool).await?;
    Ok(())
}
