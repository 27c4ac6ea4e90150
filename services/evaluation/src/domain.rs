//! Pure rules of 好差评: the five levels, one rating per service occurrence inside the region's
//! rating window and never by the staff member who gave the service, and the 差评 closed loop
//! (callback → rectification → reply → the citizen's confirmation) with a working-day limit on
//! each step. No I/O and no clock reads: times and calendars are passed in.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;
use xiaoneng_calendar::Calendar;
use xiaoneng_kit::{AppError, AppResult, Violations};
use xiaoneng_proto::evaluation::v1 as pb;

xiaoneng_kit::named_enum! {
    /// The reasons a client switches on (FAILED_PRECONDITION), listed in the proto.
    pub enum Reason {
        AlreadyRated = "ALREADY_RATED",
        RatingWindowClosed = "RATING_WINDOW_CLOSED",
        SelfRating = "SELF_RATING",
        IllegalStep = "ILLEGAL_STEP",
        FollowUpGiven = "FOLLOW_UP_GIVEN",
        AppealExists = "APPEAL_EXISTS",
        NoPendingAppeal = "NO_PENDING_APPEAL",
    }
}

xiaoneng_kit::named_enum! {
    /// Where an appeal (申诉复核) stands.
    pub enum AppealState {
        Pending = "pending",
        Upheld = "upheld",
        Rejected = "rejected",
    }
}

xiaoneng_kit::named_enum! {
    /// A manipulation signal's kind.
    pub enum FlagKind {
        /// Many ratings from one device or phone within minutes.
        DeviceBurst = "device_burst",
        /// Many ratings of one staff member within minutes.
        StaffBurst = "staff_burst",
        /// The staff member who gave the service tried to rate it (refused, and flagged).
        SelfRating = "self_rating",
    }
}

/// An appeal against a rating, as stored with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Appeal {
    pub state: AppealState,
    /// mistaken | malicious
    pub grounds: String,
    pub statement: String,
    pub evidence: Vec<String>,
    pub appealed_by: String,
    pub decided_by: String,
    pub decision_reason: String,
}

impl Appeal {
    /// The rated unit's appeal: grounds `mistaken` or `malicious`, a statement and evidence.
    pub fn lodge(
        existing: Option<&Appeal>,
        grounds: &str,
        statement: &str,
        evidence: &[String],
        by: &str,
    ) -> AppResult<Appeal> {
        let mut v = Violations::new();
        v.check(
            matches!(grounds, "mistaken" | "malicious"),
            "grounds",
            "must be mistaken or malicious",
        );
        v.text(statement, "statement", 2000);
        v.check(
            !evidence.is_empty(),
            "evidence",
            "an appeal needs its evidence (references)",
        );
        v.into_result()?;
        if existing.is_some() {
            return Err(AppError::precondition(
                Reason::AppealExists.name(),
                "a rating is appealed once",
            ));
        }
        Ok(Appeal {
            state: AppealState::Pending,
            grounds: grounds.to_string(),
            statement: statement.trim().to_string(),
            evidence: evidence.to_vec(),
            appealed_by: by.to_string(),
            decided_by: String::new(),
            decision_reason: String::new(),
        })
    }

    /// A supervisor's decision, with its reason; an upheld appeal excludes the rating.
    pub fn decide(&mut self, uphold: bool, reason: &str, by: &str) -> AppResult<()> {
        if reason.trim().is_empty() {
            return Err(AppError::invalid("reason", "a decision needs its reason"));
        }
        if self.state != AppealState::Pending {
            return Err(AppError::precondition(
                Reason::NoPendingAppeal.name(),
                "the appeal was decided",
            ));
        }
        self.state = if uphold {
            AppealState::Upheld
        } else {
            AppealState::Rejected
        };
        self.decided_by = by.to_string();
        self.decision_reason = reason.trim().to_string();
        Ok(())
    }
}

/// When ratings look manipulated: this many from one device, or of one staff member, within
/// `window_minutes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Signals {
    pub device_burst: u32,
    pub staff_burst: u32,
    pub window_minutes: u32,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            device_burst: 5,
            staff_burst: 20,
            window_minutes: 10,
        }
    }
}

