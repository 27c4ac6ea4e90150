//! The complaint use cases, shared by the gRPC and the Open311 adapters: file (merging a
//! repeat into the open complaint), read as the caller may, advance the closed loop, reopen,
//! extend, read an identity under audit, and the background passes (reminders on the due
//! day, escalation the day after). Each write loads under its row lock, applies the domain
//! rule, saves and enqueues its events in one transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use xiaoneng_kit::auth::{roles, Caller};
use xiaoneng_kit::calendar::{self, LiveCalendars};
use xiaoneng_kit::clock::BusinessClock;
use xiaoneng_kit::consumer::EventHandler;
use xiaoneng_kit::events::ConsumedEvent;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{outbox, AppError, AppResult};

use crate::domain::sight::{Facts, Reader, Sight};
use crate::domain::{
    self, Category, ComplaintRow, Filing, Identity, Limits, NewComplaint, State, Step, View,
    DISCIPLINE,
};
use crate::events::{self, Flags};
use crate::store::{self, ReadRow, Registration};
use crate::vault::Vault;

pub mod targets;

/// Limits and negative-list extensions by region: a county's own, else its city's, else the
/// defaults.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub default: Limits,
    pub regions: BTreeMap<String, Limits>,
    /// Categories a region adds to the national negative list (a county gets its city's too).
    pub categories: BTreeMap<String, Vec<Category>>,
}

fn city_of(code: &str) -> String {
    code.get(..4).map(|c| format!("{c}00")).unwrap_or_default()
}

impl Rules {
    pub fn limits(&self, code: &str) -> Limits {
        self.regions
            .get(code)
            .or_else(|| self.regions.get(&city_of(code)))
            .copied()
            .unwrap_or(self.default)
    }

    pub fn categories(&self, code: &str) -> Vec<Category> {
        let mut out = domain::national_categories();
        let city = city_of(code);
        for key in [city.as_str(), code] {
            for c in self.categories.get(key).into_iter().flatten() {
                if !out.iter().any(|x| x.code == c.code) {
                    out.push(c.clone());
                }
            }
        }
        out
    }
}

#[derive(Clone)]
pub struct Complaints {
    pub pool: PgPool,
    pub rules: Rules,
    pub vault: Arc<Vault>,
    pub calendars: LiveCalendars,
    pub clock: BusinessClock,
    pub targets: targets::Targets,
}

/// Stores the calendar notices the case service loads, so the limits follow them.
pub struct NoticeHandler;

impl EventHandler for NoticeHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &ConsumedEvent) -> anyhow::Result<()> {
        calendar::store_loaded_notice(tx, event).await?;
        Ok(())
    }
}

/// The view a caller has of complaints.
pub fn view_of(caller: &Caller) -> View {
    if caller.acts_as_citizen() {
        View::Complainant
    } else if caller.has_role(roles::INSPECTOR) {
        View::Inspector
    } else {
        View::Substance
    }
}

/// The caller's region and what they are to the complaints in it.
#[derive(Debug, Clone)]
pub struct Scope {
    pub region: RegionCode,
    pub reader: Reader,
}

/// A page of complaints and how many discipline reports the reader may only count.
pub struct Listed {
    pub rows: Vec<ComplaintRow>,
    pub next_page_token: String,
    pub discipline_reports: i64,
}

impl Complaints {
    /// Who the caller is to complaints ([`crate::domain::sight`]): a citizen by the
    /// fingerprint of their account; an inspector; the efficiency office, or a platform
    /// system without a department (the 12345 hotline); else staff of their department.
    pub fn scope(&self, caller: &Caller) -> Scope {
        let subject = caller.subject.clone();
        let reader = if caller.acts_as_citizen() {
            Reader::Citizen {
                filer: self.filer_hash(&caller.subject),
            }
        } else if caller.has_role(roles::INSPECTOR) {
            Reader::Inspector { subject }
        } else if caller.has_role(roles::SUPERVISOR)
            || (caller.has_role(roles::SYSTEM) && caller.department.is_none())
        {
            Reader::Office { subject }
        } else {
            Reader::Unit {
                subject,
                department: caller.department.clone(),
            }
        };
        Scope {
            region: caller.region.clone(),
            reader,
        }
    }

