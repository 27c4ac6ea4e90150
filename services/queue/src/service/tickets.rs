//! Ticket use cases: issue a walk-in ticket, read one, and what a window does with the ticket
//! it called (recall, no-show, hold, start, finish, transfer), each under the window's lock
//! with its event in the same transaction.

use uuid::Uuid;
use xiaoneng_kit::auth::Caller;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{outbox, AppError, AppResult};
use xiaoneng_proto::queue::v1 as pb;

use super::Queue;
use crate::domain::{CallAction, HallRow, Priority, Reason, ServiceKind, TicketRow, WindowRow};
use crate::events;
use crate::store;

/// What a window does with the ticket it is on.
#[derive(Debug, Clone)]
pub enum Step {
    Recall,
    NoShow,
    Hold,
    Start,
    Finish,
    /// To another matter (its id) and/or a named window of the hall.
    Transfer {
        matter_id: Option<String>,
        to_window: Option<Uuid>,
    },
}

impl Step {
    fn action(&self) -> CallAction {
        match self {
            Step::Recall => CallAction::Recalled,
            Step::NoShow => CallAction::NoShow,
            Step::Hold => CallAction::Held,
            Step::Start => CallAction::Started,
            Step::Finish => CallAction::Finished,
            Step::Transfer { .. } => CallAction::Transferred,
        }
    }
}

/// A walk-in ticket as asked for at the kiosk.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub hall_id: Uuid,
    pub matter_id: String,
    pub priority: Priority,
    pub kind: ServiceKind,
    /// The citizen's account when staff issue for one (a citizen takes one in their own name).
    pub citizen_id: String,
    pub case_id: String,
    /// The kiosk's idempotency key: the same request again answers the same ticket.
    pub request_id: String,
}

/// An issued ticket with the wait it faces.
pub struct Issued {
    pub ticket: TicketRow,
    pub windows: std::sync::Arc<Vec<WindowRow>>,
    pub wait: Option<pb::CategoryWait>,
}

/// A citizen reads only a ticket taken in their name; staff any ticket of their region.
fn may_read(caller: &Caller, t: &TicketRow) -> AppResult<()> {
    let region = RegionCode::parse(&t.region_code)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored region: {e}")))?;
    caller
        .audience()
        .check("ticket", &t.id.to_string(), &region, &t.citizen_id)
}

impl Queue {
    /// Issues a walk-in ticket: numbered, stored with its event, then queued and announced.
    pub async fn issue(&self, caller: &Caller, r: NewTicket) -> AppResult<Issued> {
        let mut conn = self.pool.acquire().await?;
        if !r.request_id.is_empty() {
            if let Some(t) = store::ticket_by_request(&mut conn, &r.request_id).await? {
                drop(conn);
                // The same request again: answered only to whoever may read the ticket.
                may_read(caller, &t)?;
                let windows = self.hall_windows(t.hall_id).await?;
                return Ok(Issued {
                    ticket: t,
                    windows,
                    wait: None,
                });
            }
        }
        let hall = store::hall(&mut conn, Some(&caller.region), r.hall_id).await?;
        drop(conn);
        let windows = self.hall_windows(hall.id).await?;
        let citizen = if caller.acts_as_citizen() {
            caller.subject.clone()
        } else {
            r.citizen_id.clone()
        };
        let t = self
            .prepare(
                &hall,
                &windows,
                &r.matter_id,
                r.priority,
                r.kind,
                &citizen,
                &r.case_id,
                None,
            )
            .await?;
        let request_id = Some(r.request_id.as_str()).filter(|s| !s.is_empty());
        let mut tx = self.pool.begin().await?;
        let t = Queue::persist(&mut tx, &t, request_id).await?;
        tx.commit().await?;
        self.queue_after_commit(&t).await;
        self.announce(&hall, pb::watch_board_response::Kind::Counts, "", "")
            .await;
        let mut conn = self.pool.acquire().await?;
        let waits = self.waits(&mut conn, &hall, &windows).await?;
        let wait = waits.into_iter().find(|w| w.category == t.category);
        Ok(Issued {
            ticket: t,
            windows,
            wait,
        })
    }

    /// A ticket as the caller may read it.
    pub async fn ticket(&self, caller: &Caller, id: Uuid) -> AppResult<TicketRow> {
        let mut conn = self.pool.acquire().await?;
        let t = store::ticket(&mut conn, Some(&caller.region), id, false).await?;
        may_read(caller, &t)?;
        Ok(t)
    }

