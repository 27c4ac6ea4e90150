//! Pure rules of 投诉举报: the negative list, intake checks, the closed loop (registered →
//! assigned → investigating → concluded → replied → called back → closed, reopened once), the
//! working-day limit per kind with one extension, and what each reader may see. No I/O and no
//! clock reads: times and calendars are passed in.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use xiaoneng_calendar::Calendar;
use xiaoneng_kit::{AppError, AppResult, Violations};

pub mod sight;

xiaoneng_kit::named_enum! {
    /// The reasons a client switches on (FAILED_PRECONDITION), listed in the proto.
    pub enum Reason {
        IllegalStep = "ILLEGAL_STEP",
        ReopenedOnce = "REOPENED_ONCE",
        ExtendedOnce = "EXTENDED_ONCE",
    }
}

xiaoneng_kit::named_enum! {
    /// Where a complaint stands.
    pub enum State {
        Registered = "registered",
        Assigned = "assigned",
        Investigating = "investigating",
        Concluded = "concluded",
        Replied = "replied",
        CalledBack = "called_back",
        Closed = "closed",
    }
}

xiaoneng_kit::named_enum! {
    /// What is filed, and so its limit.
    pub enum Kind {
        Urgent = "urgent",
        Consultation = "consultation",
        Complaint = "complaint",
        /// 打击报复: straight to discipline inspection.
        Retaliation = "retaliation",
    }
}

xiaoneng_kit::named_enum! {
    pub enum Channel {
        Hotline = "hotline",
        Web = "web",
        QrCode = "qr_code",
        Mailbox = "mailbox",
        OnSite = "on_site",
        Open311 = "open311",
    }
}

xiaoneng_kit::named_enum! {
    pub enum TargetKind {
        Department = "department",
        Window = "window",
        Staff = "staff",
        Matter = "matter",
        Case = "case",
        Ticket = "ticket",
        Complaint = "complaint",
    }
}

xiaoneng_kit::named_enum! {
    pub enum Finding {
        Substantiated = "substantiated",
        PartlySubstantiated = "partly_substantiated",
        NotSubstantiated = "not_substantiated",
    }
}

/// The unit misconduct and retaliation reports are assigned to.
pub const DISCIPLINE: &str = "discipline";

/// A category of the negative list (负面清单).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub code: String,
    pub name: String,
    /// Misconduct goes to discipline inspection.
    #[serde(default)]
    pub misconduct: bool,
}

/// The national negative list; a region adds its own.
pub fn national_categories() -> Vec<Category> {
    let c = |code: &str, name: &str, misconduct: bool| Category {
        code: code.into(),
        name: name.into(),
        misconduct,
    };
    vec![
        c("slow_action", "慢作为、不作为", false),
        c("bribery", "吃拿卡要", true),
        c("buck_passing", "推诿扯皮", false),
        c("hostile_attitude", "生冷硬顶推绕", false),
        c("absence", "迟到早退、脱岗离岗", false),
        c("unequal_treatment", "厚此薄彼、不公正对待", false),
        c("incomplete_notice", "一次性告知不到位、来回跑多头跑", false),
        c("retaliation", "打击报复", true),
    ]
}

/// The working-day limits of a region (defaults: urgent same day, consultation 3, complaint
/// 10), the fast track (直查快办), the one extension, and the window in which the same
/// complainant, target and category merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub urgent_days: u32,
    pub consultation_days: u32,
    pub complaint_days: u32,
    pub fast_track_days: u32,
    pub extension_days: u32,
    pub merge_window_days: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            urgent_days: 0,
            consultation_days: 3,
            complaint_days: 10,
            fast_track_days: 1,
            extension_days: 5,
            merge_window_days: 30,
        }
    }
}

impl Limits {
    /// Working days for a complaint of `kind` (the fast track's when shorter).
    pub fn days(&self, kind: Kind, fast_track: bool) -> u32 {
        let d = match kind {
            Kind::Urgent => self.urgent_days,
            Kind::Consultation => self.consultation_days,
            Kind::Complaint | Kind::Retaliation => self.complaint_days,
        };
        if fast_track {
            d.min(self.fast_track_days)
        } else {
            d
        }
    }
}

