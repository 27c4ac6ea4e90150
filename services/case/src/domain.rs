//! Pure rules of a case (办件): the lifecycle state machine, the one-time notice (一次性告知)
//! and its violation, deemed acceptance (行政许可法 art. 32), 容缺受理, parallel review
//! (并联审批) and escalation of the legal clock. No I/O: the store and the API build on these.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use xiaoneng_calendar::{Calendar, Clock, Pause};
use xiaoneng_kit::clock::cst;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{AppError, AppResult, Violations};

xiaoneng_kit::named_enum! {
    /// The reasons a client switches on: `ErrorInfo.reason` of a FAILED_PRECONDITION from this
    /// service (listed in the service's proto comment).
    pub enum Reason {
        /// The one extension was already granted.
        AlreadyExtended = "ALREADY_EXTENDED",
        /// The legal clock does not allow it (not paused, already paused).
        Clock = "CLOCK",
        /// The case's state does not allow the action.
        IllegalTransition = "ILLEGAL_TRANSITION",
        /// The inquiry already led to a case.
        InquiryUsed = "INQUIRY_USED",
        /// The case was never accepted.
        NotAccepted = "NOT_ACCEPTED",
        /// The referral must stay inside the region.
        NotCrossRegion = "NOT_CROSS_REGION",
    }
}

xiaoneng_kit::named_enum! {
    /// Where a case stands. Stored, serialised and published by its name (the names the first
    /// release stored, kept as they are), never by the Rust variant's name.
    pub enum State {
        Submitted = "Submitted",
        PreReview = "PreReview",
        CorrectionRequested = "CorrectionRequested",
        Accepted = "Accepted",
        NotAccepted = "NotAccepted",
        InReview = "InReview",
        Approved = "Approved",
        Denied = "Denied",
        CertificateIssued = "CertificateIssued",
        Delivered = "Delivered",
        Closed = "Closed",
        Withdrawn = "Withdrawn",
        /// 容缺 materials did not arrive in time: the case went back to the applicant.
        Returned = "Returned",
        Suspended = "Suspended",
    }
}

impl State {
    /// The value the API and the events carry.
    pub fn wire(self) -> xiaoneng_proto::case::v1::CaseState {
        use xiaoneng_proto::case::v1::CaseState as W;
        match self {
            State::Submitted => W::Submitted,
            State::PreReview => W::PreReview,
            State::CorrectionRequested => W::CorrectionRequested,
            State::Accepted => W::Accepted,
            State::NotAccepted => W::NotAccepted,
            State::InReview => W::InReview,
            State::Approved => W::Approved,
            State::Denied => W::Denied,
            State::CertificateIssued => W::CertificateIssued,
            State::Delivered => W::Delivered,
            State::Closed => W::Closed,
            State::Withdrawn => W::Withdrawn,
            State::Returned => W::Returned,
            State::Suspended => W::Suspended,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::NotAccepted | State::Closed | State::Withdrawn | State::Returned
        )
    }
}

/// What someone asks to happen to a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    StartPreReview,
    /// 一次性告知: every missing or defective material at once.
    RequestCorrection {
        materials: Vec<String>,
    },
    /// The applicant answered a correction request.
    SupplyMaterials,
    Accept,
    /// 行政许可法 art. 32: no notice within 5 working days — accepted whatever is missing.
    DeemAccept,
    Refuse {
        reason: String,
    },
    /// Review by one or more departments (several run in parallel: 并联审批).
    StartReview {
        departments: Vec<String>,
    },
    /// One department's conclusion.
    ConcludeStep {
        department: String,
        approve: bool,
        reason: String,
    },
    IssueCertificate,
    Deliver,
    Close,
    Withdraw,
    Suspend {
        reason: String,
    },
    Resume,
    /// 容缺 materials overdue.
    Return,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::StartPreReview => "start_pre_review",
            Action::RequestCorrection { .. } => "request_correction",
            Action::SupplyMaterials => "supply_materials",
            Action::Accept => "accept",
            Action::DeemAccept => "deemed_accept",
            Action::Refuse { .. } => "refuse",
            Action::StartReview { .. } => "start_review",
            Action::ConcludeStep { .. } => "conclude_step",
            Action::IssueCertificate => "issue_certificate",
            Action::Deliver => "deliver",
            Action::Close => "close",
            Action::Withdraw => "withdraw",
            Action::Suspend { .. } => "suspend",
            Action::Resume => "resume",
            Action::Return => "return",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The action is not allowed in this state (→ FAILED_PRECONDITION).
    #[error("cannot {action} a case that is {state:?}")]
    IllegalTransition { state: State, action: &'static str },
    /// The action's own content is wrong (→ INVALID_ARGUMENT on `field`).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> RuleError {
    RuleError::Invalid {
        field,
        message: message.into(),
    }
}

/// The part of a case the rules look at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Case {
    pub state: State,
    /// Materials the matter version lists (name → key or not).
    pub matter_materials: BTreeMap<String, bool>,
    /// Materials the applicant has handed in so far.
    pub supplied: BTreeSet<String>,
    /// One-time notices given, in order, each with what was missing when it was given.
    pub notices: Vec<Notice>,
    /// Departments reviewing and their conclusions (None: still open).
    pub review: BTreeMap<String, Option<(bool, String)>>,
    /// The state a suspension interrupted.
    pub suspended_from: Option<State>,
    pub denial_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notice {
    pub materials: Vec<String>,
    /// Required materials not supplied when the notice was given.
    pub missing_then: BTreeSet<String>,
}

/// What a transition produced besides the new state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effects {
    /// Materials a second notice named although the first could have (一次性告知 violation).
    pub notice_violation: Vec<String>,
    /// The case left review: every department concluded.
    pub review_finished: bool,
}

impl Case {
    pub fn new(matter_materials: BTreeMap<String, bool>, supplied: BTreeSet<String>) -> Self {
        Case {
            state: State::Submitted,
            matter_materials,
            supplied,
            notices: Vec::new(),
            review: BTreeMap::new(),
            suspended_from: None,
            denial_reason: None,
        }
    }

    /// Required materials (all the matter lists) not yet supplied.
    pub fn missing(&self) -> BTreeSet<String> {
        self.matter_materials
            .keys()
            .filter(|m| !self.supplied.contains(*m))
            .cloned()
            .collect()
    }

