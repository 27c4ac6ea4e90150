//! The queue's use cases and the state they share: the pool, the hot queue in Redis, the
//! catalog client, the calendars, the business clock, the board fan-out and two short caches.
//! The API and the background loops (tidal windows, the reconciler) work through this; neither
//! loop touches the API.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use prost::Message;
use sqlx::{PgConnection, PgPool};
use tokio::sync::broadcast;
use uuid::Uuid;
use xiaoneng_calendar::Calendars;
use xiaoneng_kit::auth::Caller;
use xiaoneng_kit::catalog::Catalog;
use xiaoneng_kit::clock::{cst, BusinessClock};
use xiaoneng_kit::{outbox, AppError, AppResult};
use xiaoneng_proto::queue::v1 as pb;

use crate::domain::{
    self, eligible_codes, view, CallAction, HallRow, MatterInfo, Priority, Reason, ServiceKind,
    TicketRow, TicketState, WindowRow, WindowState,
};
use crate::events;
use crate::hot::{self, Hot, Popped};
use crate::store;

mod appointments;
mod halls;
mod reconcile;
mod tickets;
mod tidal;

pub use appointments::CheckedIn;
pub use halls::NewSlots;
pub use tickets::{Issued, NewTicket, Step};

pub(crate) fn parse_uuid(s: &str, field: &str) -> AppResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| AppError::invalid(field, "must be an id"))
}

pub struct Settings {
    pub grace_minutes: i64,
    pub daily_cap: usize,
}

pub struct Queue {
    pub pool: PgPool,
    pub hot: Arc<Hot>,
    pub(crate) catalog: Catalog,
    pub(crate) calendars: Calendars,
    pub clock: BusinessClock,
    pub(crate) settings: Settings,
    pub(crate) board: broadcast::Sender<pb::WatchBoardResponse>,
    pub(crate) matters: Mutex<HashMap<(String, NaiveDate), (Instant, MatterInfo)>>,
    /// A hall's windows for responses and the walk-in eligibility check, kept one second (the
    /// decisions at a window read its locked row, never this).
    pub(crate) windows: Mutex<HashMap<Uuid, (Instant, Arc<Vec<WindowRow>>)>>,
}

pub fn entry_of(t: &TicketRow) -> hot::Entry {
    hot::entry(
        t.id,
        &t.matter_id,
        &t.service_kind,
        &t.category,
        &t.window_codes,
        Priority::from_rank(t.priority).unwrap_or(Priority::Normal),
        t.arrival_ms,
        t.direct_window,
    )
}