impl Signals {
    /// The kinds a rating raises, given the ratings (this one included) from its device and of
    /// its staff member within the window.
    pub fn raised(&self, from_device: i64, of_staff: i64) -> Vec<FlagKind> {
        let mut out = Vec::new();
        if self.device_burst > 0 && from_device >= self.device_burst as i64 {
            out.push(FlagKind::DeviceBurst);
        }
        if self.staff_burst > 0 && of_staff >= self.staff_burst as i64 {
            out.push(FlagKind::StaffBurst);
        }
        out
    }
}

xiaoneng_kit::named_enum! {
    /// What was rated: a service at a window (一次一评) or a whole case (一事一评).
    pub enum Occurrence {
        OnSite = "on_site",
        Online = "online",
    }
}

xiaoneng_kit::named_enum! {
    /// Where a 差评's closed loop stands.
    pub enum LoopState {
        Assigned = "assigned",
        CalledBack = "called_back",
        Rectified = "rectified",
        Replied = "replied",
        Closed = "closed",
        Escalated = "escalated",
    }
}

impl Occurrence {
    pub fn wire(self) -> pb::Occurrence {
        match self {
            Occurrence::OnSite => pb::Occurrence::OnSite,
            Occurrence::Online => pb::Occurrence::Online,
        }
    }
}

impl LoopState {
    pub fn wire(self) -> pb::LoopState {
        match self {
            LoopState::Assigned => pb::LoopState::Assigned,
            LoopState::CalledBack => pb::LoopState::CalledBack,
            LoopState::Rectified => pb::LoopState::Rectified,
            LoopState::Replied => pb::LoopState::Replied,
            LoopState::Closed => pb::LoopState::Closed,
            LoopState::Escalated => pb::LoopState::Escalated,
        }
    }

    /// Whether the loop ended (nothing is due any more).
    pub fn ended(self) -> bool {
        matches!(self, LoopState::Closed | LoopState::Escalated)
    }
}

/// A rating level, 1 (非常不满意) to 5 (非常满意).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Level(u8);

impl Level {
    pub fn parse(value: i32) -> Option<Level> {
        (1..=5).contains(&value).then_some(Level(value as u8))
    }

    pub fn value(self) -> i32 {
        self.0 as i32
    }

    /// 2 (不满意) and 1 (非常不满意) are 差评.
    pub fn is_bad(self) -> bool {
        self.0 <= 2
    }
}

/// The five national levels with their names, best first.
pub const LEVEL_NAMES: &[(i32, &str)] = &[
    (5, "非常满意"),
    (4, "满意"),
    (3, "基本满意"),
    (2, "不满意"),
    (1, "非常不满意"),
];

/// An indicator's Chinese name (GB/T 39734-2020's wording).
pub fn indicator_name(code: &str) -> &'static str {
    match code {
        "overall" => "总体评价",
        "efficiency" => "服务效率",
        "attitude" => "服务态度",
        "professional" => "专业水平",
        "environment" => "服务环境",
        "guide_accuracy" => "办事指南准确度",
        "convenience" => "办事便捷度",
        "usability" => "平台操作性",
        _ => "其他",
    }
}

/// The indicators of the national rules, by occurrence.
pub fn indicators(o: Occurrence) -> &'static [&'static str] {
    match o {
        Occurrence::OnSite => &[
            "overall",
            "efficiency",
            "attitude",
            "professional",
            "environment",
        ],
        Occurrence::Online => &[
            "overall",
            "guide_accuracy",
            "convenience",
            "efficiency",
            "usability",
        ],
    }
}

/// An invitation as stored: one per service occurrence.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub region_code: String,
    pub occurrence: Occurrence,
    /// `ticket:<id>` or `case:<id>`: one invitation per occurrence.
    pub source_key: String,
    pub ticket_id: String,
    pub case_id: String,
    pub matter_id: String,
    pub matter_name: String,
    pub window_code: String,
    pub hall_id: String,
    pub department: String,
    pub staff_id: String,
    pub citizen_id: String,
    pub opened_at: DateTime<Utc>,
    pub rate_by: NaiveDate,
    pub rating_id: Option<Uuid>,
    /// Set once the rating window passed unrated.
    pub expired_at: Option<DateTime<Utc>>,
}

/// A new invitation, from a consumed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvitation {
    pub region_code: String,
    pub occurrence: Occurrence,
    pub source_key: String,
    pub ticket_id: String,
    pub case_id: String,
    pub matter_id: String,
    pub matter_name: String,
    pub window_code: String,
    pub hall_id: String,
    pub department: String,
    pub staff_id: String,
    pub citizen_id: String,
    pub opened_at: DateTime<Utc>,
    pub rate_by: NaiveDate,
}

