//! The evaluation use cases: open invitations from consumed events (in the consumer's
//! transaction, once per occurrence), rate, follow up, advance a 差评's loop, report overdue
//! steps, count the statistics. Each write loads under its row lock, applies the domain rule,
//! saves and enqueues its events in one transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use xiaoneng_kit::auth::{Audience, Caller};
use xiaoneng_kit::calendar::{self, LiveCalendars};
use xiaoneng_kit::clock::BusinessClock;
use xiaoneng_kit::consumer::EventHandler;
use xiaoneng_kit::events::ConsumedEvent;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{outbox, AppError, AppResult};
use xiaoneng_proto::case::events::v1::CaseTransitioned;
use xiaoneng_proto::case::v1::CaseState;
use xiaoneng_proto::queue::events::v1::ServiceFinished;

use crate::domain::{
    self, Appeal, FlagKind, FlagRow, InvitationRow, Loop, LoopLimits, LoopState, NewInvitation,
    NewRating, Occurrence, RatingRow, Reason, Signals, StatRow, Step,
};
use crate::events;
use crate::store;

/// A region's rules: how long a service may be rated, and the loop's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegionRules {
    /// Calendar days after the service in which it may be rated.
    pub rating_window_days: u32,
    /// Working days for the callback, the rectification and the reply.
    pub callback_days: u32,
    pub rectify_days: u32,
    pub reply_days: u32,
    /// The level (3 to 5) an invitation is given when its window passes unrated; 0 (the
    /// default): none, it only expires.
    pub default_level_on_expiry: u32,
}

impl Default for RegionRules {
    fn default() -> Self {
        RegionRules {
            rating_window_days: 7,
            callback_days: 1,
            rectify_days: 5,
            reply_days: 1,
            default_level_on_expiry: 0,
        }
    }
}

impl RegionRules {
    pub fn limits(&self) -> LoopLimits {
        LoopLimits {
            callback_days: self.callback_days,
            rectify_days: self.rectify_days,
            reply_days: self.reply_days,
        }
    }
}

/// The rules by region code: a county's own, else its city's, else the default.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub default: RegionRules,
    pub regions: BTreeMap<String, RegionRules>,
}

impl Rules {
    pub fn for_region(&self, code: &str) -> RegionRules {
        let city = code.get(..4).map(|c| format!("{c}00")).unwrap_or_default();
        self.regions
            .get(code)
            .or_else(|| self.regions.get(&city))
            .copied()
            .unwrap_or(self.default)
    }
}

/// What every use case needs: the pool, the region rules, the live calendar, the business clock.
#[derive(Clone)]
pub struct Evaluation {
    pub pool: PgPool,
    pub rules: Rules,
    pub signals: Signals,
    pub calendars: LiveCalendars,
    pub clock: BusinessClock,
}

/// The invitation an event opens, if it opens one.
pub fn invitation_for(e: &ConsumedEvent, rules: &Rules) -> Result<Option<NewInvitation>, String> {
    let cst = xiaoneng_kit::clock::cst();
    if e.event_type == <ServiceFinished as prost::Name>::full_name() {
        let f: ServiceFinished = e.decode()?;
        let at = f
            .finish_time
            .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, t.nanos.max(0) as u32))
            .unwrap_or(e.occurred_at);
        let window = rules.for_region(&f.region_code).rating_window_days;
        return Ok(Some(NewInvitation {
            region_code: f.region_code,
            occurrence: Occurrence::OnSite,
            source_key: format!("ticket:{}", f.ticket_id),
            ticket_id: f.ticket_id,
            case_id: f.case_id,
            matter_id: f.matter_id,
            matter_name: f.matter_name,
            window_code: f.window_code,
            hall_id: f.hall_id,
            department: f.department,
            staff_id: f.staff_id,
            citizen_id: f.citizen_id,
            opened_at: at,
            rate_by: domain::rate_by(at.with_timezone(&cst).date_naive(), window),
        }));
    }
    if e.event_type == <CaseTransitioned as prost::Name>::full_name() {
        let t: CaseTransitioned = e.decode()?;
        let done = [CaseState::Delivered as i32, CaseState::Closed as i32];
        if !done.contains(&t.to_state) {
            return Ok(None);
        }
        let on = chrono::NaiveDate::parse_from_str(&t.on_date, "%Y-%m-%d")
            .unwrap_or_else(|_| e.occurred_at.with_timezone(&cst).date_naive());
        let window = rules.for_region(&t.region_code).rating_window_days;
        return Ok(Some(NewInvitation {
            region_code: t.region_code,
            occurrence: Occurrence::Online,
            source_key: format!("case:{}", t.case_id),
            ticket_id: String::new(),
            case_id: t.case_id,
            matter_id: t.matter_id,
            matter_name: t.matter_name,
            window_code: String::new(),
            hall_id: String::new(),
            department: t.handling_department,
            staff_id: t.handler,
            citizen_id: String::new(),
            opened_at: e.occurred_at,
            rate_by: domain::rate_by(on, window),
        }));
    }
    Ok(None)
}