    /// Applies `action`; on error nothing changed.
    pub fn apply(&mut self, action: &Action) -> Result<Effects, RuleError> {
        use State::*;
        let illegal = || RuleError::IllegalTransition {
            state: self.state,
            action: action.name(),
        };
        let mut effects = Effects::default();
        let next = match (self.state, action) {
            (Submitted, Action::StartPreReview) => PreReview,
            (Submitted | PreReview, Action::RequestCorrection { materials }) => {
                if materials.is_empty() {
                    return Err(invalid(
                        "materials",
                        "a correction notice must name at least one material",
                    ));
                }
                let mut seen = BTreeSet::new();
                for m in materials {
                    if !self.matter_materials.contains_key(m) {
                        return Err(invalid(
                            "materials",
                            format!("{m:?} is not a material of this matter"),
                        ));
                    }
                    if !seen.insert(m) {
                        return Err(invalid("materials", format!("{m:?} is named twice")));
                    }
                }
                effects.notice_violation = self.second_notice_violation(materials);
                self.notices.push(Notice {
                    materials: materials.clone(),
                    missing_then: self.missing(),
                });
                CorrectionRequested
            }
            (CorrectionRequested, Action::SupplyMaterials) => PreReview,
            (Submitted | PreReview, Action::Accept) => {
                let key_missing: Vec<_> = self
                    .missing()
                    .into_iter()
                    .filter(|m| self.matter_materials.get(m) == Some(&true))
                    .collect();
                if !key_missing.is_empty() {
                    return Err(invalid(
                        "materials",
                        format!(
                            "key materials can never be missing: {}",
                            key_missing.join(", ")
                        ),
                    ));
                }
                Accepted
            }
            (Submitted | PreReview, Action::DeemAccept) if self.notices.is_empty() => Accepted,
            (Submitted | PreReview | CorrectionRequested, Action::Refuse { reason }) => {
                if reason.trim().is_empty() {
                    return Err(invalid("reason", "a refusal needs its reason"));
                }
                NotAccepted
            }
            (Accepted, Action::StartReview { departments }) => {
                if departments.is_empty() {
                    return Err(invalid(
                        "departments",
                        "review needs at least one department",
                    ));
                }
                let review: BTreeMap<_, _> =
                    departments.iter().map(|d| (d.clone(), None)).collect();
                if review.len() != departments.len() {
                    return Err(invalid("departments", "a department is named twice"));
                }
                self.review = review;
                InReview
            }
            (
                InReview,
                Action::ConcludeStep {
                    department,
                    approve,
                    reason,
                },
            ) => {
                match self.review.get(department) {
                    None => {
                        return Err(invalid(
                            "department",
                            format!("{department:?} is not reviewing this case"),
                        ))
                    }
                    Some(Some(_)) => return Err(illegal()),
                    Some(None) => {}
                }
                if !approve && reason.trim().is_empty() {
                    return Err(invalid("reason", "a denial needs its reason"));
                }
                self.review
                    .insert(department.clone(), Some((*approve, reason.clone())));
                if self.review.values().all(Option::is_some) {
                    effects.review_finished = true;
                    // 并联审批: one denial denies the case, with its reason.
                    match self.review.values().flatten().find(|(ok, _)| !ok) {
                        Some((_, why)) => {
                            self.denial_reason = Some(why.clone());
                            Denied
                        }
                        None => Approved,
                    }
                } else {
                    InReview
                }
            }
            (Approved, Action::IssueCertificate) => CertificateIssued,
            (CertificateIssued, Action::Deliver) => Delivered,
            (Delivered | Denied, Action::Close) => Closed,
            (s, Action::Withdraw)
                if !s.is_final()
                    && !matches!(s, Approved | Denied | CertificateIssued | Delivered) =>
            {
                Withdrawn
            }
            (s, Action::Suspend { reason }) if matches!(s, Accepted | InReview) => {
                if reason.trim().is_empty() {
                    return Err(invalid("reason", "a suspension needs its reason"));
                }
                self.suspended_from = Some(s);
                Suspended
            }
            (Suspended, Action::Resume) => self.suspended_from.take().ok_or_else(illegal)?,
            (Accepted | InReview | Suspended, Action::Return) => Returned,
            _ => return Err(illegal()),
        };
        self.state = next;
        Ok(effects)
    }

    /// Materials named now that an earlier notice left out although they were missing then.
    fn second_notice_violation(&self, materials: &[String]) -> Vec<String> {
        let Some(first) = self.notices.first() else {
            return Vec::new();
        };
        let named_before: BTreeSet<&String> =
            self.notices.iter().flat_map(|n| &n.materials).collect();
        materials
            .iter()
            .filter(|m| first.missing_then.contains(*m) && !named_before.contains(m))
            .cloned()
            .collect()
    }
}

/// 行政许可法 art. 32: without a notice within 5 working days of submission the application
/// counts as accepted on its submission date. Returns that date when it applies on `today`.
pub fn deemed_acceptance(
    cal: &Calendar,
    submitted_on: NaiveDate,
    first_notice_on: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let limit = cal.add_working_days(submitted_on, 5);
    let noticed_in_time = first_notice_on.is_some_and(|d| d <= limit);
    (!noticed_in_time && today > limit).then_some(submitted_on)
}

/// 容缺受理: the missing materials allowed on a commitment — none of them key.
pub fn check_tolerated(
    case: &Case,
    due: NaiveDate,
    accepted_on: NaiveDate,
) -> Result<Vec<String>, RuleError> {
    let missing: Vec<String> = case.missing().into_iter().collect();
    if let Some(key) = missing
        .iter()
        .find(|m| case.matter_materials.get(*m) == Some(&true))
    {
        return Err(invalid(
            "materials",
            format!("{key} is a key material and cannot be missing under 容缺受理"),
        ));
    }
    if due <= accepted_on {
        return Err(invalid("due_date", "must be after the acceptance date"));
    }
    Ok(missing)
}

/// How far a running limit has escalated (电子监察).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Escalation {
    OnTime,
    /// Within `warn_days` working days of the deadline.
    Warning,
    /// Past the deadline.
    Yellow,
    /// More than `red_after_days` working days past the deadline.
    Red,
}

/// The escalation of `clock` on `today`.
pub fn escalation(
    cal: &Calendar,
    clock: &Clock,
    today: NaiveDate,
    warn_days: u32,
    red_after_days: u32,
) -> Escalation {
    let remaining = clock.remaining(cal, today);
    if clock.is_overdue(cal, today) {
        let deadline = clock.deadline(cal, today);
        if cal.working_days_between(deadline, today) > red_after_days {
            Escalation::Red
        } else {
            Escalation::Yellow
        }
    } else if remaining <= i64::from(warn_days) {
        Escalation::Warning
    } else {
        Escalation::OnTime
    }
}

impl Escalation {
    pub fn name(self) -> &'static str {
        match self {
            Escalation::OnTime => "on_time",
            Escalation::Warning => "warning",
            Escalation::Yellow => "yellow_card",
            Escalation::Red => "red_card",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        [Escalation::Warning, Escalation::Yellow, Escalation::Red]
            .into_iter()
            .find(|e| e.name() == s)
    }
}