/// The last day an occurrence on `opened_on` may be rated: `window_days` calendar days on.
pub fn rate_by(opened_on: NaiveDate, window_days: u32) -> NaiveDate {
    opened_on + chrono::Duration::days(window_days as i64)
}

/// A rating as the citizen gives it, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRating {
    pub level: Level,
    pub scores: Vec<(String, Level)>,
    pub comment: String,
    pub tags: Vec<String>,
    pub reason: String,
    pub channel: i32,
    pub anonymous: bool,
    pub device: String,
}

impl NewRating {
    /// The region's default rating of an expired invitation: no scores, no text, by no device.
    pub fn default_of(level: Level) -> NewRating {
        NewRating {
            level,
            scores: Vec::new(),
            comment: String::new(),
            tags: Vec::new(),
            reason: String::new(),
            channel: 0,
            anonymous: true,
            device: String::new(),
        }
    }

    /// Parses a rating of an occurrence of kind `o`: every bad field listed.
    pub fn parse(r: &pb::SubmitRatingRequest, o: Occurrence) -> AppResult<NewRating> {
        let mut v = Violations::new();
        let level = Level::parse(r.level);
        v.check(
            level.is_some(),
            "level",
            "must be 1 (非常不满意) to 5 (非常满意)",
        );
        let known = indicators(o);
        let mut scores = Vec::new();
        for (i, s) in r.scores.iter().enumerate() {
            let ok = known.contains(&s.indicator.as_str());
            v.check(
                ok,
                &format!("scores[{i}].indicator"),
                &format!("must be one of {}", known.join(", ")),
            );
            match Level::parse(s.level) {
                Some(l) if ok => scores.push((s.indicator.clone(), l)),
                Some(_) => {}
                None => v.check(false, &format!("scores[{i}].level"), "must be 1 to 5"),
            }
        }
        let channel_ok =
            matches!(pb::Channel::try_from(r.channel), Ok(c) if c != pb::Channel::Unspecified);
        v.check(
            channel_ok,
            "channel",
            "must name the channel the rating came by",
        );
        v.check(
            r.comment.chars().count() <= 1000,
            "comment",
            "at most 1000 characters",
        );
        if level.is_some_and(Level::is_bad) {
            let why = !r.reason.trim().is_empty() || !r.comment.trim().is_empty();
            v.check(why, "reason", "a 差评 needs a reason or a comment");
        }
        v.into_result()?;
        Ok(NewRating {
            level: level.expect("checked"),
            scores,
            comment: r.comment.trim().to_string(),
            tags: r
                .tags
                .iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            reason: r.reason.trim().to_string(),
            channel: r.channel,
            anonymous: r.anonymous,
            device: r.device.trim().to_string(),
        })
    }
}

/// Whether `rater` may rate `inv` on `today`: not rated yet, inside the window, not the staff
/// member who served, and the citizen the invitation names (when it names one).
pub fn may_rate(
    inv: &InvitationRow,
    rater: &str,
    rater_is_citizen: bool,
    today: NaiveDate,
) -> AppResult<()> {
    if inv.rating_id.is_some() {
        return Err(AppError::precondition(
            Reason::AlreadyRated.name(),
            "this service was rated already",
        ));
    }
    if today > inv.rate_by || inv.expired_at.is_some() {
        let why = format!("ratings for this service closed on {}", inv.rate_by);
        return Err(AppError::precondition(
            Reason::RatingWindowClosed.name(),
            why,
        ));
    }
    if !inv.staff_id.is_empty() && rater == inv.staff_id {
        let why = "the staff member who gave the service cannot rate it";
        return Err(AppError::precondition(Reason::SelfRating.name(), why));
    }
    if rater_is_citizen && !inv.citizen_id.is_empty() && rater != inv.citizen_id {
        return Err(AppError::PermissionDenied(
            "this invitation is another citizen's".into(),
        ));
    }
    Ok(())
}

/// What happens to an invitation its rating window passed unrated, on `today`: nothing
/// before the window closed; else it expires, with the region's default rating when its rules
/// name one (`default_level` 3 to 5; 0: none). An invitation rated or expired already is
/// left alone.
pub fn expiry(inv: &InvitationRow, default_level: u32, today: NaiveDate) -> Option<Option<Level>> {
    if inv.rating_id.is_some() || inv.expired_at.is_some() || today <= inv.rate_by {
        return None;
    }
    Some(Level::parse(default_level as i32).filter(|l| !l.is_bad()))
}