impl Queue {
    pub fn new(
        pool: PgPool,
        hot: Arc<Hot>,
        catalog: Catalog,
        calendars: Calendars,
        clock: BusinessClock,
        settings: Settings,
        board: broadcast::Sender<pb::WatchBoardResponse>,
    ) -> Self {
        Queue {
            pool,
            hot,
            catalog,
            calendars,
            clock,
            settings,
            board,
            matters: Mutex::new(HashMap::new()),
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn today(&self) -> NaiveDate {
        self.clock.today()
    }

    /// Today's ticket `number` in the hall of `window` (what a citizen says at the desk).
    pub async fn ticket_numbered(
        &self,
        caller: &Caller,
        window: Uuid,
        number: &str,
    ) -> AppResult<Uuid> {
        store::ticket_numbered(&self.pool, &caller.region, window, self.today(), number).await
    }

    /// The matter in force today (name and accepting window codes) from the catalog.
    pub(crate) async fn matter(&self, id: &str) -> AppResult<MatterInfo> {
        let today = self.today();
        let key = (id.to_string(), today);
        if let Some((at, m)) = self.matters.lock().expect("cache lock").get(&key) {
            if at.elapsed() < Duration::from_secs(60) {
                return Ok(m.clone());
            }
        }
        let m = self.catalog.matter_in_force(id, today).await?;
        let terms = m.terms.unwrap_or_default();
        let info = MatterInfo {
            name: terms.name,
            department: m.department_name,
            window_codes: terms.window_codes,
        };
        self.matters
            .lock()
            .expect("cache lock")
            .insert(key, (Instant::now(), info.clone()));
        Ok(info)
    }

    /// Reloads a hall's waiting tickets into Redis, one rebuilder at a time.
    pub async fn rebuild(&self, hall: Uuid) -> AppResult<()> {
        let mut conn = self.pool.acquire().await?;
        store::lock_hall_queue(&mut conn, hall).await?;
        let result = async {
            let waiting = store::waiting_tickets(&mut conn, hall).await?;
            let seq = store::max_call_seq(&mut conn, hall).await?;
            let entries: Vec<hot::Entry> = waiting.iter().map(entry_of).collect();
            self.hot.rebuild(hall, &entries, seq).await?;
            tracing::info!(%hall, tickets = entries.len(), "hot queue rebuilt from PostgreSQL");
            Ok::<_, AppError>(())
        }
        .await;
        store::unlock_hall_queue(&mut conn, hall).await?;
        result
    }

    /// Waiting counts per category of a hall (every category, zero included): from the hot
    /// queue, or from PostgreSQL while it is not loaded.
    /// Waiting tickets per category: from Redis, else from the record (a connection is taken
    /// only then: a call's board update does not wait for a second one).
    pub(crate) async fn counts(&self, hall: &HallRow) -> AppResult<BTreeMap<String, i32>> {
        let mut out: BTreeMap<String, i32> = hall
            .categories
            .iter()
            .map(|c| (c.code.clone(), 0))
            .collect();
        let hot = match self.hot.counts(hall.id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "waiting counts from PostgreSQL");
                None
            }
        };
        let counts: Vec<(String, i64)> = match hot {
            Some(c) => c.into_iter().collect(),
            None => {
                let mut conn = self.pool.acquire().await?;
                store::waiting_counts(&mut conn, hall.id).await?
            }
        };
        for (c, n) in counts {
            out.insert(c, n as i32);
        }
        Ok(out)
    }