/// The first date each escalation level is reached, so timers fire from an index of due dates
/// instead of scanning every open case. Walks the days with [`escalation`] itself, so a timer
/// never disagrees with the rule. Valid while the clock is not paused (a paused clock has no
/// due dates: its timers are withdrawn until it resumes).
pub fn escalation_dates(
    cal: &Calendar,
    clock: &Clock,
    warn_days: u32,
    red_after_days: u32,
) -> Vec<(Escalation, NaiveDate)> {
    let mut out = Vec::with_capacity(3);
    let mut day = clock.start;
    // Bounded: a limit of a few hundred working days is reached within a few years.
    let last = clock.start + chrono::Duration::days(3 * 366);
    let mut reached = Escalation::OnTime;
    while day <= last && reached < Escalation::Red {
        let level = escalation(cal, clock, day, warn_days, red_after_days);
        for l in [Escalation::Warning, Escalation::Yellow, Escalation::Red] {
            if l > reached && l <= level {
                out.push((l, day));
            }
        }
        reached = reached.max(level);
        day += chrono::Duration::days(1);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The case file: the aggregate as stored (the rule state above, the body, the dated columns).

/// The stored body of a case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseRecord {
    pub case: Case,
    pub applicant_name: String,
    pub applicant_phone: String,
    pub agent_name: String,
    pub notices: Vec<NoticeMeta>,
    pub tolerated: Vec<String>,
    /// Stops of the legal clock (suspensions).
    #[serde(default)]
    pub pauses: Vec<xiaoneng_calendar::Pause>,
    /// Working days added by the one extension.
    #[serde(default)]
    pub extension: u32,
    #[serde(default)]
    pub decided_on: Option<NaiveDate>,
    #[serde(default)]
    pub certificate_number: String,
    #[serde(default)]
    pub delivery_method: String,
    /// The matter's steps and their limits (working days), kept from submission.
    #[serde(default)]
    pub steps: Vec<(String, u32)>,
    /// The matter step whose limit each review step has, and when review started.
    #[serde(default)]
    pub review_step: Option<(String, u32)>,
    #[serde(default)]
    pub review_started_on: Option<NaiveDate>,
    /// 首问负责: where the case is handled now and how it got there.
    #[serde(default)]
    pub handling_department: String,
    #[serde(default)]
    pub handler: String,
    #[serde(default)]
    pub referrals: Vec<Referral>,
    /// 联办 / 督办.
    #[serde(default)]
    pub joint: bool,
    #[serde(default)]
    pub supervised: bool,
    /// 代办 or 帮办 when an agent acts for the applicant.
    #[serde(default)]
    pub agent_kind: String,
    #[serde(default)]
    pub deemed_accepted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Referral {
    pub from_department: String,
    pub to_department: String,
    pub handler: String,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

impl CaseRecord {
    /// 容缺 materials still outstanding.
    pub fn tolerated_outstanding(&self) -> Vec<String> {
        self.tolerated
            .iter()
            .filter(|m| !self.case.supplied.contains(*m))
            .cloned()
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoticeMeta {
    pub reason: String,
    pub at: DateTime<Utc>,
    pub violation: Vec<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseRow {
    pub id: Uuid,
    pub region_code: String,
    pub matter_id: Uuid,
    pub matter_version: i32,
    pub matter_name: String,
    pub version: i64,
    pub body: sqlx::types::Json<CaseRecord>,
    pub promised_limit: i32,
    pub statutory_limit: i32,
    pub first_responsible: String,
    pub submitted_on: NaiveDate,
    pub accepted_on: Option<NaiveDate>,
    pub promised_deadline: Option<NaiveDate>,
    pub statutory_deadline: Option<NaiveDate>,
    pub tolerance_due: Option<NaiveDate>,
    /// The applicant's citizen account ('' when the applicant has none).
    pub applicant_citizen_id: String,
    /// The calendar epoch the deadlines were last computed under.
    pub calendar_epoch: i64,
    /// A deadline falls past the calendar's official coverage (counted Monday–Friday).
    pub provisional: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub actor: String,
    pub actor_role: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A new case as inserted.
pub struct NewCase {
    pub region: RegionCode,
    pub matter_id: Uuid,
    pub matter_version: i32,
    pub matter_name: String,
    pub promised_limit: i32,
    pub statutory_limit: i32,
    pub record: CaseRecord,
    pub first_responsible: String,
    /// Who submitted: the first-responsible, or an agent acting for the applicant.
    pub actor: String,
    pub actor_role: String,
    pub submitted_on: NaiveDate,
    /// The applicant's citizen account ('' when the applicant has none).
    pub applicant_citizen_id: String,
}

/// An application as the API parsed it; the matter's terms and the reception complete it
/// into a [`NewCase`].
pub struct Application {
    pub region: RegionCode,
    pub matter_id: Uuid,
    pub applicant_name: String,
    pub applicant_phone: String,
    pub agent_name: String,
    /// 代办 or 帮办 when an agent acts, else empty.
    pub agent_kind: String,
    /// The applicant's citizen account ('' when the applicant has none).
    pub applicant_citizen_id: String,
    pub supplied: Vec<String>,
    /// The inquiry (咨询) the application follows, whose first-responsible it keeps.
    pub inquiry: Option<Uuid>,
    pub actor: String,
    pub actor_role: String,
}

/// The terms of the matter version in force that a case keeps for its whole life.
pub struct Terms {
    pub version: i32,
    /// The region that handles the matter.
    pub region_code: String,
    pub name: String,
    pub cross_region: bool,
    /// Every material: (name, required, key).
    pub materials: Vec<(String, bool, bool)>,
    /// Steps and their limits in working days (0: none).
    pub steps: Vec<(String, u32)>,
    pub promised_limit: i32,
    pub statutory_limit: i32,
}

/// 首问负责: who received the citizen first, and where the case is handled from the start.
pub struct Reception {
    pub first_responsible: String,
    pub handling_department: String,
    pub handler: String,
}

impl NewCase {
    /// The case an application opens under `terms` on `today`: a matter of another region
    /// only when it is 通办; supplied materials only those the matter lists.
    pub fn open(
        app: Application,
        terms: &Terms,
        reception: Reception,
        today: NaiveDate,
    ) -> AppResult<NewCase> {
        if terms.region_code != app.region.as_str() && !terms.cross_region {
            let why = format!(
                "{} is handled in {} and is not 通办",
                terms.name, terms.region_code
            );
            return Err(AppError::precondition(Reason::NotCrossRegion.name(), why));
        }
        let mut v = Violations::new();
        for (i, m) in app.supplied.iter().enumerate() {
            let known = terms.materials.iter().any(|(name, _, _)| name == m);
            v.check(
                known,
                &format!("supplied_materials[{i}]"),
                "is not a material of this matter",
            );
        }
        v.into_result()?;
        let required = terms.materials.iter().filter(|(_, req, _)| *req);
        let required: BTreeMap<String, bool> =
            required.map(|(n, _, key)| (n.clone(), *key)).collect();
        let record = CaseRecord {
            case: Case::new(required, app.supplied.iter().cloned().collect()),
            applicant_name: app.applicant_name,
            applicant_phone: app.applicant_phone,
            agent_name: app.agent_name,
            notices: Vec::new(),
            tolerated: Vec::new(),
            pauses: Vec::new(),
            extension: 0,
            decided_on: None,
            certificate_number: String::new(),
            delivery_method: String::new(),
            steps: terms.steps.clone(),
            review_step: None,
            review_started_on: None,
            handling_department: reception.handling_department,
            handler: reception.handler,
            referrals: Vec::new(),
            joint: false,
            supervised: false,
            agent_kind: app.agent_kind,
            deemed_accepted: false,
        };
        Ok(NewCase {
            region: app.region,
            matter_id: app.matter_id,
            matter_version: terms.version,
            matter_name: terms.name.clone(),
            promised_limit: terms.promised_limit,
            statutory_limit: terms.statutory_limit,
            record,
            first_responsible: reception.first_responsible,
            actor: app.actor,
            actor_role: app.actor_role,
            submitted_on: today,
            applicant_citizen_id: app.applicant_citizen_id,
        })
    }
}

/// An escalation that fired.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FiredRow {
    pub clock: String,
    pub kind: String,
    pub deadline: Option<NaiveDate>,
    pub fired_at: DateTime<Utc>,
}

/// A citizen's inquiry (咨询): 首问负责 starts with whoever received it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InquiryRecord {
    pub citizen_name: String,
    pub question: String,
    pub first_responsible: String,
    pub handling_department: String,
    pub handler: String,
    #[serde(default)]
    pub referrals: Vec<Referral>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InquiryRow {
    pub id: Uuid,
    pub region_code: String,
    pub body: sqlx::types::Json<InquiryRecord>,
    pub created_at: DateTime<Utc>,
    pub case_id: Option<Uuid>,
}

/// One entry of a case's history.
pub struct History<'a> {
    pub action: &'a str,
    pub from: State,
    pub actor: &'a str,
    pub role: &'a str,
    pub reason: &'a str,
    pub at: DateTime<Utc>,
}

/// A date for the API and events: `YYYY-MM-DD`, empty when unset.
pub fn date(d: Option<NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The legal clock of a case file: which clocks run, what is due when, what a due timer does.

/// When escalations fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A warning when this many working days or fewer are left.
    pub warn_days: u32,
    /// A red card when a clock is more than this many working days overdue.
    pub red_after_days: u32,
}

/// 行政许可法 art. 44: the certificate within 10 working days of the decision.
pub const CERTIFICATE_DAYS: u32 = 10;
/// 行政许可法 art. 32: a notice within 5 working days, or the application counts as accepted.
pub const NOTICE_DAYS: u32 = 5;

pub const DEEMED_ACCEPTANCE: &str = "deemed_acceptance";
pub const TOLERANCE_DUE: &str = "tolerance_due";
/// The clock name of timers about the case itself (not a limit).
pub const CASE: &str = "case";

/// Pauses of the case that fall after `start`, clipped to it.
fn pauses_since(pauses: &[Pause], start: NaiveDate) -> Vec<Pause> {
    pauses
        .iter()
        .filter(|p| p.until.is_none_or(|u| u > start))
        .map(|p| Pause {
            from: p.from.max(start),
            until: p.until,
        })
        .collect()
}

/// The clocks of a case that run (or stand paused) now, by name.
pub fn running_clocks(row: &CaseRow) -> Vec<(String, Clock)> {
    let rec = &row.body;
    let state = rec.case.state;
    let mut out = Vec::new();
    if matches!(state, State::Accepted | State::InReview | State::Suspended) {
        if let Some(start) = row.accepted_on {
            let pauses = rec.pauses.clone();
            out.push((
                "promised".to_string(),
                Clock {
                    start,
                    limit: row.promised_limit.max(0) as u32,
                    extension: 0,
                    pauses: pauses.clone(),
                },
            ));
            out.push((
                "statutory".to_string(),
                Clock {
                    start,
                    limit: row.statutory_limit.max(0) as u32,
                    extension: rec.extension,
                    pauses,
                },
            ));
        }
        let reviewing =
            state == State::InReview || rec.case.suspended_from == Some(State::InReview);
        if let (true, Some((_, limit)), Some(started)) =
            (reviewing, &rec.review_step, rec.review_started_on)
        {
            for (dept, conclusion) in &rec.case.review {
                if conclusion.is_none() {
                    let clock = Clock {
                        start: started,
                        limit: *limit,
                        extension: 0,
                        pauses: pauses_since(&rec.pauses, started),
                    };
                    out.push((format!("step:{dept}"), clock));
                }
            }
        }
    }
    if state == State::Approved {
        if let Some(decided) = rec.decided_on {
            out.push((
                "certificate".to_string(),
                Clock::new(decided, CERTIFICATE_DAYS),
            ));
        }
    }
    out
}

/// One due time of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub clock: String,
    pub kind: String,
    pub on: NaiveDate,
    /// The deadline an escalation is about.
    pub deadline: Option<NaiveDate>,
    /// The deadline falls past the calendar's official coverage (counted Monday–Friday).
    pub provisional: bool,
}

/// Every timer the case should have now (fired or not): pure, from the case alone.
pub fn desired(row: &CaseRow, cal: &Calendar, policy: Policy) -> Vec<Due> {
    let rec = &row.body;
    let state = rec.case.state;
    let mut out = Vec::new();
    if matches!(state, State::Submitted | State::PreReview) && rec.case.notices.is_empty() {
        let last = cal.add_working_days(row.submitted_on, NOTICE_DAYS);
        out.push(Due {
            clock: CASE.into(),
            kind: DEEMED_ACCEPTANCE.into(),
            on: last.succ_opt().expect("date"),
            deadline: Some(last),
            provisional: !cal.covers_span(row.submitted_on, last),
        });
    }
    if let (true, Some(due)) = (
        matches!(state, State::Accepted | State::InReview | State::Suspended),
        row.tolerance_due,
    ) {
        if !rec.tolerated_outstanding().is_empty() {
            out.push(Due {
                clock: CASE.into(),
                kind: TOLERANCE_DUE.into(),
                on: due.succ_opt().expect("date"),
                deadline: Some(due),
                provisional: false,
            });
        }
    }
    for (name, clock) in running_clocks(row) {
        if clock.is_paused() {
            continue; // the clock stands still: nothing can become due until it resumes
        }
        let deadline = clock.deadline(cal, clock.start);
        for (level, on) in escalation_dates(cal, &clock, policy.warn_days, policy.red_after_days) {
            out.push(Due {
                clock: name.clone(),
                kind: level.name().into(),
                on,
                deadline: Some(deadline),
                provisional: !cal.covers_span(clock.start, deadline),
            });
        }
    }
    out
}

/// What a due timer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Fired: an escalation event, or a state change already applied to the row.
    Escalated {
        level: Escalation,
        deadline: NaiveDate,
    },
    Changed {
        action: &'static str,
        from: State,
        reason: String,
    },
    /// No longer applies as indexed (the case moved on): `sync` repairs the row.
    Stale,
}

pub fn decide(
    row: &mut CaseRow,
    cal: &Calendar,
    policy: Policy,
    clock: &str,
    kind: &str,
    today: NaiveDate,
) -> Outcome {
    let from = row.body.case.state;
    match kind {
        DEEMED_ACCEPTANCE => {
            let first_notice = row
                .body
                .notices
                .first()
                .map(|n| n.at.with_timezone(&cst()).date_naive());
            match deemed_acceptance(cal, row.submitted_on, first_notice, today) {
                Some(on) if row.body.case.apply(&Action::DeemAccept).is_ok() => {
                    row.accepted_on = Some(on);
                    row.body.deemed_accepted = true;
                    recompute_deadlines(row, cal, today);
                    Outcome::Changed {
                        action: "deemed_accept",
                        from,
                        reason: format!(
                            "{NOTICE_DAYS}个工作日内未一次性告知，自收到申请之日({on})起即为受理"
                        ),
                    }
                }
                _ => Outcome::Stale,
            }
        }
        TOLERANCE_DUE => {
            let outstanding = row.body.tolerated_outstanding();
            let overdue = row.tolerance_due.is_some_and(|d| today > d);
            if overdue && !outstanding.is_empty() && row.body.case.apply(&Action::Return).is_ok() {
                Outcome::Changed {
                    action: "return",
                    from,
                    reason: format!("容缺材料逾期未补齐: {}", outstanding.join("、")),
                }
            } else {
                Outcome::Stale
            }
        }
        level => {
            let (Some(level), Some((_, c))) = (
                Escalation::from_name(level),
                running_clocks(row).into_iter().find(|(n, _)| n == clock),
            ) else {
                return Outcome::Stale;
            };
            if c.is_paused()
                || escalation(cal, &c, today, policy.warn_days, policy.red_after_days) < level
            {
                return Outcome::Stale;
            }
            Outcome::Escalated {
                level,
                deadline: c.deadline(cal, today),
            }
        }
    }
}

/// 首问负责, for a case and an inquiry alike: the matter goes on to the referral's department
/// and handler, the referral is kept with the department it came from, and the
/// first-responsible (not touched here) never changes.
pub fn pass_on(
    department: &mut String,
    handler: &mut String,
    referrals: &mut Vec<Referral>,
    mut referral: Referral,
) {
    referral.from_department = std::mem::take(department);
    *department = referral.to_department.clone();
    *handler = referral.handler.clone();
    referrals.push(referral);
}

impl InquiryRecord {
    pub fn refer(&mut self, referral: Referral) {
        pass_on(
            &mut self.handling_department,
            &mut self.handler,
            &mut self.referrals,
            referral,
        );
    }
}

impl From<RuleError> for AppError {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::IllegalTransition { .. } => {
                AppError::precondition(Reason::IllegalTransition.name(), e.to_string())
            }
            RuleError::Invalid { field, message } => AppError::invalid(field, message),
        }
    }
}

/// The changes of a case that move its clocks or its handler; each returns the effects of
/// the change (none beyond the case itself) or refuses with the reason a client switches on.
impl CaseRow {
    fn under_the_clock(&self, what: &str) -> AppResult<()> {
        if !matches!(
            self.body.case.state,
            State::Accepted | State::InReview | State::Suspended
        ) {
            return Err(AppError::precondition(
                Reason::IllegalTransition.name(),
                format!("{what} only while the case is under the clock"),
            ));
        }
        Ok(())
    }

    /// The case's shared pause list as a clock, to pause or resume it.
    fn pause_clock(&self) -> AppResult<Clock> {
        let start = self.accepted_on.ok_or_else(|| {
            AppError::precondition(Reason::NotAccepted.name(), "the case is not accepted")
        })?;
        Ok(Clock {
            start,
            limit: 0,
            extension: 0,
            pauses: self.body.pauses.clone(),
        })
    }

    /// One extension of the statutory limit (行政许可法 art. 42): at most 10 working days
    /// when one department reviews, 15 when several review jointly.
    pub fn extend(&mut self, days: i32, cal: &Calendar, today: NaiveDate) -> AppResult<Effects> {
        self.under_the_clock("a deadline is extended")?;
        let max = if self.body.case.review.len() > 1 {
            15
        } else {
            10
        };
        if days < 1 || days > max {
            return Err(AppError::invalid(
                "days",
                format!("must be 1-{max} working days"),
            ));
        }
        let mut statutory = self.pause_clock()?;
        statutory.extension = self.body.extension;
        statutory
            .extend(days as u32)
            .map_err(|e| AppError::precondition(Reason::AlreadyExtended.name(), e.to_string()))?;
        self.body.extension = statutory.extension;
        recompute_deadlines(self, cal, today);
        Ok(Effects::default())
    }

    /// Suspends (every clock stops from `today`) or resumes (they run on) the case.
    pub fn pause(
        &mut self,
        action: &Action,
        cal: &Calendar,
        today: NaiveDate,
    ) -> AppResult<Effects> {
        let fx = self.body.case.apply(action)?;
        let mut clock = self.pause_clock()?;
        let moved = match action {
            Action::Resume => clock.resume(today),
            _ => clock.pause(today),
        };
        moved.map_err(|e| AppError::precondition(Reason::Clock.name(), e.to_string()))?;
        self.body.pauses = clock.pauses;
        recompute_deadlines(self, cal, today);
        Ok(fx)
    }

    /// 容缺 materials supplied: only outstanding ones, at least one.
    pub fn supply_tolerated(&mut self, materials: &[String]) -> AppResult<Effects> {
        self.under_the_clock("容缺 materials are supplied")?;
        let outstanding = self.body.tolerated_outstanding();
        let mut v = Violations::new();
        v.check(
            !materials.is_empty(),
            "materials",
            "name at least one material",
        );
        for (i, m) in materials.iter().enumerate() {
            v.check(
                outstanding.contains(m),
                &format!("materials[{i}]"),
                "is not an outstanding 容缺 material of this case",
            );
        }
        v.into_result()?;
        self.body.case.supplied.extend(materials.iter().cloned());
        Ok(Effects::default())
    }

    /// 首问负责: the case goes on to another department and handler; the first-responsible
    /// never changes, and the referral is kept.
    pub fn refer(&mut self, referral: Referral) -> AppResult<Effects> {
        if self.body.case.state.is_final() || self.body.case.state == State::Closed {
            return Err(AppError::precondition(
                Reason::IllegalTransition.name(),
                "a finished case is not referred",
            ));
        }
        let b = &mut *self.body;
        pass_on(
            &mut b.handling_department,
            &mut b.handler,
            &mut b.referrals,
            referral,
        );
        Ok(Effects::default())
    }
}

/// The changes of a case's file beside its state: each applies the state rule and keeps the
/// facts the rule leaves to the file (dates, notices, materials, flags).
impl CaseRow {
    /// 一次性告知: one notice names every missing material; it is dated `at`, the business
    /// time, since deemed acceptance reads the notice date against the business calendar.
    pub fn request_correction(
        &mut self,
        materials: Vec<String>,
        reason: String,
        at: DateTime<Utc>,
    ) -> AppResult<Effects> {
        let fx = self
            .body
            .case
            .apply(&Action::RequestCorrection { materials })?;
        let violation = fx.notice_violation.clone();
        self.body.notices.push(NoticeMeta {
            reason,
            at,
            violation,
        });
        Ok(fx)
    }

    /// Materials handed in after a notice: only materials the matter lists.
    pub fn supply(&mut self, materials: &[String]) -> AppResult<Effects> {
        let fx = self.body.case.apply(&Action::SupplyMaterials)?;
        let mut v = Violations::new();
        for (i, m) in materials.iter().enumerate() {
            let known = self.body.case.matter_materials.contains_key(m);
            v.check(
                known,
                &format!("materials[{i}]"),
                "is not a required material of this matter",
            );
        }
        v.into_result()?;
        self.body.case.supplied.extend(materials.iter().cloned());
        Ok(fx)
    }

    /// Acceptance on `today`. With materials missing only as 容缺受理: non-key ones, with a
    /// due date. The clocks start and the deadlines are set.
    pub fn accept(
        &mut self,
        tolerance_due: Option<NaiveDate>,
        cal: &Calendar,
        today: NaiveDate,
    ) -> AppResult<Effects> {
        let mut tolerated = Vec::new();
        if !self.body.case.missing().is_empty() {
            let due = tolerance_due.ok_or_else(|| {
                AppError::invalid(
                    "tolerance_due_date",
                    "is required when materials are missing (容缺受理)",
                )
            })?;
            tolerated = check_tolerated(&self.body.case, due, today)?;
            self.tolerance_due = Some(due);
        }
        let fx = self.body.case.apply(&Action::Accept)?;
        self.body.tolerated = tolerated;
        self.accepted_on = Some(today);
        recompute_deadlines(self, cal, today);
        Ok(fx)
    }

    /// Review by `departments` from `today`; each step has the limit of the named matter step
    /// (kept from submission), none when `step` is empty.
    pub fn start_review(
        &mut self,
        departments: Vec<String>,
        step: &str,
        today: NaiveDate,
    ) -> AppResult<Effects> {
        let step = match step {
            "" => None,
            name => Some(
                self.body
                    .steps
                    .iter()
                    .find(|(n, _)| n == name)
                    .cloned()
                    .ok_or_else(|| {
                        AppError::invalid("step", format!("{name:?} is not a step of this matter"))
                    })?,
            ),
        };
        let fx = self.body.case.apply(&Action::StartReview { departments })?;
        self.body.review_step = step.filter(|(_, limit)| *limit > 0);
        self.body.review_started_on = Some(today);
        Ok(fx)
    }

    /// One department's conclusion; the case is decided on `today` when it was the last.
    pub fn conclude(
        &mut self,
        department: String,
        approve: bool,
        reason: String,
        today: NaiveDate,
    ) -> AppResult<Effects> {
        let fx = self.body.case.apply(&Action::ConcludeStep {
            department,
            approve,
            reason,
        })?;
        if fx.review_finished {
            self.body.decided_on = Some(today);
        }
        Ok(fx)
    }

    /// The certificate (证照) with its number.
    pub fn issue_certificate(&mut self, number: &str) -> AppResult<Effects> {
        let fx = self.body.case.apply(&Action::IssueCertificate)?;
        self.body.certificate_number = number.trim().to_string();
        Ok(fx)
    }

    /// The result handed over (window, mail …).
    pub fn deliver(&mut self, method: &str) -> AppResult<Effects> {
        let fx = self.body.case.apply(&Action::Deliver)?;
        self.body.delivery_method = method.trim().to_string();
        Ok(fx)
    }

    /// 联办 / 督办 flags of a key project; no state change.
    pub fn set_flags(&mut self, joint: bool, supervised: bool) -> AppResult<Effects> {
        self.body.joint = joint;
        self.body.supervised = supervised;
        Ok(Effects::default())
    }
}

/// Sets the statutory and promised deadlines from the clocks, and whether any running clock's
/// deadline is provisional (past the calendar's official coverage).
pub fn recompute_deadlines(row: &mut CaseRow, cal: &Calendar, today: NaiveDate) {
    let mut provisional = false;
    for (name, clock) in running_clocks(row) {
        let deadline = clock.deadline(cal, today);
        provisional |= !cal.covers_span(clock.start, deadline);
        match name.as_str() {
            "promised" => row.promised_deadline = Some(deadline),
            "statutory" => row.statutory_deadline = Some(deadline),
            _ => {}
        }
    }
    row.provisional = provisional;
}

/// How a calendar change moved a case's deadlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub old_promised: Option<NaiveDate>,
    pub old_statutory: Option<NaiveDate>,
    pub was_provisional: bool,
}