/// Working-day limits of the loop's steps (defaults: callback 1, rectification 5; regions have
/// used 5, 7 and 15), and the days for the reply and the confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopLimits {
    pub callback_days: u32,
    pub rectify_days: u32,
    pub reply_days: u32,
}

/// A 差评's closed loop as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Loop {
    pub state: LoopState,
    /// The working-day deadline of the step under way; None once the loop ended (or while the
    /// citizen is asked to confirm: no office deadline runs then).
    pub step_due: Option<NaiveDate>,
    /// When the step under way started and its limit: what its deadline is recomputed from
    /// when the calendar changes.
    #[serde(default)]
    pub step_started: Option<NaiveDate>,
    #[serde(default)]
    pub step_days: u32,
    pub reopened: u32,
    pub callback_outcome: String,
    pub callback_at: Option<DateTime<Utc>>,
    pub rectification: String,
    pub reply: String,
    pub confirmation: String,
    /// The step's deadline lies past the calendar's published years (counted Monday to
    /// Friday): it may move when the year's notice is loaded.
    #[serde(default)]
    pub provisional: bool,
}

/// One step a unit (or the citizen) takes in a loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Callback { outcome: String },
    Rectify { text: String },
    Reply { text: String },
    Confirm { answer: Confirmation },
}

/// The citizen's answer to the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    Satisfied,
    BasicallySatisfied,
    NotSatisfied,
}

impl Confirmation {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "satisfied" => Some(Confirmation::Satisfied),
            "basically_satisfied" => Some(Confirmation::BasicallySatisfied),
            "not_satisfied" => Some(Confirmation::NotSatisfied),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Confirmation::Satisfied => "satisfied",
            Confirmation::BasicallySatisfied => "basically_satisfied",
            Confirmation::NotSatisfied => "not_satisfied",
        }
    }
}

impl Loop {
    /// The loop a 差评 given on `today` opens: assigned, the callback due in its limit.
    pub fn open(limits: LoopLimits, cal: &Calendar, today: NaiveDate) -> Loop {
        let mut l = Loop {
            state: LoopState::Assigned,
            step_due: None,
            step_started: None,
            step_days: 0,
            reopened: 0,
            callback_outcome: String::new(),
            callback_at: None,
            rectification: String::new(),
            reply: String::new(),
            confirmation: String::new(),
            provisional: false,
        };
        l.due_in(cal, today, limits.callback_days);
        l
    }