    /// Records the case a ticket led to.
    pub async fn link_case(
        &self,
        caller: &Caller,
        id: Uuid,
        case_id: Uuid,
    ) -> AppResult<TicketRow> {
        let mut tx = self.pool.begin().await?;
        let mut t = store::ticket(&mut tx, Some(&caller.region), id, true).await?;
        t.case_id = case_id.to_string();
        let t = store::update_ticket(&mut tx, &t).await?;
        tx.commit().await?;
        Ok(t)
    }

    /// A held ticket waits again at its original place.
    pub async fn resume(&self, caller: &Caller, id: Uuid) -> AppResult<TicketRow> {
        let mut tx = self.pool.begin().await?;
        let mut t = store::ticket(&mut tx, Some(&caller.region), id, true).await?;
        t.resume()?;
        let t = store::update_ticket(&mut tx, &t).await?;
        outbox::enqueue(&mut tx, &events::called(&t, CallAction::Resumed, "", "")?).await?;
        tx.commit().await?;
        self.queue_after_commit(&t).await;
        Ok(t)
    }

    /// Applies `step` to the ticket window `window_id` is on, under the window lock; a ticket
    /// put back waiting is queued after the commit, and the board hears of it.
    pub async fn step(&self, caller: &Caller, window_id: Uuid, step: Step) -> AppResult<TicketRow> {
        // What a transfer needs from outside the lock: the new matter's terms and the hall's
        // windows (a named target must be one of them).
        let (matter, windows) = match &step {
            Step::Transfer {
                matter_id,
                to_window,
            } => {
                let mut conn = self.pool.acquire().await?;
                let (_, hall) = store::window(&mut conn, &caller.region, window_id, false).await?;
                let windows = store::windows(&mut conn, hall.id).await?;
                drop(conn);
                if let Some(to) = to_window {
                    if !windows.iter().any(|w| w.id == *to) {
                        return Err(AppError::invalid(
                            "to_window_id",
                            "is not a window of this hall",
                        ));
                    }
                }
                let matter = match matter_id {
                    Some(m) => Some((m.clone(), self.matter(m).await?)),
                    None => None,
                };
                (matter, windows)
            }
            _ => (None, Vec::new()),
        };
        let action = step.action();
        let mut tx = self.pool.begin().await?;
        let (w, hall) = store::lock_window(&mut tx, &caller.region, window_id).await?;
        let mut t = store::current_at(&mut tx, w.id).await?.ok_or_else(|| {
            AppError::precondition(
                Reason::NoCurrentTicket.name(),
                format!("window {} has no called ticket", w.code),
            )
        })?;
        let now = self.clock.now();
        let requeue = match step {
            Step::Recall => t.recall(),
            Step::NoShow => t.no_show(now),
            Step::Hold => t.hold(),
            Step::Start => t.start(now),
            Step::Finish => t.finish(now),
            Step::Transfer { to_window, .. } => t.transfer(matter, to_window, &windows),
        }?;
        let t = store::update_ticket(&mut tx, &t).await?;
        let ev = if action == CallAction::Finished {
            events::finished(&t)?
        } else {
            events::called(&t, action, &w.id.to_string(), &w.code)?
        };
        outbox::enqueue(&mut tx, &ev).await?;
        tx.commit().await?;
        if requeue {
            self.queue_after_commit(&t).await;
        }
        self.after_step(&hall, &w, &t, action).await;
        Ok(t)
    }

    /// What the board shows after a step: a recall is called out, a no-show changes counts.
    async fn after_step(&self, hall: &HallRow, w: &WindowRow, t: &TicketRow, action: CallAction) {
        use pb::watch_board_response::Kind;
        match action {
            CallAction::Recalled => {
                self.announce(hall, Kind::Recalled, &t.number, &w.code)
                    .await
            }
            CallAction::NoShow => self.announce(hall, Kind::NoShow, &t.number, &w.code).await,
            _ => {}
        }
    }

    /// The response form of a ticket needs its hall's windows (its eligible windows).
    pub async fn with_windows(
        &self,
        t: TicketRow,
    ) -> AppResult<(TicketRow, std::sync::Arc<Vec<WindowRow>>)> {
        let w = self.hall_windows(t.hall_id).await?;
        Ok((t, w))
    }
}