/// The deadline `days` working days after `from`; 0 is the same working day (the next one
/// when `from` is not a working day).
pub fn due(cal: &Calendar, from: NaiveDate, days: u32) -> NaiveDate {
    if days == 0 {
        cal.next_working_day_from(from)
    } else {
        cal.add_working_days(from, days)
    }
}

/// Who complains, as given; sealed before it is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    pub phone: String,
    pub id_number: String,
    pub address: String,
    /// The account that filed it online ('' for the hotline, mailbox or on site).
    #[serde(default)]
    pub account: String,
    /// What an Open311 client sends of its user, each in its own field.
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub device_id: String,
    #[serde(default)]
    pub account_id: String,
}

impl Identity {
    pub fn is_empty(&self) -> bool {
        self.name.trim().is_empty()
            && self.phone.trim().is_empty()
            && self.id_number.trim().is_empty()
            && self.address.trim().is_empty()
            && self.email.trim().is_empty()
            && self.first_name.trim().is_empty()
            && self.last_name.trim().is_empty()
            && self.device_id.trim().is_empty()
            && self.account_id.trim().is_empty()
    }

    /// What identifies the same complainant across filings: the ID number, else the phone,
    /// else the account; None when anonymous.
    pub fn key(&self) -> Option<String> {
        let id = self.id_number.trim().to_uppercase();
        let phone: String = self.phone.chars().filter(|c| c.is_ascii_digit()).collect();
        if !id.is_empty() {
            Some(format!("id:{id}"))
        } else if !phone.is_empty() {
            Some(format!("phone:{phone}"))
        } else if !self.account.is_empty() {
            Some(format!("account:{}", self.account))
        } else if !self.email.trim().is_empty() {
            Some(format!("email:{}", self.email.trim().to_lowercase()))
        } else {
            None
        }
    }
}

/// A sealed identity as stored (the vault seals and opens it).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub cipher: Vec<u8>,
}

/// A filing, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewComplaint {
    pub region_code: String,
    pub kind: Kind,
    pub category: Category,
    pub channel: Channel,
    pub target_kind: TargetKind,
    pub target_id: String,
    pub target_department: String,
    pub description: String,
    pub attachments: Vec<String>,
    pub identity: Option<Identity>,
    pub fast_track: bool,
    pub location: Location,
}

/// Where the matter complained of happened, as an Open311 client gives it (`address_string`,
/// `address_id`, `lat`, `long`): public like the substance, returned as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Location {
    pub address: String,
    pub address_id: String,
    pub lat: Option<f64>,
    pub long: Option<f64>,
}

/// The raw filing, as the adapters (gRPC, Open311) hand it over.
#[derive(Debug, Clone, Default)]
pub struct Filing {
    pub region_code: String,
    pub kind: Option<Kind>,
    pub category: String,
    pub channel: Option<Channel>,
    pub target_kind: Option<TargetKind>,
    pub target_id: String,
    pub target_department: String,
    pub description: String,
    pub attachments: Vec<String>,
    pub identity: Identity,
    pub fast_track: bool,
    pub location: Location,
}