fn is_self_rating(e: &AppError) -> bool {
    matches!(e, AppError::FailedPrecondition { reason, .. } if *reason == Reason::SelfRating.name())
}

/// The invitation of a rating, for the background passes (the region's audience).
async fn invitation_of(tx: &mut PgConnection, r: &RatingRow) -> AppResult<InvitationRow> {
    let region = RegionCode::parse(&r.region_code).map_err(anyhow::Error::msg)?;
    store::invitation(tx, &Audience::Region(region), r.invitation_id, false).await
}

/// Opens invitations from the queue's and the case service's events, once per occurrence, in
/// the consumer's transaction (which also marks the event applied).
pub struct InvitationHandler {
    pub rules: Rules,
}

impl EventHandler for InvitationHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &ConsumedEvent) -> anyhow::Result<()> {
        // The shared legal clock: a notice the case service loaded applies here too.
        if calendar::store_loaded_notice(tx, event).await? {
            return Ok(());
        }
        let Some(new) = invitation_for(event, &self.rules).map_err(anyhow::Error::msg)? else {
            return Ok(());
        };
        if let Some(row) = store::open_invitation(tx, &new).await? {
            outbox::enqueue(tx, &events::invitation_opened(&row)?).await?;
        }
        Ok(())
    }
}

impl Evaluation {
    pub async fn invitation(&self, caller: &Caller, id: Uuid) -> AppResult<InvitationRow> {
        let mut conn = self.pool.acquire().await?;
        store::invitation(&mut conn, &caller.audience(), id, false).await
    }

    /// Invitations the caller may see (a citizen their own), newest first, one page.
    pub async fn invitations(
        &self,
        caller: &Caller,
        r: &xiaoneng_proto::evaluation::v1::ListInvitationsRequest,
    ) -> AppResult<(Vec<InvitationRow>, String)> {
        let page = xiaoneng_kit::paging::PageRequest::parse(r.page_size, &r.page_token)?;
        let scope = xiaoneng_kit::region::narrow(&caller.region, &r.region_code, "region_code")?;
        let citizen = caller.acts_as_citizen().then_some(caller.subject.as_str());
        let like = scope.like_pattern();
        let filter = store::InvitationFilter {
            region_like: &like,
            citizen,
            ticket: &r.ticket_id,
            case: &r.case_id,
            hall: &r.hall_id,
            window_code: &r.window_code,
            unrated_only: r.unrated_only,
        };
        store::list_invitations(&self.pool, &filter, &page).await
    }

    /// Rates an invitation once; a 差评 opens its loop with the callback due.
    pub async fn rate(
        &self,
        caller: &Caller,
        id: Uuid,
        req: &xiaoneng_proto::evaluation::v1::SubmitRatingRequest,
    ) -> AppResult<(InvitationRow, RatingRow)> {
        let mut tx = self.pool.begin().await?;
        match self.rate_in(&mut tx, caller, id, req).await {
            Ok(out) => {
                tx.commit().await?;
                Ok(out)
            }
            Err(e) => {
                tx.rollback().await?;
                if is_self_rating(&e) {
                    let mut tx = self.pool.begin().await?;
                    self.flag_self_rating(&mut tx, caller, id).await?;
                    tx.commit().await?;
                }
                Err(e)
            }
        }
    }

    /// The refused attempt of a staff member to rate their own service, flagged for the
    /// efficiency office with its event (the attempt stores no rating).
    async fn flag_self_rating(
        &self,
        tx: &mut PgConnection,
        caller: &Caller,
        id: Uuid,
    ) -> AppResult<()> {
        let inv = store::invitation(tx, &caller.audience(), id, false).await?;
        let kind = FlagKind::SelfRating;
        let at = self.clock.now();
        if let Some(flag) =
            store::flag(tx, &inv.region_code, kind, &inv.staff_id, &[], 0, at).await?
        {
            let ev = events::flagged(flag, &inv.region_code, kind, &inv.staff_id, &[])?;
            outbox::enqueue(tx, &ev).await?;
        }
        Ok(())
    }

