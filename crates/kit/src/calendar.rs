//! The live working-day calendar every service with a legal clock shares: the embedded
//! national data (and the overlay files) with the notices loaded at run time on top. Notices
//! are rows of the service's `calendar_notices` table; each replica polls the table's highest
//! id (its *epoch*) and rebuilds its calendars when it grew, so a notice loaded through one
//! replica reaches every replica without a restart.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Row};
use xiaoneng_calendar::{Calendars, Notice, NoticeErrors};

use crate::{AppError, AppResult};

/// The calendars as of one epoch (the id of the last notice applied; 0: none).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub epoch: i64,
    pub calendars: Calendars,
}

/// One stored notice.
#[derive(Debug, Clone)]
pub struct StoredNotice {
    pub epoch: i64,
    pub notice: Notice,
    pub loaded_by: String,
    pub loaded_at: DateTime<Utc>,
}

/// The calendars in force now, swapped whole when a notice arrives. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveCalendars {
    base: Arc<Calendars>,
    current: Arc<RwLock<Arc<Snapshot>>>,
    stored: Arc<RwLock<Vec<StoredNotice>>>,
}

impl LiveCalendars {
    /// Calendars that start from `base` (embedded data and overlay files) at epoch 0.
    pub fn new(base: Calendars) -> Self {
        let snap = Snapshot {
            epoch: 0,
            calendars: base.clone(),
        };
        LiveCalendars {
            base: Arc::new(base),
            current: Arc::new(RwLock::new(Arc::new(snap))),
            stored: Arc::new(RwLock::new(Vec::new())),
        }
    }

    /// The calendars in force now; hold it for the length of one change so that one change
    /// never mixes two calendars.
    pub fn current(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The notices applied, in load order.
    pub fn notices(&self) -> Vec<StoredNotice> {
        self.stored
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The last notice applied, as `<scope> <version>` (how history entries and events name
    /// it); empty before any.
    pub fn latest_label(&self) -> String {
        let stored = self.stored.read().unwrap_or_else(|e| e.into_inner());
        let last = stored.last();
        last.map(|n| format!("{} {}", n.notice.scope.key(), n.notice.version))
            .unwrap_or_default()
    }

    /// Reads the notices when the table holds a newer one than applied; returns the epoch in
    /// force after it. A stored notice that no longer parses is skipped with an error log (it
    /// was validated on the way in), never applied half.
    pub async fn refresh(&self, pool: &PgPool) -> AppResult<i64> {
        let top: Option<i64> = sqlx::query_scalar("SELECT max(id) FROM calendar_notices")
            .fetch_one(pool)
            .await?;
        let top = top.unwrap_or(0);
        let now = self.current().epoch;
        if top <= now {
            return Ok(now);
        }
        let rows = sqlx::query(
            "SELECT id, body, loaded_by, loaded_at FROM calendar_notices WHERE id <= $1 ORDER BY id",
        )
        .bind(top)
        .fetch_all(pool)
        .await?;
        let mut stored = Vec::new();
        for r in rows {
            let (id, body): (i64, String) = (r.get("id"), r.get("body"));
            match Notice::parse(&body) {
                Ok(notice) => stored.push(StoredNotice {
                    epoch: id,
                    notice,
                    loaded_by: r.get("loaded_by"),
                    loaded_at: r.get("loaded_at"),
                }),
                Err(e) => {
                    tracing::error!(notice = id, error = %e, "stored calendar notice skipped")
                }
            }
        }
        let notices: Vec<Notice> = stored.iter().map(|s| s.notice.clone()).collect();
        let snap = Snapshot {
            epoch: top,
            calendars: self.base.with_notices(&notices),
        };
        *self.stored.write().unwrap_or_else(|e| e.into_inner()) = stored;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
        tracing::info!(epoch = top, "calendar notices applied");
        Ok(top)
    }

    /// Publishes the days of coverage left (`calendar_coverage_days_left{region}`) for the
    /// national calendar and every region with an overlay.
    pub fn export_coverage(&self, today: NaiveDate) {
        let snap = self.current();
        let national = snap.calendars.for_region("000000");
        let left = national.coverage_days_left(today) as f64;
        metrics::gauge!("calendar_coverage_days_left", "region" => "national").set(left);
        for region in snap.calendars.regions() {
            let left = snap.calendars.for_region(region).coverage_days_left(today) as f64;
            metrics::gauge!("calendar_coverage_days_left", "region" => region.to_string())
                .set(left);
        }
        metrics::gauge!("calendar_epoch").set(snap.epoch as f64);
    }
}

/// Parses `text` as a notice; a refused notice is INVALID_ARGUMENT with one violation of
/// `field` per bad line.
pub fn parse_notice(text: &str, field: &str) -> AppResult<Notice> {
    Notice::parse(text).map_err(|NoticeErrors(lines)| {
        let mut v = crate::Violations::new();
        for line in lines {
            v.check(false, field, &line);
        }
        v.into_result()
            .err()
            .unwrap_or_else(|| AppError::invalid(field, "is not a notice"))
    })
}

/// Stores a validated notice (its text as given) on `conn`; its epoch, or None when a notice
/// of the same scope and version is stored already.
pub async fn insert_notice(
    conn: &mut sqlx::PgConnection,
    notice: &Notice,
    text: &str,
    loaded_by: &str,
    at: DateTime<Utc>,
) -> AppResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO calendar_notices (scope, version, source, fabricated, body, loaded_by, loaded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (scope, version) DO NOTHING RETURNING id",
    )
    .bind(notice.scope.key())
    .bind(&notice.version)
    .bind(&notice.source)
    .bind(notice.fabricated)
    .bind(text)
    .bind(loaded_by)
    .bind(at)
    .fetch_optional(conn)
    .await?)
}

/// A consumed event that is a `CalendarNoticeLoaded` (the case service loaded a notice) stored
/// on `conn`, as every other service with a legal clock applies it; false for any other event.
pub async fn store_loaded_notice(
    conn: &mut sqlx::PgConnection,
    event: &crate::events::ConsumedEvent,
) -> anyhow::Result<bool> {
    use xiaoneng_proto::case::events::v1::CalendarNoticeLoaded;
    if event.event_type != <CalendarNoticeLoaded as prost::Name>::full_name() {
        return Ok(false);
    }
    let n: CalendarNoticeLoaded = event.decode().map_err(anyhow::Error::msg)?;
    let notice = Notice::parse(&n.text).map_err(|e| anyhow::anyhow!("{e}"))?;
    insert_notice(conn, &notice, &n.text, &n.loaded_by, event.occurred_at).await?;
    Ok(true)
}