impl NewComplaint {
    /// Checks a filing against the region's negative list: every bad field listed. A
    /// retaliation report is filed under its own category whatever was given.
    pub fn parse(f: Filing, categories: &[Category]) -> AppResult<NewComplaint> {
        let mut v = Violations::new();
        v.check(
            xiaoneng_kit::region::RegionCode::parse(&f.region_code).is_ok(),
            "region_code",
            "must be a six-digit region code",
        );
        v.check(f.kind.is_some(), "kind", "must name the kind");
        v.check(f.channel.is_some(), "channel", "must name the channel");
        let code = if f.kind == Some(Kind::Retaliation) {
            "retaliation"
        } else {
            f.category.trim()
        };
        let category = categories.iter().find(|c| c.code == code).cloned();
        v.check(
            category.is_some(),
            "category",
            "must be a category of the region's negative list (ListCategories)",
        );
        v.check(
            f.target_kind.is_some(),
            "target.kind",
            "must name the target",
        );
        v.text(&f.target_id, "target.id", 100);
        v.text(&f.description, "description", 4000);
        v.check(
            f.attachments.len() <= 20 && f.attachments.iter().all(|a| a.len() <= 500),
            "attachments",
            "at most 20 references of at most 500 characters",
        );
        for (field, value, max) in [
            ("complainant.name", &f.identity.name, 50),
            ("complainant.phone", &f.identity.phone, 30),
            ("complainant.id_number", &f.identity.id_number, 30),
            ("complainant.address", &f.identity.address, 200),
        ] {
            v.check(
                value.chars().count() <= max,
                field,
                &format!("at most {max} characters"),
            );
        }
        let l = &f.location;
        v.check(
            l.lat.is_none_or(|x| (-90.0..=90.0).contains(&x)),
            "lat",
            "must lie between -90 and 90",
        );
        v.check(
            l.long.is_none_or(|x| (-180.0..=180.0).contains(&x)),
            "long",
            "must lie between -180 and 180",
        );
        v.check(
            l.lat.is_some() == l.long.is_some(),
            "long",
            "lat and long come together",
        );
        v.into_result()?;
        let identity =
            (!f.identity.is_empty() || !f.identity.account.is_empty()).then_some(f.identity);
        Ok(NewComplaint {
            region_code: f.region_code,
            kind: f.kind.expect("checked"),
            category: category.expect("checked"),
            channel: f.channel.expect("checked"),
            target_kind: f.target_kind.expect("checked"),
            target_id: f.target_id.trim().to_string(),
            target_department: f.target_department.trim().to_string(),
            description: f.description.trim().to_string(),
            attachments: f.attachments,
            identity,
            fast_track: f.fast_track,
            location: Location {
                address: f.location.address.trim().to_string(),
                address_id: f.location.address_id.trim().to_string(),
                ..f.location
            },
        })
    }

    /// Misconduct (吃拿卡要) and retaliation reports go straight to discipline inspection.
    pub fn to_discipline(&self) -> bool {
        self.category.misconduct || self.kind == Kind::Retaliation
    }
}

/// A complaint as stored (the sealed identity beside it, never in clear).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ComplaintRow {
    pub id: Uuid,
    pub region_code: String,
    pub kind: Kind,
    pub category: String,
    pub channel: Channel,
    pub target_kind: TargetKind,
    pub target_id: String,
    pub target_department: String,
    pub description: String,
    pub attachments: Vec<String>,
    pub anonymous: bool,
    pub fast_track: bool,
    pub state: State,
    pub assigned_to: String,
    pub to_discipline: bool,
    pub started_on: NaiveDate,
    pub due_on: Option<NaiveDate>,
    pub escalated: bool,
    pub extended: bool,
    pub extension_reason: String,
    pub finding: Option<Finding>,
    pub findings: String,
    pub responsible_unit: String,
    pub responsible_person: String,
    pub reply: String,
    pub satisfaction: String,
    pub callback_note: String,
    pub reopened: i32,
    pub merged: i32,
    pub linked_case_id: String,
    pub linked_complaint_id: String,
    pub filed_at: DateTime<Utc>,
    pub version: i64,
    /// HMAC of the filing account: a citizen finds their own without it being stored.
    pub filer_hash: String,
    pub address: String,
    pub address_id: String,
    pub lat: Option<f64>,
    pub long: Option<f64>,
    /// The last change of its state (filed, merged into, each step).
    pub updated_at: DateTime<Utc>,
    /// The filed description sealed (`description` holds it masked).
    pub text_key_id: Option<String>,
    pub text_nonce: Option<Vec<u8>>,
    pub text_cipher: Option<Vec<u8>>,
}

impl ComplaintRow {
    /// The sealed description, if it was sealed.
    pub fn sealed_text(&self) -> Option<Sealed> {
        Some(Sealed {
            key_id: self.text_key_id.clone()?,
            nonce: self.text_nonce.clone()?,
            cipher: self.text_cipher.clone()?,
        })
    }
}

/// A step of the closed loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Assign {
        unit: String,
    },
    Investigate,
    Conclude {
        finding: Finding,
        findings: String,
        responsible_unit: String,
        responsible_person: String,
    },
    Reply {
        text: String,
    },
    Callback {
        satisfaction: String,
        note: String,
    },
    Close,
}

const SATISFACTION: &[&str] = &["satisfied", "basically_satisfied", "not_satisfied"];