    /// Loads a complaint the scope may see, as its view reads it: NOT_FOUND outside the
    /// region or where the table hides it, PERMISSION_DENIED for another citizen's.
    async fn load(
        &self,
        conn: &mut PgConnection,
        scope: &Scope,
        id: Uuid,
        lock: bool,
    ) -> AppResult<ComplaintRow> {
        let row = store::complaint(conn, id, lock).await?;
        let region = RegionCode::parse(&row.region_code).map_err(anyhow::Error::msg)?;
        if !scope.region.contains(&region) {
            return Err(AppError::not_found("complaint", id.to_string()));
        }
        match scope.reader.sight(&Facts::from(&row)) {
            Sight::Read(view) => self.in_view(row, view),
            Sight::Hidden => Err(AppError::not_found("complaint", id.to_string())),
            Sight::NotTheirs => Err(AppError::PermissionDenied(
                "a citizen reads and acts only on their own complaint".into(),
            )),
        }
    }

    /// The row as `view` reads it: the complainant and inspectors get the filed words
    /// unsealed, everyone else the masked text the row keeps.
    fn in_view(&self, mut row: ComplaintRow, view: View) -> AppResult<ComplaintRow> {
        if matches!(view, View::Complainant | View::Inspector) {
            if let Some(s) = row.sealed_text() {
                row.description = self.vault.open_text(row.id, &s)?;
            }
        }
        Ok(row)
    }

    fn filer_hash(&self, account: &str) -> String {
        self.vault.fingerprint(&format!("account:{account}"))
    }

    fn calendar(&self, region: &str) -> xiaoneng_calendar::Calendar {
        self.calendars.current().calendars.for_region(region)
    }

    /// Files a complaint; a repeat of the same complainant, target and category within the
    /// region's window merges into the one still being handled (returned with `true`), or,
    /// once that one was replied, is a new complaint linked to it.
    pub async fn file(&self, caller: &Caller, mut f: Filing) -> AppResult<(ComplaintRow, bool)> {
        if caller.acts_as_citizen() {
            f.identity.account = caller.subject.clone();
        }
        if !f.region_code.is_empty() {
            if let Ok(r) = RegionCode::parse(&f.region_code) {
                if !caller.region.contains(&r) {
                    return Err(AppError::PermissionDenied(
                        "a complaint is filed within the caller's region".into(),
                    ));
                }
            }
        }
        let categories = self.rules.categories(&f.region_code);
        let mut n = NewComplaint::parse(f, &categories)?;
        let (now, today) = (self.clock.now(), self.clock.today());
        let owner = self
            .targets
            .check(n.target_kind, &n.target_id, &n.region_code, today)
            .await?;
        if let Some(dept) = owner.filter(|d| !d.is_empty()) {
            if n.target_department.is_empty() {
                n.target_department = dept;
            }
        }
        let limits = self.rules.limits(&n.region_code);
        let mut tx = self.pool.begin().await?;
        let (mut linked_case, mut linked_complaint) = (String::new(), String::new());
        match n.target_kind {
            domain::TargetKind::Case => linked_case = n.target_id.clone(),
            domain::TargetKind::Complaint => {
                let prev = Uuid::parse_str(&n.target_id)
                    .map_err(|_| AppError::invalid("target.id", "must be a complaint id"))?;
                let p = self.load(&mut tx, &self.scope(caller), prev, false).await?;
                linked_complaint = p.id.to_string();
                linked_case = p.linked_case_id;
            }
            _ => {}
        }
        let complainant_hash = n
            .identity
            .as_ref()
            .and_then(Identity::key)
            .map(|k| self.vault.fingerprint(&k));
        if let Some(h) = &complainant_hash {
            let key = format!("{h}|{}|{}|{}", n.target_kind, n.target_id, n.category.code);
            store::lock_merge_key(&mut tx, &key).await?;
            let since = now - chrono::Duration::days(limits.merge_window_days as i64);
            if let Some(open) = store::open_duplicate(&mut tx, h, &n, since).await? {
                let row = store::merge(&mut tx, open.id, &n, now).await?;
                outbox::enqueue(&mut tx, &events::merged(&row)?).await?;
                tx.commit().await?;
                return Ok((self.in_view(row, view_of(caller))?, true));
            }
            if linked_complaint.is_empty() {
                if let Some(prev) = store::answered_before(&mut tx, h, &n, since).await? {
                    linked_complaint = prev.to_string();
                }
            }
        }
        let id = Uuid::now_v7();
        let sealed = match &n.identity {
            Some(i) => Some(self.vault.seal(id, i)?),
            None => None,
        };
        let text = self.vault.seal_text(id, &n.description)?;
        let filer = n
            .identity
            .as_ref()
            .filter(|i| !i.account.is_empty())
            .map(|i| self.filer_hash(&i.account))
            .unwrap_or_default();
        let discipline = n.to_discipline();
        let cal = self.calendar(&n.region_code);
        let reg = Registration {
            id,
            state: if discipline {
                State::Assigned
            } else {
                State::Registered
            },
            assigned_to: if discipline { DISCIPLINE } else { "" },
            started_on: today,
            due_on: domain::due(&cal, today, limits.days(n.kind, n.fast_track)),
            filed_at: now,
            filer_hash: &filer,
            complainant_hash: complainant_hash.as_deref(),
            sealed: sealed.as_ref(),
            text: Some(&text),
            linked_case_id: &linked_case,
            linked_complaint_id: &linked_complaint,
        };
        let row = store::insert(&mut tx, &n, &reg).await?;
        outbox::enqueue(&mut tx, &events::filed(&row)?).await?;
        if discipline {
            let ev = events::step(&row, State::Registered, "system", today, Flags::default())?;
            outbox::enqueue(&mut tx, &ev).await?;
        }
        tx.commit().await?;
        Ok((self.in_view(row, view_of(caller))?, false))
    }