    /// Many ratings in one transaction, each under a savepoint of its own: a refused item
    /// rolls back to its savepoint and is reported, the others stand. A database failure
    /// fails the whole batch (nothing of it is stored).
    pub async fn rate_many(
        &self,
        caller: &Caller,
        items: &[(Uuid, &xiaoneng_proto::evaluation::v1::SubmitRatingRequest)],
    ) -> AppResult<Vec<AppResult<(InvitationRow, RatingRow)>>> {
        use sqlx::Connection as _;
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(items.len());
        for &(id, req) in items {
            let mut sp = tx.begin().await?;
            match self.rate_in(&mut sp, caller, id, req).await {
                Ok(done) => {
                    sp.commit().await?;
                    out.push(Ok(done));
                }
                Err(AppError::Internal(e)) => return Err(AppError::Internal(e)),
                Err(refused) => {
                    sp.rollback().await?;
                    if is_self_rating(&refused) {
                        self.flag_self_rating(&mut tx, caller, id).await?;
                    }
                    out.push(Err(refused));
                }
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn rate_in(
        &self,
        tx: &mut PgConnection,
        caller: &Caller,
        id: Uuid,
        req: &xiaoneng_proto::evaluation::v1::SubmitRatingRequest,
    ) -> AppResult<(InvitationRow, RatingRow)> {
        let (now, today) = (self.clock.now(), self.clock.today());
        let inv = store::invitation(tx, &caller.audience(), id, true).await?;
        let rating = NewRating::parse(req, inv.occurrence)?;
        domain::may_rate(&inv, &caller.subject, caller.acts_as_citizen(), today)?;
        let rules = self.rules.for_region(&inv.region_code);
        let cal = self
            .calendars
            .current()
            .calendars
            .for_region(&inv.region_code);
        let bad_loop = rating
            .level
            .is_bad()
            .then(|| Loop::open(rules.limits(), &cal, today));
        let row = store::insert_rating(
            tx,
            &inv,
            &rating,
            &caller.subject,
            now,
            today,
            bad_loop.as_ref(),
            false,
        )
        .await?;
        outbox::enqueue(tx, &events::rating_submitted(&inv, &row)?).await?;
        if bad_loop.is_some() {
            outbox::enqueue(
                tx,
                &events::loop_changed(&inv, &row, LoopState::Assigned, "system", today, false, "")?,
            )
            .await?;
        }
        self.signal(tx, &inv, &row).await?;
        Ok((inv, row))
    }

    /// Expires each unrated invitation whose window closed, once, giving the region's default
    /// rating where its rules name one; replicas share the work (SKIP LOCKED). Returns how
    /// many were taken.
    pub async fn expire_unrated(&self, batch: i64) -> AppResult<usize> {
        let (now, today) = (self.clock.now(), self.clock.today());
        let mut tx = self.pool.begin().await?;
        let rows = store::lock_expiring(&mut tx, today, batch).await?;
        for inv in &rows {
            let level = self
                .rules
                .for_region(&inv.region_code)
                .default_level_on_expiry;
            let Some(default) = domain::expiry(inv, level, today) else {
                continue;
            };
            let mut given = None;
            if let Some(level) = default {
                let r = NewRating::default_of(level);
                let row = store::insert_rating(
                    &mut tx,
                    inv,
                    &r,
                    "system:default",
                    now,
                    today,
                    None,
                    true,
                )
                .await?;
                outbox::enqueue(&mut tx, &events::rating_submitted(inv, &row)?).await?;
                given = Some(row.id);
            }
            store::mark_expired(&mut tx, inv.id, now).await?;
            outbox::enqueue(&mut tx, &events::invitation_expired(inv, given)?).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Flags the bursts this rating completes (from its device, of its staff member), once per
    /// subject and window, with their events; the rating itself is kept.
    async fn signal(
        &self,
        tx: &mut PgConnection,
        inv: &InvitationRow,
        r: &RatingRow,
    ) -> AppResult<()> {
        let s = self.signals;
        let (device, staff) =
            store::recent(tx, &r.device, &inv.staff_id, r.rated_at, s.window_minutes).await?;
        for kind in s.raised(device.len() as i64, staff.len() as i64) {
            let (subject, ids) = match kind {
                FlagKind::DeviceBurst => (&r.device, &device),
                FlagKind::StaffBurst | FlagKind::SelfRating => (&inv.staff_id, &staff),
            };
            let at = r.rated_at;
            if let Some(id) =
                store::flag(tx, &r.region_code, kind, subject, ids, s.window_minutes, at).await?
            {
                let ev = events::flagged(id, &r.region_code, kind, subject, ids)?;
                outbox::enqueue(tx, &ev).await?;
            }
        }
        Ok(())
    }

    /// The rated unit's appeal (申诉复核) of a rating of its region.
    pub async fn appeal(
        &self,
        caller: &Caller,
        id: Uuid,
        req: &xiaoneng_proto::evaluation::v1::AppealRatingRequest,
    ) -> AppResult<RatingRow> {
        let mut tx = self.pool.begin().await?;
        let mut r = store::rating(&mut tx, id, true).await?;
        store::invitation(&mut tx, &caller.audience(), r.invitation_id, false).await?;
        let existing = r.appeal.as_ref().map(|a| &a.0);
        let a = Appeal::lodge(
            existing,
            &req.grounds,
            &req.statement,
            &req.evidence,
            &caller.subject,
        )?;
        r.appeal = Some(sqlx::types::Json(a));
        let r = store::update_rating(&mut tx, &r).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// A supervisor's decision on an appeal; upheld takes the rating out of the statistics.
    pub async fn decide_appeal(
        &self,
        caller: &Caller,
        id: Uuid,
        uphold: bool,
        reason: &str,
    ) -> AppResult<RatingRow> {
        let mut tx = self.pool.begin().await?;
        let mut r = store::rating(&mut tx, id, true).await?;
        let inv = store::invitation(&mut tx, &caller.audience(), r.invitation_id, false).await?;
        let Some(a) = r.appeal.as_mut() else {
            return Err(AppError::precondition(
                Reason::NoPendingAppeal.name(),
                "the rating was not appealed",
            ));
        };
        a.0.decide(uphold, reason, &caller.subject)?;
        let a = a.0.clone();
        r.excluded = uphold;
        let r = store::update_rating(&mut tx, &r).await?;
        outbox::enqueue(&mut tx, &events::appeal_decided(&inv, &r, &a)?).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// Manipulation flags of a region scope, newest first.
    pub async fn flags(&self, scope: &RegionCode) -> AppResult<Vec<FlagRow>> {
        store::flags(&self.pool, &scope.like_pattern()).await
    }

    /// A rating the caller may see (through its invitation's audience).
    pub async fn rating(&self, scope: &Audience, id: Uuid) -> AppResult<RatingRow> {
        let mut conn = self.pool.acquire().await?;
        let r = store::rating(&mut conn, id, false).await?;
        store::invitation(&mut conn, scope, r.invitation_id, false).await?;
        Ok(r)
    }

    /// The one follow-up comment (追评), by whoever rated.
    pub async fn follow_up(
        &self,
        caller: &Caller,
        id: Uuid,
        comment: &str,
    ) -> AppResult<RatingRow> {
        let mut tx = self.pool.begin().await?;
        let mut r = store::rating(&mut tx, id, true).await?;
        store::invitation(&mut tx, &caller.audience(), r.invitation_id, false).await?;
        if r.rater != caller.subject {
            return Err(AppError::PermissionDenied(
                "only the rater follows up a rating".into(),
            ));
        }
        if !r.follow_up.is_empty() {
            return Err(AppError::precondition(
                Reason::FollowUpGiven.name(),
                "the one follow-up was given",
            ));
        }
        r.follow_up = comment.trim().to_string();
        let r = store::update_rating(&mut tx, &r).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// One step of a 差评's loop, with its event.
    pub async fn advance(&self, caller: &Caller, id: Uuid, step: Step) -> AppResult<RatingRow> {
        let (now, today) = (self.clock.now(), self.clock.today());
        let mut tx = self.pool.begin().await?;
        let mut r = store::rating(&mut tx, id, true).await?;
        let inv = store::invitation(&mut tx, &caller.audience(), r.invitation_id, false).await?;
        let confirming = matches!(step, Step::Confirm { .. });
        // The citizen confirms; the responsible unit takes the other steps.
        if confirming != caller.acts_as_citizen()
            && !caller
                .roles
                .iter()
                .any(|x| x == xiaoneng_kit::auth::roles::SYSTEM)
        {
            let who = if confirming {
                "the citizen who rated"
            } else {
                "the responsible unit"
            };
            return Err(AppError::PermissionDenied(format!(
                "this step is taken by {who}"
            )));
        }
        let rules = self.rules.for_region(&inv.region_code);
        let cal = self
            .calendars
            .current()
            .calendars
            .for_region(&inv.region_code);
        let Some(l) = r.bad_loop.as_mut() else {
            return Err(AppError::precondition(
                Reason::IllegalStep.name(),
                "only a 差评 has a closed loop",
            ));
        };
        let from = l.0.advance(step, rules.limits(), &cal, today, now)?;
        let r = store::update_rating(&mut tx, &r).await?;
        outbox::enqueue(
            &mut tx,
            &events::loop_changed(&inv, &r, from, &caller.subject, today, false, "")?,
        )
        .await?;
        tx.commit().await?;
        Ok(r)
    }

    /// Recomputes, in one transaction, the step deadlines of up to `batch` open loops computed
    /// under an older calendar epoch; a deadline that moves is saved and published (a
    /// `BadRatingLoopChanged` naming the notice). Returns the number taken.
    pub async fn recalendar(&self, batch: i64) -> AppResult<usize> {
        let snap = self.calendars.current();
        if snap.epoch == 0 {
            return Ok(0);
        }
        let notice = self.calendars.latest_label();
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let rows = store::lock_behind_calendar(&mut tx, snap.epoch, batch).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        for mut r in rows {
            let cal = snap.calendars.for_region(&r.region_code);
            let Some(l) = r.bad_loop.as_mut() else {
                continue;
            };
            if !l.0.recalendar(&cal) {
                continue;
            }
            let state = l.0.state;
            let r = store::update_rating(&mut tx, &r).await?;
            let inv = invitation_of(&mut tx, &r).await?;
            let ev = events::loop_changed(&inv, &r, state, "system", today, false, &notice)?;
            outbox::enqueue(&mut tx, &ev).await?;
        }
        store::set_calendar_epoch(&mut tx, &ids, snap.epoch).await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// Reminds (催办) each open loop step due today, once per deadline; replicas share the work
    /// (SKIP LOCKED). Returns how many were reminded.
    pub async fn remind_due(&self, batch: i64) -> AppResult<usize> {
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let rows = store::lock_due_today(&mut tx, today, batch).await?;
        for r in &rows {
            let inv = invitation_of(&mut tx, r).await?;
            outbox::enqueue(&mut tx, &events::loop_reminder(&inv, r, today)?).await?;
            store::mark_reminded(&mut tx, r.id, today).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Reports each open loop step past its deadline, once per deadline, the day after it;
    /// replicas share the work (SKIP LOCKED). Returns how many were reported.
    pub async fn report_overdue(&self, batch: i64) -> AppResult<usize> {
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let rows = store::lock_overdue(&mut tx, today, batch).await?;
        for r in &rows {
            let l = &r
                .bad_loop
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("loop"))?
                .0;
            let inv = invitation_of(&mut tx, r).await?;
            outbox::enqueue(
                &mut tx,
                &events::loop_changed(&inv, r, l.state, "system", today, true, "")?,
            )
            .await?;
            store::mark_overdue(&mut tx, r.id, l.step_due.unwrap_or(today)).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Statistics of `scope` from `from` to `to`, grouped by `dimension` (an invitation
    /// column); with `bottom`, only the bottom ranks among keys rated often enough.
    pub async fn statistics(
        &self,
        scope: &RegionCode,
        dimension: &'static str,
        (from, to): (chrono::NaiveDate, chrono::NaiveDate),
        bottom: Option<domain::Bottom>,
    ) -> AppResult<Vec<StatRow>> {
        let rows =
            store::statistics(&self.pool, &scope.like_pattern(), dimension, from, to).await?;
        Ok(match bottom {
            Some(b) => b.ranks(rows),
            None => rows,
        })
    }

    /// Public ratings of `scope` and period, one page (masked by the adapter).
    pub async fn public_ratings(
        &self,
        scope: &RegionCode,
        (from, to): (chrono::NaiveDate, chrono::NaiveDate),
        bad_only: bool,
        page: &xiaoneng_kit::paging::PageRequest,
    ) -> AppResult<(Vec<domain::PublicRow>, String)> {
        store::public_ratings(&self.pool, &scope.like_pattern(), from, to, bad_only, page).await
    }
}