impl ComplaintRow {
    /// Whether the handling deadline runs (until the reply).
    pub fn deadline_runs(&self) -> bool {
        matches!(
            self.state,
            State::Registered | State::Assigned | State::Investigating | State::Concluded
        )
    }

    pub fn overdue(&self, today: NaiveDate) -> bool {
        self.deadline_runs() && self.due_on.is_some_and(|d| today > d)
    }

    /// Applies `step`; the state it left. On error nothing changed. A complaint assigned to
    /// discipline inspection is advanced only by an inspector (`inspector`).
    pub fn advance(&mut self, step: Step, inspector: bool) -> AppResult<State> {
        use State::*;
        let from = self.state;
        let illegal = || {
            AppError::precondition(
                Reason::IllegalStep.name(),
                format!(
                    "a complaint that is {} does not take this step",
                    from.name()
                ),
            )
        };
        if self.to_discipline && !inspector {
            return Err(AppError::PermissionDenied(
                "a complaint with discipline inspection is handled by inspectors".into(),
            ));
        }
        let required = |t: &str, field: &str| -> AppResult<String> {
            let t = t.trim();
            if t.is_empty() {
                Err(AppError::invalid(field, "is required for this step"))
            } else {
                Ok(t.to_string())
            }
        };
        match (from, step) {
            (Registered, Step::Assign { unit }) => {
                self.assigned_to = required(&unit, "unit")?;
                self.state = Assigned;
            }
            (Assigned, Step::Investigate) => self.state = Investigating,
            (
                Investigating,
                Step::Conclude {
                    finding,
                    findings,
                    responsible_unit,
                    responsible_person,
                },
            ) => {
                let findings = required(&findings, "text")?;
                if finding != Finding::NotSubstantiated {
                    let mut v = Violations::new();
                    v.text(&responsible_unit, "responsible_unit", 100);
                    v.text(&responsible_person, "responsible_person", 100);
                    v.into_result()?;
                }
                self.finding = Some(finding);
                self.findings = findings;
                self.responsible_unit = responsible_unit.trim().to_string();
                self.responsible_person = responsible_person.trim().to_string();
                self.state = Concluded;
            }
            (Concluded, Step::Reply { text }) => {
                self.reply = required(&text, "text")?;
                self.state = Replied;
            }
            (Replied, Step::Callback { satisfaction, note }) => {
                if self.anonymous {
                    return Err(AppError::precondition(
                        Reason::IllegalStep.name(),
                        "an anonymous complainant cannot be called back; close it",
                    ));
                }
                if !SATISFACTION.contains(&satisfaction.as_str()) {
                    return Err(AppError::invalid(
                        "satisfaction",
                        "must be satisfied, basically_satisfied or not_satisfied",
                    ));
                }
                self.satisfaction = satisfaction;
                self.callback_note = note.trim().to_string();
                self.state = CalledBack;
            }
            (CalledBack, Step::Close) => self.state = Closed,
            (Replied, Step::Close) if self.anonymous => self.state = Closed,
            _ => return Err(illegal()),
        }
        Ok(from)
    }

    /// The complainant reopens a called-back or closed complaint, once: investigation again,
    /// with the kind's limit from `today`.
    pub fn reopen(
        &mut self,
        limits: &Limits,
        cal: &Calendar,
        today: NaiveDate,
    ) -> AppResult<State> {
        let from = self.state;
        if !matches!(from, State::CalledBack | State::Closed) {
            return Err(AppError::precondition(
                Reason::IllegalStep.name(),
                "only a called-back or closed complaint is reopened",
            ));
        }
        if self.reopened >= 1 {
            return Err(AppError::precondition(
                Reason::ReopenedOnce.name(),
                "a complaint is reopened once",
            ));
        }
        self.reopened = 1;
        self.state = State::Investigating;
        self.started_on = today;
        self.due_on = Some(due(cal, today, limits.days(self.kind, self.fast_track)));
        self.escalated = false;
        Ok(from)
    }