    pub async fn get(&self, caller: &Caller, id: Uuid) -> AppResult<ComplaintRow> {
        self.get_in(&self.scope(caller), id).await
    }

    pub async fn get_in(&self, scope: &Scope, id: Uuid) -> AppResult<ComplaintRow> {
        let mut conn = self.pool.acquire().await?;
        self.load(&mut conn, scope, id, false).await
    }

    pub async fn list(
        &self,
        caller: &Caller,
        region: &str,
        state: Option<State>,
        page: &xiaoneng_kit::paging::PageRequest,
    ) -> AppResult<Listed> {
        self.list_in(&self.scope(caller), region, state, page).await
    }

    /// One page of what the scope may see in `region` (empty: the scope's own), and, for the
    /// efficiency office, the count of discipline reports it may not read.
    pub async fn list_in(
        &self,
        scope: &Scope,
        region: &str,
        state: Option<State>,
        page: &xiaoneng_kit::paging::PageRequest,
    ) -> AppResult<Listed> {
        let narrowed = xiaoneng_kit::region::narrow(&scope.region, region, "region_code")?;
        let like = narrowed.like_pattern();
        let filter = scope.reader.filter();
        let (rows, next_page_token) = store::list(&self.pool, &like, &filter, state, page).await?;
        let rows = rows
            .into_iter()
            .map(|row| match scope.reader.sight(&Facts::from(&row)) {
                Sight::Read(view) => self.in_view(row, view),
                _ => Err(AppError::Internal(anyhow::anyhow!(
                    "a listed complaint the reader may not see"
                ))),
            })
            .collect::<AppResult<Vec<_>>>()?;
        let discipline_reports = if scope.reader.counts_discipline() {
            store::count_discipline(&self.pool, &like, state).await?
        } else {
            0
        };
        Ok(Listed {
            rows,
            next_page_token,
            discipline_reports,
        })
    }

    /// One step of the loop, with its events (a conclusion and a callback have their own).
    pub async fn advance(
        &self,
        caller: &Caller,
        id: Uuid,
        step: Step,
        expected_version: i64,
    ) -> AppResult<ComplaintRow> {
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let mut c = self.load(&mut tx, &self.scope(caller), id, true).await?;
        if expected_version != 0 && expected_version != c.version {
            return Err(AppError::Aborted(format!(
                "the complaint is at version {}, not {expected_version}",
                c.version
            )));
        }
        let from = c.advance(step, caller.has_role(roles::INSPECTOR))?;
        c.updated_at = self.clock.now();
        let c = store::update(&mut tx, &c).await?;
        let ev = events::step(&c, from, &caller.subject, today, Flags::default())?;
        outbox::enqueue(&mut tx, &ev).await?;
        match c.state {
            State::Concluded => outbox::enqueue(&mut tx, &events::concluded(&c)?).await?,
            State::CalledBack => outbox::enqueue(&mut tx, &events::callback(&c)?).await?,
            _ => {}
        }
        tx.commit().await?;
        Ok(c)
    }