    /// Tells every board of the hall (on every replica, through Redis); never fails the caller.
    pub async fn announce(
        &self,
        hall: &HallRow,
        kind: pb::watch_board_response::Kind,
        number: &str,
        window_code: &str,
    ) {
        let result = async {
            let waiting = self.counts(hall).await?.into_iter().collect();
            let announcement = match kind {
                pb::watch_board_response::Kind::Called
                | pb::watch_board_response::Kind::Recalled => {
                    format!("请 {number} 号到 {window_code} 窗口办理")
                }
                _ => String::new(),
            };
            let update = pb::WatchBoardResponse {
                kind: kind as i32,
                hall_id: hall.id.to_string(),
                number: number.to_string(),
                window_code: window_code.to_string(),
                announcement,
                waiting,
                time: Some(xiaoneng_kit::timestamp(self.clock.now())),
                ..Default::default()
            };
            self.hot.publish_board(update.encode_to_vec()).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "board update not published");
        }
    }

    /// A new ticket (walk-in or check-in), numbered, not yet stored: called before the caller's
    /// transaction, so no transaction waits for a second connection or holds the counter row.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn prepare(
        &self,
        hall: &HallRow,
        windows: &[WindowRow],
        matter_id: &str,
        priority: Priority,
        kind: ServiceKind,
        citizen: &str,
        case_id: &str,
        appointment: Option<Uuid>,
    ) -> AppResult<TicketRow> {
        let matter = self.matter(matter_id).await?;
        let category = domain::category_for(&hall.categories, matter_id)
            .ok_or_else(|| {
                AppError::precondition(
                    Reason::NoCategory.name(),
                    format!("no ticket category of {} takes this matter", hall.name),
                )
            })?
            .code
            .clone();
        let now = self.clock.now();
        let day = now.with_timezone(&cst()).date_naive();
        let mut t = TicketRow {
            id: Uuid::now_v7(),
            hall_id: hall.id,
            region_code: hall.region_code.clone(),
            day,
            number: String::new(),
            category: category.clone(),
            matter_id: matter_id.to_string(),
            matter_name: matter.name,
            department: matter.department,
            window_codes: matter.window_codes,
            priority: priority.rank(),
            service_kind: kind.name().to_string(),
            state: TicketState::Waiting,
            arrival_at: now,
            arrival_ms: now.timestamp_millis(),
            window_id: None,
            window_code: String::new(),
            staff_id: String::new(),
            called_at: None,
            started_at: None,
            finished_at: None,
            no_shows: 0,
            recalls: 0,
            call_seq: None,
            case_id: case_id.to_string(),
            citizen_id: citizen.to_string(),
            appointment_id: appointment,
            direct_window: None,
        };
        if eligible_codes(windows, &t).is_empty() {
            return Err(AppError::precondition(
                Reason::NoWindow.name(),
                format!(
                    "no window of {} serves 「{}」 of this kind",
                    hall.name, t.matter_name
                ),
            ));
        }
        // Numbered in its own short transaction: the counter row is not held while the ticket
        // commits (a failed issue leaves a gap in the numbers, never a duplicate).
        let n = {
            let mut c = self.pool.acquire().await?;
            store::next_number(&mut c, hall.id, &category, day).await?
        };
        t.number = domain::display_number(&category, n);
        Ok(t)
    }

    /// Stores a prepared ticket and its event in the caller's transaction.
    pub(crate) async fn persist(
        conn: &mut PgConnection,
        t: &TicketRow,
        request_id: Option<&str>,
    ) -> AppResult<TicketRow> {
        let t = store::insert_ticket(conn, t, request_id).await?;
        outbox::enqueue(conn, &events::issued(&t)?).await?;
        Ok(t)
    }

    /// After a commit: queue the ticket; a Redis failure is repaired by the next rebuild.
    pub(crate) async fn queue_after_commit(&self, t: &TicketRow) {
        if let Err(e) = self.hot.enqueue(t.hall_id, &[entry_of(t)]).await {
            tracing::warn!(error = %e, ticket = %t.id, "not queued in Redis; a rebuild will restore it");
            self.hot.invalidate(t.hall_id).await;
        }
    }

    /// Calls the best (or a named) waiting ticket to `window_id`.
    pub async fn call(
        &self,
        caller: &Caller,
        window_id: Uuid,
        named: Option<Uuid>,
    ) -> AppResult<Option<TicketRow>> {
        for _ in 0..100 {
            let mut tx = self.pool.begin().await?;
            let (w, hall) = store::lock_window(&mut tx, &caller.region, window_id).await?;
            let current = store::current_at(&mut tx, w.id).await?;
            let named_ticket = match named {
                Some(tid) => {
                    let t = store::ticket(&mut tx, Some(&caller.region), tid, true).await?;
                    if t.hall_id != hall.id {
                        return Err(AppError::invalid(
                            "ticket_id",
                            "the ticket is of another hall",
                        ));
                    }
                    Some(t)
                }
                None => None,
            };
            domain::may_call(&w, current.as_ref(), named_ticket.as_ref())?;
            let (id, seq) = match named_ticket {
                Some(t) => {
                    let tid = t.id;
                    match self
                        .hot
                        .take(hall.id, &entry_of(&t), Utc::now().timestamp_millis())
                        .await?
                    {
                        Some(seq) => (tid, seq),
                        None => {
                            drop(tx);
                            self.rebuild(hall.id).await?;
                            continue;
                        }
                    }
                }
                None => match self
                    .hot
                    .pop(
                        hall.id,
                        w.id,
                        &domain::filter(&view(&w)),
                        Utc::now().timestamp_millis(),
                    )
                    .await?
                {
                    Popped::Empty => return Ok(None),
                    Popped::Rebuild => {
                        drop(tx);
                        self.rebuild(hall.id).await?;
                        continue;
                    }
                    Popped::Ticket { id, seq } => (id, seq),
                },
            };
            // Taken from the hot queue, not yet called in the record: a crash here leaves the
            // ticket in the hall's in-flight set, and the reconciler puts it back.
            xiaoneng_kit::failpoint::hit("queue.call.after_pop");
            let Some(t) = store::mark_called(&mut tx, id, &w, self.clock.now(), seq).await? else {
                // A stale entry (the ticket moved on meanwhile): take the next one.
                tx.commit().await?;
                self.settle(hall.id, id).await;
                continue;
            };
            outbox::enqueue(
                &mut tx,
                &events::called(&t, CallAction::Called, &w.id.to_string(), &w.code)?,
            )
            .await?;
            if let Err(e) = tx.commit().await {
                // Not called after all: put it back where it was.
                let mut back = t.clone();
                back.state = TicketState::Waiting;
                self.queue_after_commit(&back).await;
                self.settle(hall.id, id).await;
                return Err(e.into());
            }
            self.settle(hall.id, id).await;
            self.announce(
                &hall,
                pb::watch_board_response::Kind::Called,
                &t.number,
                &w.code,
            )
            .await;
            return Ok(Some(t));
        }
        Err(AppError::Unavailable(
            "the queue kept changing; try again".into(),
        ))
    }

    /// The call that took `ticket` is over; a Redis failure here only leaves an in-flight
    /// entry the reconciler clears.
    pub(crate) async fn settle(&self, hall: Uuid, ticket: Uuid) {
        if let Err(e) = self.hot.settle(hall, ticket).await {
            tracing::warn!(error = %e, %ticket, "in-flight entry not cleared");
        }
    }

    /// Opens the response with the windows of the ticket's hall (for eligible windows).
    /// The hall's windows as of at most a second ago.
    pub(crate) async fn hall_windows(&self, hall: Uuid) -> AppResult<Arc<Vec<WindowRow>>> {
        if let Some((at, w)) = self.windows.lock().expect("cache lock").get(&hall) {
            if at.elapsed() < Duration::from_secs(1) {
                return Ok(w.clone());
            }
        }
        let mut conn = self.pool.acquire().await?;
        let w = Arc::new(store::windows(&mut conn, hall).await?);
        self.windows
            .lock()
            .expect("cache lock")
            .insert(hall, (Instant::now(), w.clone()));
        Ok(w)
    }

    pub fn forget_windows(&self, hall: Uuid) {
        self.windows.lock().expect("cache lock").remove(&hall);
    }

    /// Estimated waits of a hall's categories.
    pub async fn waits(
        &self,
        conn: &mut PgConnection,
        hall: &HallRow,
        windows: &[WindowRow],
    ) -> AppResult<Vec<pb::CategoryWait>> {
        let counts = self.counts(hall).await?;
        let mean = store::mean_service_secs(conn, hall.id)
            .await?
            .unwrap_or(300);
        let mut out = Vec::new();
        for c in hall.categories.iter() {
            // Windows open now that may serve a normal ticket of the category.
            let sample = |m: &str| domain::TicketView {
                matter_id: m.to_string(),
                kind: ServiceKind::Normal,
                priority: Priority::Normal,
                category: c.code.clone(),
                window_codes: Vec::new(),
            };
            let open = windows
                .iter()
                .filter(|w| w.state == WindowState::Open)
                .filter(|w| {
                    let f = domain::filter(&view(w));
                    if c.matter_ids.is_empty() {
                        f.matters.is_none() && domain::may_serve(&f, &sample("*"))
                    } else {
                        c.matter_ids
                            .iter()
                            .any(|m| domain::may_serve(&f, &sample(m)))
                    }
                })
                .count() as i64;
            let waiting = i64::from(counts.get(&c.code).copied().unwrap_or(0));
            out.push(pb::CategoryWait {
                category: c.code.clone(),
                waiting: waiting as i32,
                open_windows: open as i32,
                estimated_wait_minutes: domain::estimate_minutes(waiting, open, mean) as i32,
                mean_service_seconds: mean as i32,
            });
        }
        Ok(out)
    }
}