    /// Extends the running deadline once by the region's extension days, with a reason.
    pub fn extend(&mut self, reason: &str, limits: &Limits, cal: &Calendar) -> AppResult<()> {
        if reason.trim().is_empty() {
            return Err(AppError::invalid("reason", "an extension needs its reason"));
        }
        if !self.deadline_runs() {
            return Err(AppError::precondition(
                Reason::IllegalStep.name(),
                "no deadline runs on a replied complaint",
            ));
        }
        if self.extended {
            return Err(AppError::precondition(
                Reason::ExtendedOnce.name(),
                "a deadline is extended once",
            ));
        }
        let from = self.due_on.unwrap_or(self.started_on);
        self.due_on = Some(cal.add_working_days(from, limits.extension_days));
        self.extended = true;
        self.extension_reason = reason.trim().to_string();
        Ok(())
    }
}

/// How much of a complaint a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The complainant: their own complaint, as filed.
    Complainant,
    /// Discipline inspection: the whole substance unmasked (the identity only through an
    /// audited read).
    Inspector,
    /// Everyone else (the accused unit, the hall, the efficiency office): the substance with
    /// personal data in the texts masked.
    Substance,
}

impl View {
    /// The description (and the other free texts) as this reader sees them.
    pub fn text(self, s: &str) -> String {
        match self {
            View::Complainant | View::Inspector => s.to_string(),
            View::Substance => xiaoneng_kit::mask::text(s),
        }
    }
}

/// The protobuf names of the domain's enums.
pub mod wire {
    use xiaoneng_proto::complaint::v1 as pb;

    pub fn state(s: super::State) -> pb::State {
        match s {
            super::State::Registered => pb::State::Registered,
            super::State::Assigned => pb::State::Assigned,
            super::State::Investigating => pb::State::Investigating,
            super::State::Concluded => pb::State::Concluded,
            super::State::Replied => pb::State::Replied,
            super::State::CalledBack => pb::State::CalledBack,
            super::State::Closed => pb::State::Closed,
        }
    }

    pub fn kind(k: super::Kind) -> pb::Kind {
        match k {
            super::Kind::Urgent => pb::Kind::Urgent,
            super::Kind::Consultation => pb::Kind::Consultation,
            super::Kind::Complaint => pb::Kind::Complaint,
            super::Kind::Retaliation => pb::Kind::Retaliation,
        }
    }

    pub fn channel(c: super::Channel) -> pb::Channel {
        use super::Channel as C;
        match c {
            C::Hotline => pb::Channel::Hotline,
            C::Web => pb::Channel::Web,
            C::QrCode => pb::Channel::QrCode,
            C::Mailbox => pb::Channel::Mailbox,
            C::OnSite => pb::Channel::OnSite,
            C::Open311 => pb::Channel::Open311,
        }
    }

    pub fn target_kind(t: super::TargetKind) -> pb::TargetKind {
        use super::TargetKind as T;
        match t {
            T::Department => pb::TargetKind::Department,
            T::Window => pb::TargetKind::Window,
            T::Staff => pb::TargetKind::Staff,
            T::Matter => pb::TargetKind::Matter,
            T::Case => pb::TargetKind::Case,
            T::Ticket => pb::TargetKind::Ticket,
            T::Complaint => pb::TargetKind::Complaint,
        }
    }

    pub fn finding(f: Option<super::Finding>) -> pb::Finding {
        match f {
            Some(super::Finding::Substantiated) => pb::Finding::Substantiated,
            Some(super::Finding::PartlySubstantiated) => pb::Finding::PartlySubstantiated,
            Some(super::Finding::NotSubstantiated) => pb::Finding::NotSubstantiated,
            None => pb::Finding::Unspecified,
        }
    }