/// Recomputes the deadlines of a case on a changed calendar; what moved, if anything did.
/// Only a case under its clocks has deadlines to move.
pub fn recalendar(row: &mut CaseRow, cal: &Calendar, today: NaiveDate) -> Option<Moved> {
    if !matches!(
        row.body.case.state,
        State::Accepted | State::InReview | State::Suspended | State::Approved
    ) {
        return None;
    }
    let before = Moved {
        old_promised: row.promised_deadline,
        old_statutory: row.statutory_deadline,
        was_provisional: row.provisional,
    };
    recompute_deadlines(row, cal, today);
    let same = row.promised_deadline == before.old_promised
        && row.statutory_deadline == before.old_statutory
        && row.provisional == before.was_provisional;
    (!same).then_some(before)
}

#[cfg(test)]
mod tests {

    /// The stored and published names, written out: a renamed variant fails here instead of
    /// silently changing what the database and consumers see.
    #[test]
    fn state_names_are_fixed_and_round_trip() {
        let names = [
            "Submitted",
            "PreReview",
            "CorrectionRequested",
            "Accepted",
            "NotAccepted",
            "InReview",
            "Approved",
            "Denied",
            "CertificateIssued",
            "Delivered",
            "Closed",
            "Withdrawn",
            "Returned",
            "Suspended",
        ];
        assert_eq!(
            State::ALL.iter().map(|s| s.name()).collect::<Vec<_>>(),
            names
        );
        for &s in State::ALL {
            assert_eq!(State::from_name(s.name()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
            assert_eq!(serde_json::from_str::<State>(&json).unwrap(), s);
        }
        assert_eq!(State::from_name("submitted"), None);
    }

    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// A submitted case with 申请书 (key) supplied and 场所证明 (not key) missing.
    fn submitted(promised: i32, statutory: i32, supplied: &[&str]) -> CaseRow {
        let app = Application {
            region: RegionCode::parse("410702").unwrap(),
            matter_id: Uuid::nil(),
            applicant_name: "王小明".into(),
            applicant_phone: String::new(),
            agent_name: String::new(),
            agent_kind: String::new(),
            applicant_citizen_id: String::new(),
            supplied: supplied.iter().map(|s| s.to_string()).collect(),
            inquiry: None,
            actor: "clerk".into(),
            actor_role: "clerk".into(),
        };
        let terms = Terms {
            version: 1,
            region_code: "410702".into(),
            name: "食品经营许可".into(),
            cross_region: false,
            materials: vec![
                ("申请书".into(), true, true),
                ("场所证明".into(), true, false),
            ],
            steps: vec![],
            promised_limit: promised,
            statutory_limit: statutory,
        };
        let who = Reception {
            first_responsible: "clerk".into(),
            handling_department: "SCJ".into(),
            handler: "clerk".into(),
        };
        let new = NewCase::open(app, &terms, who, day("2026-12-01")).unwrap();
        CaseRow {
            id: Uuid::nil(),
            region_code: "410702".into(),
            matter_id: new.matter_id,
            matter_version: 1,
            matter_name: new.matter_name,
            version: 1,
            body: sqlx::types::Json(new.record),
            promised_limit: promised,
            statutory_limit: statutory,
            first_responsible: new.first_responsible,
            submitted_on: new.submitted_on,
            accepted_on: None,
            promised_deadline: None,
            statutory_deadline: None,
            tolerance_due: None,
            applicant_citizen_id: String::new(),
            calendar_epoch: 0,
            provisional: false,
        }
    }

    const FABRICATED_2027: &str = "year = 2027\nversion = \"2027-test\"\nsource = \"fabricated for tests\"\n\
        fabricated = true\nholidays = [{ name = \"元旦\", from = \"2027-01-01\", to = \"2027-01-03\" }]\n";

    /// Accepted Tue 1 Dec 2026, 30 and 45 working days: Mon–Fri gives Tue 12 Jan and Tue 2 Feb
    /// 2027 (December after the 1st has 22 working days), provisional; with 1 Jan a holiday,
    /// Wed 13 Jan and Wed 3 Feb, no longer provisional; a second recompute moves nothing.
    #[test]
    fn a_deadline_past_the_calendar_is_provisional_until_its_year_is_loaded() {
        let national = xiaoneng_calendar::Calendars::national_only();
        let mut row = submitted(30, 45, &["申请书", "场所证明"]);
        row.accept(None, &national.for_region("410702"), day("2026-12-01"))
            .unwrap();
        assert_eq!(
            (row.promised_deadline, row.statutory_deadline),
            (Some(day("2027-01-12")), Some(day("2027-02-02")))
        );
        assert!(row.provisional);
        let notice = xiaoneng_calendar::Notice::parse(FABRICATED_2027).unwrap();
        let loaded = national.with_notices(&[notice]).for_region("410702");
        let moved = recalendar(&mut row, &loaded, day("2026-12-02")).expect("moved");
        assert_eq!(
            moved,
            Moved {
                old_promised: Some(day("2027-01-12")),
                old_statutory: Some(day("2027-02-02")),
                was_provisional: true
            }
        );
        assert_eq!(
            (row.promised_deadline, row.statutory_deadline),
            (Some(day("2027-01-13")), Some(day("2027-02-03")))
        );
        assert!(!row.provisional);
        assert_eq!(recalendar(&mut row, &loaded, day("2026-12-02")), None);
    }

    /// A deadline inside the covered year is never provisional; a case not yet accepted has
    /// no deadline to move.
    #[test]
    fn only_clocks_past_the_coverage_are_provisional() {
        let national = xiaoneng_calendar::Calendars::national_only().for_region("410702");
        let mut row = submitted(5, 20, &["申请书", "场所证明"]);
        assert_eq!(recalendar(&mut row, &national, day("2026-12-01")), None);
        row.accept(None, &national, day("2026-12-01")).unwrap();
        // 5 and 20 working days from Tue 1 Dec: Tue 8 Dec and Tue 29 Dec.
        assert_eq!(
            (row.promised_deadline, row.statutory_deadline),
            (Some(day("2026-12-08")), Some(day("2026-12-29")))
        );
        assert!(!row.provisional);
    }

    /// 容缺受理 through the case file: a missing non-key material needs a due date after today.
    #[test]
    fn acceptance_with_a_missing_material_needs_a_due_date() {
        let cal = xiaoneng_calendar::Calendars::national_only().for_region("410702");
        let mut row = submitted(5, 20, &["申请书"]);
        let err = row
            .clone()
            .accept(None, &cal, day("2026-12-01"))
            .unwrap_err();
        assert!(
            matches!(err, AppError::InvalidArgument(ref v) if v[0].field == "tolerance_due_date"),
            "{err:?}"
        );
        row.accept(Some(day("2026-12-04")), &cal, day("2026-12-01"))
            .unwrap();
        assert_eq!(row.body.tolerated, vec!["场所证明".to_string()]);
        assert_eq!(
            (row.tolerance_due, row.body.case.state),
            (Some(day("2026-12-04")), State::Accepted)
        );
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn case(supplied: &[&str]) -> Case {
        let materials = [
            ("申请书", true),
            ("营业执照复印件", false),
            ("场所证明", false),
            ("设备清单", false),
        ];
        Case::new(
            materials.iter().map(|(n, k)| (n.to_string(), *k)).collect(),
            supplied.iter().map(|s| s.to_string()).collect(),
        )
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_whole_lifecycle() {
        let mut c = case(&["申请书", "营业执照复印件", "场所证明", "设备清单"]);
        for a in [
            Action::StartPreReview,
            Action::Accept,
            Action::StartReview {
                departments: names(&["市场监管", "卫健"]),
            },
            Action::ConcludeStep {
                department: "市场监管".into(),
                approve: true,
                reason: String::new(),
            },
        ] {
            c.apply(&a).unwrap();
        }
        assert_eq!(
            c.state,
            State::InReview,
            "parallel review waits for every department"
        );
        let fx = c
            .apply(&Action::ConcludeStep {
                department: "卫健".into(),
                approve: true,
                reason: String::new(),
            })
            .unwrap();
        assert!(fx.review_finished);
        assert_eq!(c.state, State::Approved);
        for a in [Action::IssueCertificate, Action::Deliver, Action::Close] {
            c.apply(&a).unwrap();
        }
        assert_eq!(c.state, State::Closed);
    }

    #[test]
    fn one_denial_denies_with_its_reason() {
        let mut c = case(&["申请书", "营业执照复印件", "场所证明", "设备清单"]);
        c.apply(&Action::Accept).unwrap();
        let before = c.clone();
        assert!(c
            .apply(&Action::StartReview {
                departments: names(&["A", "A"])
            })
            .is_err());
        assert_eq!(c, before, "a refused review start changes nothing");
        c.apply(&Action::StartReview {
            departments: names(&["A", "B", "C"]),
        })
        .unwrap();
        c.apply(&Action::ConcludeStep {
            department: "B".into(),
            approve: false,
            reason: "选址不符合规划".into(),
        })
        .unwrap();
        c.apply(&Action::ConcludeStep {
            department: "A".into(),
            approve: true,
            reason: String::new(),
        })
        .unwrap();
        assert_eq!(c.state, State::InReview);
        c.apply(&Action::ConcludeStep {
            department: "C".into(),
            approve: true,
            reason: String::new(),
        })
        .unwrap();
        assert_eq!(c.state, State::Denied);
        assert_eq!(c.denial_reason.as_deref(), Some("选址不符合规划"));
        let again = c.apply(&Action::ConcludeStep {
            department: "A".into(),
            approve: true,
            reason: String::new(),
        });
        assert!(matches!(again, Err(RuleError::IllegalTransition { .. })));
    }

    #[test]
    fn illegal_transitions_change_nothing() {
        let mut c = case(&["申请书"]);
        let before = c.clone();
        for a in [
            Action::IssueCertificate,
            Action::Deliver,
            Action::Close,
            Action::Resume,
            Action::SupplyMaterials,
        ] {
            assert!(
                matches!(c.apply(&a), Err(RuleError::IllegalTransition { .. })),
                "{a:?}"
            );
            assert_eq!(c, before);
        }
        assert!(matches!(
            c.apply(&Action::Refuse { reason: " ".into() }),
            Err(RuleError::Invalid { .. })
        ));
        assert_eq!(c, before);
    }

    #[test]
    fn key_materials_can_never_be_missing() {
        let mut c = case(&["营业执照复印件"]);
        assert!(matches!(
            c.apply(&Action::Accept),
            Err(RuleError::Invalid {
                field: "materials",
                ..
            })
        ));
        assert!(check_tolerated(&c, d("2026-10-20"), d("2026-10-12")).is_err());
        let c = case(&["申请书", "营业执照复印件"]);
        assert_eq!(
            check_tolerated(&c, d("2026-10-20"), d("2026-10-12")).unwrap(),
            names(&["场所证明", "设备清单"])
        );
        assert!(check_tolerated(&c, d("2026-10-12"), d("2026-10-12")).is_err());
    }

    #[test]
    fn second_notice_naming_what_the_first_could_have_is_a_violation() {
        let mut c = case(&["申请书"]);
        // Missing then: 营业执照复印件, 场所证明, 设备清单; the first notice names only one.
        let fx = c
            .apply(&Action::RequestCorrection {
                materials: names(&["营业执照复印件"]),
            })
            .unwrap();
        assert!(fx.notice_violation.is_empty());
        c.supplied.insert("营业执照复印件".into());
        c.apply(&Action::SupplyMaterials).unwrap();
        let fx = c
            .apply(&Action::RequestCorrection {
                materials: names(&["场所证明", "营业执照复印件"]),
            })
            .unwrap();
        assert_eq!(fx.notice_violation, names(&["场所证明"]));
    }

    #[test]
    fn a_complete_first_notice_is_no_violation() {
        let mut c = case(&["申请书"]);
        c.apply(&Action::RequestCorrection {
            materials: names(&["营业执照复印件", "场所证明", "设备清单"]),
        })
        .unwrap();
        c.apply(&Action::SupplyMaterials).unwrap();
        // A defect found in a material that was not missing at the first notice is fair.
        let fx = c
            .apply(&Action::RequestCorrection {
                materials: names(&["申请书"]),
            })
            .unwrap();
        assert!(fx.notice_violation.is_empty());
        assert_eq!(c.state, State::CorrectionRequested);
        let mut fresh = case(&["申请书"]);
        assert!(matches!(
            fresh.apply(&Action::RequestCorrection {
                materials: names(&["不存在的材料"])
            }),
            Err(RuleError::Invalid { .. })
        ));
        assert!(matches!(
            fresh.apply(&Action::RequestCorrection {
                materials: names(&["场所证明", "场所证明"])
            }),
            Err(RuleError::Invalid { .. })
        ));
        assert!(fresh.notices.is_empty(), "a refused notice is not recorded");
    }

    #[test]
    fn suspension_resumes_where_it_was() {
        let mut c = case(&["申请书", "营业执照复印件", "场所证明", "设备清单"]);
        c.apply(&Action::Accept).unwrap();
        c.apply(&Action::StartReview {
            departments: names(&["A"]),
        })
        .unwrap();
        c.apply(&Action::Suspend {
            reason: "听证".into(),
        })
        .unwrap();
        assert_eq!(c.state, State::Suspended);
        c.apply(&Action::Resume).unwrap();
        assert_eq!(c.state, State::InReview);
    }

    #[test]
    fn deemed_acceptance_ignores_missing_materials_but_not_a_notice() {
        let mut c = case(&[]);
        c.apply(&Action::DeemAccept).unwrap();
        assert_eq!(c.state, State::Accepted);
        let mut noticed = case(&["申请书"]);
        noticed
            .apply(&Action::RequestCorrection {
                materials: names(&["场所证明"]),
            })
            .unwrap();
        noticed.apply(&Action::SupplyMaterials).unwrap();
        assert!(noticed.apply(&Action::DeemAccept).is_err());
    }

    #[test]
    fn deemed_acceptance_after_five_working_days_without_notice() {
        let cal = Calendar::national();
        // Submitted Thu 24 Sep 2026: five working days end Fri 9 Oct (holidays skipped).
        assert_eq!(
            deemed_acceptance(&cal, d("2026-09-24"), None, d("2026-10-09")),
            None
        );
        assert_eq!(
            deemed_acceptance(&cal, d("2026-09-24"), None, d("2026-10-10")),
            Some(d("2026-09-24"))
        );
        assert_eq!(
            deemed_acceptance(
                &cal,
                d("2026-09-24"),
                Some(d("2026-10-08")),
                d("2026-10-20")
            ),
            None
        );
        assert_eq!(
            deemed_acceptance(
                &cal,
                d("2026-09-24"),
                Some(d("2026-10-12")),
                d("2026-10-20")
            ),
            Some(d("2026-09-24")),
            "a notice after the fifth working day is too late"
        );
    }

    #[test]
    fn escalation_levels_and_their_dates() {
        let cal = Calendar::national();
        // Accepted Fri 18 Sep 2026, 5 working days: due Thu 24 Sep.
        let clock = Clock::new(d("2026-09-18"), 5);
        assert_eq!(
            escalation(&cal, &clock, d("2026-09-21"), 2, 3),
            Escalation::OnTime
        );
        assert_eq!(
            escalation(&cal, &clock, d("2026-09-22"), 2, 3),
            Escalation::Warning
        );
        assert_eq!(
            escalation(&cal, &clock, d("2026-09-24"), 2, 3),
            Escalation::Warning
        );
        assert_eq!(
            escalation(&cal, &clock, d("2026-09-25"), 2, 3),
            Escalation::Yellow
        );
        // Working days after the 24th: 28, 29, 30 (3), 8 Oct (4) → red.
        assert_eq!(
            escalation(&cal, &clock, d("2026-09-30"), 2, 3),
            Escalation::Yellow
        );
        assert_eq!(
            escalation(&cal, &clock, d("2026-10-08"), 2, 3),
            Escalation::Red
        );
        let dates = escalation_dates(&cal, &clock, 2, 3);
        assert_eq!(
            dates,
            [
                (Escalation::Warning, d("2026-09-22")),
                (Escalation::Yellow, d("2026-09-25")),
                (Escalation::Red, d("2026-10-08")),
            ]
        );
        // A closed pause of 3 working days (20 Sep, a make-up Sunday, to the 23rd) moves the
        // deadline from Thu 24 Sep by 3 working days (28, 29, 30: Mid-Autumn 25-27 skipped) to
        // Wed 30 Sep: the warning comes on Mon 28th (29, 30 left), the yellow card the day after
        // the deadline (Thu 1 Oct), the red after 3 more working days (8, 9, 10 Oct, the
        // make-up Saturday): Mon 12 Oct.
        let mut paused = clock.clone();
        paused.pause(d("2026-09-20")).unwrap();
        paused.resume(d("2026-09-23")).unwrap();
        let moved = escalation_dates(&cal, &paused, 2, 3);
        assert_eq!(
            moved,
            [
                (Escalation::Warning, d("2026-09-28")),
                (Escalation::Yellow, d("2026-10-01")),
                (Escalation::Red, d("2026-10-12")),
            ]
        );
        for (level, date) in dates {
            assert_eq!(
                escalation(&cal, &clock, date, 2, 3),
                level,
                "{level:?} on {date}"
            );
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn day() -> impl Strategy<Value = NaiveDate> {
            (0i64..600).prop_map(|o| {
                NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + chrono::Duration::days(o)
            })
        }

        proptest! {
            /// The timer index and the rule never disagree: each escalation date is the first day
            /// the rule reaches that level, with or without a closed pause and an extension.
            #[test]
            fn escalation_dates_are_the_first_days_of_each_level(
                start in day(),
                limit in 1u32..40,
                extension in 0u32..11,
                pause in proptest::option::of((0i64..30, 1i64..20)),
                warn in 0u32..5,
                red in 0u32..8,
            ) {
                let cal = Calendar::national();
                let mut clock = Clock::new(start, limit);
                if extension > 0 {
                    clock.extend(extension).unwrap();
                }
                if let Some((after, len)) = pause {
                    let from = start + chrono::Duration::days(after);
                    clock.pause(from).unwrap();
                    clock.resume(from + chrono::Duration::days(len)).unwrap();
                }
                let dates = escalation_dates(&cal, &clock, warn, red);
                let levels: Vec<Escalation> = dates.iter().map(|(l, _)| *l).collect();
                prop_assert_eq!(levels, vec![Escalation::Warning, Escalation::Yellow, Escalation::Red]);
                for (level, date) in dates {
                    prop_assert!(escalation(&cal, &clock, date, warn, red) >= level, "{:?} on {}", level, date);
                    let before = date.pred_opt().unwrap();
                    prop_assert!(date == start || escalation(&cal, &clock, before, warn, red) < level, "{:?} already on {}", level, before);
                }
            }
        }
    }
}