    /// The complainant (or the hotline on their behalf) reopens once.
    pub async fn reopen(&self, caller: &Caller, id: Uuid, reason: &str) -> AppResult<ComplaintRow> {
        if reason.trim().is_empty() {
            return Err(AppError::invalid("reason", "a reopening needs its reason"));
        }
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let mut c = self.load(&mut tx, &self.scope(caller), id, true).await?;
        let limits = self.rules.limits(&c.region_code);
        let from = c.reopen(&limits, &self.calendar(&c.region_code), today)?;
        c.updated_at = self.clock.now();
        let c = store::update(&mut tx, &c).await?;
        let flags = Flags {
            reopened: true,
            ..Default::default()
        };
        outbox::enqueue(
            &mut tx,
            &events::step(&c, from, &caller.subject, today, flags)?,
        )
        .await?;
        tx.commit().await?;
        Ok(c)
    }

    /// Extends the running deadline once, with a reason.
    pub async fn extend(&self, caller: &Caller, id: Uuid, reason: &str) -> AppResult<ComplaintRow> {
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let mut c = self.load(&mut tx, &self.scope(caller), id, true).await?;
        let limits = self.rules.limits(&c.region_code);
        c.extend(reason, &limits, &self.calendar(&c.region_code))?;
        c.updated_at = self.clock.now();
        let c = store::update(&mut tx, &c).await?;
        let flags = Flags {
            extended: true,
            ..Default::default()
        };
        outbox::enqueue(
            &mut tx,
            &events::step(&c, c.state, &caller.subject, today, flags)?,
        )
        .await?;
        tx.commit().await?;
        Ok(c)
    }

    /// The inspector's read of the identity, audited in the same transaction (also when the
    /// complaint is anonymous: the attempt is on record).
    pub async fn reveal(
        &self,
        caller: &Caller,
        id: Uuid,
        purpose: &str,
    ) -> AppResult<Option<Identity>> {
        let purpose = purpose.trim();
        if purpose.chars().count() < 4 {
            return Err(AppError::invalid(
                "purpose",
                "state why the identity is needed (at least 4 characters)",
            ));
        }
        let mut tx = self.pool.begin().await?;
        let c = self.load(&mut tx, &self.scope(caller), id, false).await?;
        store::audit_read(&mut tx, &c, &caller.subject, purpose, self.clock.now()).await?;
        let identity = match store::sealed(&mut tx, id).await? {
            Some(s) => Some(self.vault.open(id, &s)?),
            None => None,
        };
        tx.commit().await?;
        tracing::info!(complaint = %id, reader = %caller.subject, "complainant identity read (audited)");
        Ok(identity)
    }

    pub async fn reads(
        &self,
        scope: &RegionCode,
        complaint: Option<Uuid>,
    ) -> AppResult<Vec<ReadRow>> {
        store::reads(&self.pool, &scope.like_pattern(), complaint).await
    }

    /// Reminds (催办) each running complaint due today, once per deadline; replicas share the
    /// work (SKIP LOCKED).
    pub async fn remind_due(&self, batch: i64) -> AppResult<usize> {
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let rows = store::lock_due_today(&mut tx, today, batch).await?;
        for c in &rows {
            let flags = Flags {
                reminder: true,
                ..Default::default()
            };
            outbox::enqueue(&mut tx, &events::step(c, c.state, "system", today, flags)?).await?;
            store::mark_reminded(&mut tx, c.id, today).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Escalates to the efficiency office each running complaint past its deadline, once per
    /// deadline, the day after it; replicas share the work (SKIP LOCKED).
    pub async fn escalate_overdue(&self, batch: i64) -> AppResult<usize> {
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let rows = store::lock_overdue(&mut tx, today, batch).await?;
        for c in &rows {
            let mut c = c.clone();
            c.escalated = true;
            let flags = Flags {
                overdue: true,
                escalated: true,
                ..Default::default()
            };
            outbox::enqueue(&mut tx, &events::step(&c, c.state, "system", today, flags)?).await?;
            store::mark_escalated(&mut tx, c.id, c.due_on.unwrap_or(today)).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }
}