    pub fn target(c: &super::ComplaintRow) -> pb::Target {
        pb::Target {
            kind: target_kind(c.target_kind) as i32,
            id: c.target_id.clone(),
            department: c.target_department.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn cal() -> Calendar {
        xiaoneng_calendar::Calendars::national_only().for_region("410702")
    }

    fn filing() -> Filing {
        Filing {
            region_code: "410702".into(),
            kind: Some(Kind::Complaint),
            category: "buck_passing".into(),
            channel: Some(Channel::Hotline),
            target_kind: Some(TargetKind::Window),
            target_id: "ZH01".into(),
            description: "窗口让我去三个部门盖章".into(),
            ..Default::default()
        }
    }

    fn row(n: &NewComplaint, on: NaiveDate) -> ComplaintRow {
        let limits = Limits::default();
        ComplaintRow {
            id: Uuid::nil(),
            region_code: n.region_code.clone(),
            kind: n.kind,
            category: n.category.code.clone(),
            channel: n.channel,
            target_kind: n.target_kind,
            target_id: n.target_id.clone(),
            target_department: String::new(),
            description: n.description.clone(),
            attachments: vec![],
            anonymous: n.identity.is_none(),
            fast_track: n.fast_track,
            state: State::Registered,
            assigned_to: String::new(),
            to_discipline: n.to_discipline(),
            started_on: on,
            due_on: Some(due(&cal(), on, limits.days(n.kind, n.fast_track))),
            escalated: false,
            extended: false,
            extension_reason: String::new(),
            finding: None,
            findings: String::new(),
            responsible_unit: String::new(),
            responsible_person: String::new(),
            reply: String::new(),
            satisfaction: String::new(),
            callback_note: String::new(),
            reopened: 0,
            merged: 0,
            linked_case_id: String::new(),
            linked_complaint_id: String::new(),
            filed_at: Utc::now(),
            version: 1,
            filer_hash: String::new(),
            address: String::new(),
            address_id: String::new(),
            lat: None,
            long: None,
            updated_at: Utc::now(),
            text_key_id: None,
            text_nonce: None,
            text_cipher: None,
        }
    }

    #[test]
    fn names_are_fixed() {
        let states: Vec<_> = State::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            states,
            [
                "registered",
                "assigned",
                "investigating",
                "concluded",
                "replied",
                "called_back",
                "closed"
            ]
        );
        let codes: Vec<_> = national_categories().into_iter().map(|c| c.code).collect();
        assert_eq!(codes.len(), 8);
    }

    #[test]
    fn every_bad_field_of_a_filing_is_listed() {
        let bad = Filing {
            region_code: "41".into(),
            kind: None,
            category: "noise".into(),
            channel: None,
            target_kind: None,
            ..Default::default()
        };
        let AppError::InvalidArgument(v) =
            NewComplaint::parse(bad, &national_categories()).unwrap_err()
        else {
            panic!("invalid")
        };
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "region_code",
                "kind",
                "channel",
                "category",
                "target.kind",
                "target.id",
                "description"
            ]
        );
    }

    /// Filed Wed 30 Sep 2026: a complaint's 10 working days skip National Day (1-7 Oct) and
    /// count Sat 10 Oct (make-up): 8, 9, 10, 12, 13, 14, 15, 16, 19, 20 → Tue 20 Oct; a
    /// consultation's 3: 8, 9, 10 → Sat 10 Oct; urgent on Thu 1 Oct (a holiday) → Thu 8 Oct;
    /// the fast track 1 → Thu 8 Oct.
    #[test]
    fn limits_cross_national_day_on_the_calendar() {
        let (c, l) = (cal(), Limits::default());
        let d = day("2026-09-30");
        assert_eq!(
            due(&c, d, l.days(Kind::Complaint, false)),
            day("2026-10-20")
        );
        assert_eq!(
            due(&c, d, l.days(Kind::Consultation, false)),
            day("2026-10-10")
        );
        assert_eq!(
            due(&c, day("2026-10-01"), l.days(Kind::Urgent, false)),
            day("2026-10-08")
        );
        assert_eq!(due(&c, d, l.days(Kind::Complaint, true)), day("2026-10-08"));
    }

    #[test]
    fn misconduct_and_retaliation_go_to_discipline() {
        let cats = national_categories();
        let n = NewComplaint::parse(filing(), &cats).unwrap();
        assert!(!n.to_discipline());
        let bribery = Filing {
            category: "bribery".into(),
            ..filing()
        };
        assert!(NewComplaint::parse(bribery, &cats).unwrap().to_discipline());
        let retaliation = Filing {
            kind: Some(Kind::Retaliation),
            category: "slow_action".into(),
            ..filing()
        };
        let r = NewComplaint::parse(retaliation, &cats).unwrap();
        assert_eq!(
            (r.category.code.as_str(), r.to_discipline()),
            ("retaliation", true)
        );
    }

    #[test]
    fn the_loop_runs_in_order_reopens_once_and_extends_once() {
        let (c, l) = (cal(), Limits::default());
        let n = NewComplaint::parse(
            Filing {
                identity: Identity {
                    phone: "13800000000".into(),
                    ..Default::default()
                },
                ..filing()
            },
            &national_categories(),
        )
        .unwrap();
        let mut r = row(&n, day("2026-09-30"));
        let early = r
            .advance(Step::Reply { text: "x".into() }, false)
            .unwrap_err();
        assert!(matches!(
            early,
            AppError::FailedPrecondition {
                reason: "ILLEGAL_STEP",
                ..
            }
        ));
        assert_eq!(r.state, State::Registered, "a refused step changes nothing");
        r.extend("需调取录像", &l, &c).unwrap();
        // 20 Oct + 5 working days: 21, 22, 23, 26, 27 → Tue 27 Oct.
        assert_eq!(r.due_on, Some(day("2026-10-27")));
        assert!(matches!(
            r.extend("再延", &l, &c),
            Err(AppError::FailedPrecondition {
                reason: "EXTENDED_ONCE",
                ..
            })
        ));
        r.advance(
            Step::Assign {
                unit: "行政审批局".into(),
            },
            false,
        )
        .unwrap();
        r.advance(Step::Investigate, false).unwrap();
        let no_person = r
            .advance(
                Step::Conclude {
                    finding: Finding::Substantiated,
                    findings: "属实".into(),
                    responsible_unit: "行政审批局".into(),
                    responsible_person: String::new(),
                },
                false,
            )
            .unwrap_err();
        assert!(matches!(no_person, AppError::InvalidArgument(_)));
        r.advance(
            Step::Conclude {
                finding: Finding::Substantiated,
                findings: "属实".into(),
                responsible_unit: "行政审批局".into(),
                responsible_person: "s1".into(),
            },
            false,
        )
        .unwrap();
        r.advance(
            Step::Reply {
                text: "已整改".into(),
            },
            false,
        )
        .unwrap();
        assert!(!r.deadline_runs() && !r.overdue(day("2027-01-01")));
        r.advance(
            Step::Callback {
                satisfaction: "not_satisfied".into(),
                note: "仍不满意".into(),
            },
            false,
        )
        .unwrap();
        r.reopen(&l, &c, day("2026-11-02")).unwrap();
        // Mon 2 Nov + 10 working days: 3, 4, 5, 6, 9, 10, 11, 12, 13, 16 → Mon 16 Nov.
        assert_eq!(
            (r.state, r.due_on),
            (State::Investigating, Some(day("2026-11-16")))
        );
        r.state = State::Closed;
        assert!(matches!(
            r.reopen(&l, &c, day("2026-11-20")),
            Err(AppError::FailedPrecondition {
                reason: "REOPENED_ONCE",
                ..
            })
        ));
    }

    #[test]
    fn only_inspectors_advance_a_discipline_case_and_anonymous_ones_close_without_callback() {
        let cats = national_categories();
        let n = NewComplaint::parse(
            Filing {
                category: "bribery".into(),
                ..filing()
            },
            &cats,
        )
        .unwrap();
        let mut r = row(&n, day("2026-11-02"));
        r.state = State::Assigned;
        assert!(matches!(
            r.advance(Step::Investigate, false),
            Err(AppError::PermissionDenied(_))
        ));
        r.advance(Step::Investigate, true).unwrap();
        r.state = State::Replied;
        assert!(r.anonymous);
        assert!(r
            .advance(
                Step::Callback {
                    satisfaction: "satisfied".into(),
                    note: String::new()
                },
                true
            )
            .is_err());
        r.advance(Step::Close, true).unwrap();
        assert_eq!(r.state, State::Closed);
    }

    #[test]
    fn the_same_complainant_is_known_by_id_number_then_phone_then_account() {
        let a = Identity {
            phone: "138-0000-0000".into(),
            ..Default::default()
        };
        assert_eq!(a.key().as_deref(), Some("phone:13800000000"));
        let b = Identity {
            id_number: "41070219900101123x".into(),
            phone: "1".into(),
            ..Default::default()
        };
        assert_eq!(b.key().as_deref(), Some("id:41070219900101123X"));
        assert_eq!(Identity::default().key(), None);
    }

    #[test]
    fn the_accused_unit_sees_the_texts_masked() {
        let s = "我是李女士, 电话13912345678";
        assert_eq!(View::Substance.text(s), "我是*女士, 电话139****5678");
        assert_eq!(View::Inspector.text(s), s);
    }
}