    /// Applies `step` on `today` (at `now`); the state it left. On error nothing changed.
    /// "Not satisfied" reopens the loop once (back to rectification); a second time it goes
    /// to the efficiency office.
    pub fn advance(
        &mut self,
        step: Step,
        limits: LoopLimits,
        cal: &Calendar,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> AppResult<LoopState> {
        use LoopState::*;
        let from = self.state;
        let illegal = || {
            let why = format!(
                "a 差评 loop that is {} does not take this step",
                from.name()
            );
            AppError::precondition(Reason::IllegalStep.name(), why)
        };
        let text_of = |t: &str, field: &str| {
            let t = t.trim();
            if t.is_empty() {
                Err(AppError::invalid(field, "is required for this step"))
            } else {
                Ok(t.to_string())
            }
        };
        match (from, step) {
            (Assigned, Step::Callback { outcome }) => {
                self.callback_outcome = text_of(&outcome, "text")?;
                self.callback_at = Some(now);
                self.state = CalledBack;
                self.due_in(cal, today, limits.rectify_days);
            }
            (CalledBack, Step::Rectify { text }) => {
                self.rectification = text_of(&text, "text")?;
                self.state = Rectified;
                self.due_in(cal, today, limits.reply_days);
            }
            (Rectified, Step::Reply { text }) => {
                self.reply = text_of(&text, "text")?;
                self.state = Replied;
                self.no_step();
            }
            (Replied, Step::Confirm { answer }) => {
                self.confirmation = answer.name().to_string();
                match answer {
                    Confirmation::NotSatisfied if self.reopened == 0 => {
                        self.reopened = 1;
                        self.state = CalledBack;
                        self.due_in(cal, today, limits.rectify_days);
                    }
                    Confirmation::NotSatisfied => {
                        self.state = Escalated;
                        self.no_step();
                    }
                    _ => {
                        self.state = Closed;
                        self.no_step();
                    }
                }
            }
            _ => return Err(illegal()),
        }
        Ok(from)
    }

    /// The next step starts on `today` with `days` working days.
    fn due_in(&mut self, cal: &Calendar, today: NaiveDate, days: u32) {
        let due = cal.add_working_days(today, days);
        self.step_due = Some(due);
        self.step_started = Some(today);
        self.step_days = days;
        self.provisional = !cal.covers_span(today, due);
    }

    /// No office deadline runs (the citizen is asked, or the loop ended).
    fn no_step(&mut self) {
        self.step_due = None;
        self.step_started = None;
        self.step_days = 0;
        self.provisional = false;
    }

    /// The step's deadline on a changed calendar; whether it (or its provisional mark)
    /// changed.
    pub fn recalendar(&mut self, cal: &Calendar) -> bool {
        let (Some(started), Some(old)) = (self.step_started, self.step_due) else {
            return false;
        };
        let was = self.provisional;
        self.due_in(cal, started, self.step_days);
        self.step_due != Some(old) || self.provisional != was
    }

    /// Whether the step under way is past its deadline on `today`.
    pub fn overdue(&self, today: NaiveDate) -> bool {
        self.step_due.is_some_and(|d| today > d)
    }
}

/// A rating as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RatingRow {
    pub id: Uuid,
    pub invitation_id: Uuid,
    pub region_code: String,
    pub level: i32,
    pub scores: sqlx::types::Json<Vec<(String, i32)>>,
    pub comment: String,
    pub tags: Vec<String>,
    pub reason: String,
    pub channel: i32,
    pub anonymous: bool,
    pub follow_up: String,
    pub rater: String,
    pub rated_at: DateTime<Utc>,
    pub rated_on: NaiveDate,
    pub bad_loop: Option<sqlx::types::Json<Loop>>,
    pub version: i64,
    pub appeal: Option<sqlx::types::Json<Appeal>>,
    pub excluded: bool,
    pub device: String,
    pub defaulted: bool,
}

/// A rating with what the public may see of its invitation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PublicRow {
    #[sqlx(flatten)]
    pub rating: RatingRow,
    pub occurrence: Occurrence,
    pub matter_name: String,
    pub department: String,
    pub window_code: String,
    pub staff_id: String,
}

/// A manipulation flag as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FlagRow {
    pub id: Uuid,
    pub region_code: String,
    pub kind: FlagKind,
    pub subject: String,
    pub ratings: i32,
    pub window_minutes: i32,
    pub rating_ids: Vec<Uuid>,
    pub flagged_at: DateTime<Utc>,
}

/// One row of the statistics, as counted.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StatRow {
    pub key: String,
    pub ratings: i64,
    pub satisfied: i64,
    pub bad: i64,
    pub called_back: i64,
    pub rectified: i64,
}

impl StatRow {
    fn rate(n: i64, of: i64) -> f64 {
        if of == 0 {
            0.0
        } else {
            n as f64 / of as f64
        }
    }

    /// (satisfaction, 差评, callback, rectification) rates.
    pub fn rates(&self) -> (f64, f64, f64, f64) {
        (
            Self::rate(self.satisfied, self.ratings),
            Self::rate(self.bad, self.ratings),
            Self::rate(self.called_back, self.bad),
            Self::rate(self.rectified, self.bad),
        )
    }
}

/// The bottom ranks (末位): `n` keys with the lowest satisfaction rate (then the highest 差评
/// rate, then the most ratings, then the key), among keys with at least `min_ratings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bottom {
    pub n: usize,
    pub min_ratings: i64,
}

impl Bottom {
    pub fn ranks(self, rows: Vec<StatRow>) -> Vec<StatRow> {
        let mut rows: Vec<StatRow> = rows
            .into_iter()
            .filter(|r| r.ratings >= self.min_ratings.max(1))
            .collect();
        // Compare the rates as exact fractions (a/b < c/d ⇔ a·d < c·b): no float ties.
        rows.sort_by(|a, b| {
            (a.satisfied * b.ratings)
                .cmp(&(b.satisfied * a.ratings))
                .then((b.bad * a.ratings).cmp(&(a.bad * b.ratings)))
                .then(b.ratings.cmp(&a.ratings))
                .then(a.key.cmp(&b.key))
        });
        rows.truncate(self.n);
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const LIMITS: LoopLimits = LoopLimits {
        callback_days: 1,
        rectify_days: 5,
        reply_days: 1,
    };

    fn cal() -> Calendar {
        xiaoneng_calendar::Calendars::national_only().for_region("410702")
    }

    #[test]
    fn names_are_fixed() {
        let states: Vec<_> = LoopState::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            states,
            [
                "assigned",
                "called_back",
                "rectified",
                "replied",
                "closed",
                "escalated"
            ]
        );
        let kinds: Vec<_> = Occurrence::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(kinds, ["on_site", "online"]);
    }

    #[test]
    fn levels_and_bad_ratings() {
        assert_eq!(Level::parse(0), None);
        assert_eq!(Level::parse(6), None);
        assert!(Level::parse(1).unwrap().is_bad() && Level::parse(2).unwrap().is_bad());
        assert!(!Level::parse(3).unwrap().is_bad());
    }

    #[test]
    fn a_bad_rating_needs_a_reason_and_every_bad_field_is_listed() {
        let r = pb::SubmitRatingRequest {
            level: 2,
            channel: 0,
            scores: vec![pb::Score {
                indicator: "guide_accuracy".into(),
                level: 9,
            }],
            ..Default::default()
        };
        let err = NewRating::parse(&r, Occurrence::OnSite).unwrap_err();
        let AppError::InvalidArgument(v) = err else {
            panic!("invalid argument")
        };
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "scores[0].indicator",
                "scores[0].level",
                "channel",
                "reason"
            ]
        );
        let ok = pb::SubmitRatingRequest {
            level: 2,
            channel: 1,
            comment: "等了一小时".into(),
            ..Default::default()
        };
        assert!(NewRating::parse(&ok, Occurrence::OnSite)
            .unwrap()
            .level
            .is_bad());
    }

    fn invitation() -> InvitationRow {
        InvitationRow {
            id: Uuid::nil(),
            region_code: "410702".into(),
            occurrence: Occurrence::OnSite,
            source_key: "ticket:1".into(),
            ticket_id: "1".into(),
            case_id: String::new(),
            matter_id: String::new(),
            matter_name: String::new(),
            window_code: "A01".into(),
            hall_id: String::new(),
            department: String::new(),
            staff_id: "clerk-01".into(),
            citizen_id: "citizen-wang".into(),
            opened_at: Utc::now(),
            rate_by: day("2026-09-21"),
            rating_id: None,
            expired_at: None,
        }
    }

    #[test]
    fn one_rating_inside_the_window_never_by_the_server_or_another_citizen() {
        let inv = invitation();
        assert!(may_rate(&inv, "citizen-wang", true, day("2026-09-21")).is_ok());
        let reason = |e: AppError| match e {
            AppError::FailedPrecondition { reason, .. } => reason.to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(
            reason(may_rate(&inv, "citizen-wang", true, day("2026-09-22")).unwrap_err()),
            "RATING_WINDOW_CLOSED"
        );
        assert_eq!(
            reason(may_rate(&inv, "clerk-01", false, day("2026-09-20")).unwrap_err()),
            "SELF_RATING"
        );
        assert!(matches!(
            may_rate(&inv, "citizen-li", true, day("2026-09-20")),
            Err(AppError::PermissionDenied(_))
        ));
        let rated = InvitationRow {
            rating_id: Some(Uuid::nil()),
            ..inv
        };
        assert_eq!(
            reason(may_rate(&rated, "citizen-wang", true, day("2026-09-20")).unwrap_err()),
            "ALREADY_RATED"
        );
    }

    /// A 差评 on Wed 30 Sep 2026: the callback is due on the next working day, Thu 8 Oct
    /// (National Day 1-7 Oct); called back on 8 Oct, rectification in 5 working days: 9, 10
    /// (Sat, make-up), 12, 13, 14 → Wed 14 Oct.
    #[test]
    fn the_loops_deadlines_cross_national_day_on_the_calendar() {
        let cal = cal();
        let now = Utc::now();
        let mut l = Loop::open(LIMITS, &cal, day("2026-09-30"));
        assert_eq!(l.step_due, Some(day("2026-10-08")));
        assert!(!l.overdue(day("2026-10-08")) && l.overdue(day("2026-10-09")));
        l.advance(
            Step::Callback {
                outcome: "已联系, 群众反映等候太久".into(),
            },
            LIMITS,
            &cal,
            day("2026-10-08"),
            now,
        )
        .unwrap();
        assert_eq!(
            (l.state, l.step_due),
            (LoopState::CalledBack, Some(day("2026-10-14")))
        );
    }

    /// A 差评 on Wed 30 Dec 2026 with a 5-day callback: Mon–Fri past the 2026 data gives Wed 6
    /// Jan 2027 (31 Dec, 1, 4, 5, 6); with a fabricated 2027 notice taking 1 Jan off, Thu 7 Jan.
    #[test]
    fn a_loaded_year_moves_the_step_under_way() {
        let limits = LoopLimits {
            callback_days: 5,
            ..LIMITS
        };
        let national = xiaoneng_calendar::Calendars::national_only();
        let mut l = Loop::open(limits, &national.for_region("410702"), day("2026-12-30"));
        assert_eq!((l.step_due, l.provisional), (Some(day("2027-01-06")), true));
        let text = "year = 2027\nversion = \"t\"\nsource = \"fabricated\"\nfabricated = true\n\
                    holidays = [{ name = \"元旦\", from = \"2027-01-01\", to = \"2027-01-01\" }]\n";
        let loaded = national
            .with_notices(&[xiaoneng_calendar::Notice::parse(text).unwrap()])
            .for_region("410702");
        assert!(l.recalendar(&loaded));
        assert_eq!(
            (l.step_due, l.provisional),
            (Some(day("2027-01-07")), false)
        );
        assert!(!l.recalendar(&loaded), "nothing changes twice");
    }

    /// A step that ends inside the published years is final; one that starts and ends in
    /// 2026 is not provisional (the 2026 notice is loaded).
    #[test]
    fn only_a_deadline_past_the_published_years_is_provisional() {
        let l = Loop::open(LIMITS, &cal(), day("2026-09-30"));
        assert!(!l.provisional);
    }

    /// The window closes on rate_by: the day after, an unrated invitation expires, with the
    /// region's default rating when it names one; a default 差评 is never given.
    #[test]
    fn an_unrated_invitation_expires_after_its_window_with_the_regions_default_only() {
        let inv = invitation();
        assert_eq!(
            expiry(&inv, 5, day("2026-09-21")),
            None,
            "on rate_by it is open"
        );
        assert_eq!(expiry(&inv, 0, day("2026-09-22")), Some(None));
        assert_eq!(expiry(&inv, 5, day("2026-09-22")), Some(Level::parse(5)));
        assert_eq!(
            expiry(&inv, 1, day("2026-09-22")),
            Some(None),
            "never a default 差评"
        );
        let expired = InvitationRow {
            expired_at: Some(Utc::now()),
            ..inv.clone()
        };
        assert_eq!(expiry(&expired, 5, day("2026-09-30")), None, "expired once");
        let reason = match may_rate(&expired, "citizen-wang", true, day("2026-09-20")) {
            Err(AppError::FailedPrecondition { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason, "RATING_WINDOW_CLOSED");
        let rated = InvitationRow {
            rating_id: Some(Uuid::nil()),
            ..inv
        };
        assert_eq!(expiry(&rated, 5, day("2026-09-30")), None);
    }

    #[test]
    fn not_satisfied_reopens_once_then_goes_to_the_efficiency_office() {
        let (cal, now, d) = (cal(), Utc::now(), day("2026-11-02"));
        let mut l = Loop::open(LIMITS, &cal, d);
        let bad = l
            .advance(Step::Reply { text: "x".into() }, LIMITS, &cal, d, now)
            .unwrap_err();
        assert!(matches!(
            bad,
            AppError::FailedPrecondition {
                reason: "ILLEGAL_STEP",
                ..
            }
        ));
        assert_eq!(
            l.state,
            LoopState::Assigned,
            "a refused step changes nothing"
        );
        let steps = |l: &mut Loop| {
            l.advance(
                Step::Callback {
                    outcome: "已回访".into(),
                },
                LIMITS,
                &cal,
                d,
                now,
            )
            .unwrap();
            l.advance(
                Step::Rectify {
                    text: "已整改".into(),
                },
                LIMITS,
                &cal,
                d,
                now,
            )
            .unwrap();
            l.advance(
                Step::Reply {
                    text: "已答复".into(),
                },
                LIMITS,
                &cal,
                d,
                now,
            )
            .unwrap();
        };
        steps(&mut l);
        let not = Step::Confirm {
            answer: Confirmation::NotSatisfied,
        };
        l.advance(not.clone(), LIMITS, &cal, d, now).unwrap();
        assert_eq!((l.state, l.reopened), (LoopState::CalledBack, 1));
        l.advance(
            Step::Rectify {
                text: "再次整改".into(),
            },
            LIMITS,
            &cal,
            d,
            now,
        )
        .unwrap();
        l.advance(
            Step::Reply {
                text: "再次答复".into(),
            },
            LIMITS,
            &cal,
            d,
            now,
        )
        .unwrap();
        l.advance(not, LIMITS, &cal, d, now).unwrap();
        assert_eq!((l.state, l.step_due), (LoopState::Escalated, None));
        let mut ok = Loop::open(LIMITS, &cal, d);
        steps(&mut ok);
        ok.advance(
            Step::Confirm {
                answer: Confirmation::BasicallySatisfied,
            },
            LIMITS,
            &cal,
            d,
            now,
        )
        .unwrap();
        assert_eq!(ok.state, LoopState::Closed);
        assert!(ok.state.ended());
    }

    #[test]
    fn an_appeal_is_lodged_once_with_evidence_and_decided_once_with_a_reason() {
        let err = Appeal::lodge(None, "unfair", "", &[], "unit").unwrap_err();
        let AppError::InvalidArgument(v) = err else {
            panic!("invalid")
        };
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["grounds", "statement", "evidence"]);
        let ev = vec!["录像:ZH01-0930-1012".to_string()];
        let mut a = Appeal::lodge(None, "malicious", "同一号码连续差评", &ev, "unit").unwrap();
        assert!(matches!(
            Appeal::lodge(Some(&a), "malicious", "x", &ev, "unit"),
            Err(AppError::FailedPrecondition {
                reason: "APPEAL_EXISTS",
                ..
            })
        ));
        assert!(matches!(
            a.decide(true, " ", "sup"),
            Err(AppError::InvalidArgument(_))
        ));
        a.decide(true, "录像证实群众未到窗口", "sup").unwrap();
        assert_eq!(a.state, AppealState::Upheld);
        assert!(matches!(
            a.decide(false, "x", "sup"),
            Err(AppError::FailedPrecondition {
                reason: "NO_PENDING_APPEAL",
                ..
            })
        ));
    }

    #[test]
    fn bursts_raise_flags_at_their_thresholds() {
        let s = Signals {
            device_burst: 5,
            staff_burst: 20,
            window_minutes: 10,
        };
        assert_eq!(s.raised(4, 19), vec![]);
        assert_eq!(s.raised(5, 19), vec![FlagKind::DeviceBurst]);
        assert_eq!(s.raised(1, 20), vec![FlagKind::StaffBurst]);
        assert_eq!(
            FlagKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>(),
            ["device_burst", "staff_burst", "self_rating"]
        );
        assert_eq!(
            AppealState::ALL
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>(),
            ["pending", "upheld", "rejected"]
        );
    }

    fn stat(key: &str, ratings: i64, satisfied: i64) -> StatRow {
        StatRow {
            key: key.into(),
            ratings,
            satisfied,
            bad: ratings - satisfied,
            called_back: 0,
            rectified: 0,
        }
    }

    /// Bottom ranks by hand: s-a 3/4 = 75 %, s-b 1/2 = 50 %, s-c 9/10 = 90 %, s-d 0/1 (too few
    /// ratings with min 2), s-e 6/8 = 75 % with more ratings than s-a: b, e, a.
    #[test]
    fn the_bottom_ranks_skip_units_rated_too_rarely() {
        let rows = vec![
            stat("s-a", 4, 3),
            stat("s-b", 2, 1),
            stat("s-c", 10, 9),
            stat("s-d", 1, 0),
            stat("s-e", 8, 6),
        ];
        let b = Bottom {
            n: 3,
            min_ratings: 2,
        };
        let keys: Vec<_> = b.ranks(rows).into_iter().map(|r| r.key).collect();
        assert_eq!(keys, ["s-b", "s-e", "s-a"]);
    }

    #[test]
    fn rates_are_counts_over_counts() {
        let r = StatRow {
            key: "x".into(),
            ratings: 8,
            satisfied: 6,
            bad: 2,
            called_back: 2,
            rectified: 1,
        };
        assert_eq!(r.rates(), (0.75, 0.25, 1.0, 0.5));
        let empty = StatRow {
            key: "y".into(),
            ratings: 0,
            satisfied: 0,
            bad: 0,
            called_back: 0,
            rectified: 0,
        };
        assert_eq!(empty.rates(), (0.0, 0.0, 0.0, 0.0));
    }
}
