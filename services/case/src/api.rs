//! The gRPC adapter: each handler checks the caller's roles against [`AUTHORIZATION`], parses
//! the request (every bad field listed), calls one use case of [`crate::service`] with the
//! domain rule to apply, and maps the case to protobuf.

use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use xiaoneng_calendar::{Calendar, Calendars, Scope};
use xiaoneng_kit::auth::{self, roles, Audience, Caller};
use xiaoneng_kit::calendar::{self, LiveCalendars, StoredNotice};
use xiaoneng_kit::catalog::Catalog;
use xiaoneng_kit::clock::BusinessClock;
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::region::{self, RegionCode};
use xiaoneng_kit::{parse_date_field, AppError, AppResult, Violations};
use xiaoneng_proto::case::v1 as pb;

use crate::domain::{
    self, date, Action, Application, CaseRow, FiredRow, HistoryRow, InquiryRecord, InquiryRow,
    Policy, Referral, State, CERTIFICATE_DAYS,
};
use crate::service::{self, Change, Ctx};

pub struct CaseApi {
    pool: PgPool,
    catalog: Catalog,
    calendars: LiveCalendars,
    policy: Policy,
    clock: BusinessClock,
}

impl CaseApi {
    pub fn new(
        pool: PgPool,
        catalog: Catalog,
        calendars: LiveCalendars,
        policy: Policy,
        clock: BusinessClock,
    ) -> Self {
        CaseApi {
            pool,
            catalog,
            calendars,
            policy,
            clock,
        }
    }

    /// What a write needs, on the calendars of `snap` (one snapshot for the whole change).
    fn ctx<'a>(&self, snap: &'a calendar::Snapshot) -> Ctx<'a> {
        Ctx {
            calendars: &snap.calendars,
            epoch: snap.epoch,
            policy: self.policy,
            now: self.clock.now(),
        }
    }
}

fn parse_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| AppError::invalid("id", "must be a case id"))
}

fn state_from_name(s: &str) -> pb::CaseState {
    State::from_name(s)
        .map(State::wire)
        .unwrap_or(pb::CaseState::Unspecified)
}

fn referral_pb(r: &Referral) -> pb::Referral {
    pb::Referral {
        from_department: r.from_department.clone(),
        to_department: r.to_department.clone(),
        handler: r.handler.clone(),
        reason: r.reason.clone(),
        referred_by: r.by.clone(),
        time: Some(xiaoneng_kit::timestamp(r.at)),
    }
}

fn level_pb(kind: &str) -> pb::EscalationLevel {
    match domain::Escalation::from_name(kind) {
        Some(domain::Escalation::Warning) => pb::EscalationLevel::Warning,
        Some(domain::Escalation::Yellow) => pb::EscalationLevel::YellowCard,
        Some(domain::Escalation::Red) => pb::EscalationLevel::RedCard,
        _ => pb::EscalationLevel::Unspecified,
    }
}

fn to_pb(
    row: CaseRow,
    history: Vec<HistoryRow>,
    fired: Vec<FiredRow>,
    calendars: &Calendars,
    today: chrono::NaiveDate,
) -> pb::Case {
    let cal = calendars.for_region(&row.region_code);
    let running = domain::running_clocks(&row);
    let paused = running
        .first()
        .map(|(_, c)| c.paused_working_days(&cal, today))
        .unwrap_or(0);
    let clocks: Vec<pb::ClockState> = running
        .iter()
        .map(|(name, c)| {
            let deadline = c.deadline(&cal, today);
            pb::ClockState {
                clock: name.clone(),
                limit_days: (c.limit + c.extension) as i32,
                deadline: deadline.to_string(),
                provisional: !cal.covers_span(c.start, deadline),
            }
        })
        .collect();
    let deadline_provisional = clocks.iter().any(|c| c.provisional);
    let rec = row.body.0;
    let certificate_deadline = rec
        .decided_on
        .map(|d| cal.add_working_days(d, CERTIFICATE_DAYS));
    let missing = rec.case.missing().into_iter().collect();
    pb::Case {
        id: row.id.to_string(),
        region_code: row.region_code,
        matter_id: row.matter_id.to_string(),
        matter_version: row.matter_version,
        matter_name: row.matter_name,
        state: State::wire(rec.case.state) as i32,
        version: row.version,
        applicant: Some(pb::Applicant {
            name: rec.applicant_name,
            phone: rec.applicant_phone,
            agent_name: rec.agent_name,
            agent_kind: rec.agent_kind,
            citizen_id: row.applicant_citizen_id,
        }),
        supplied_materials: rec.case.supplied.iter().cloned().collect(),
        missing_materials: missing,
        notices: rec
            .case
            .notices
            .iter()
            .zip(rec.notices.iter())
            .map(|(n, m)| pb::CorrectionNotice {
                materials: n.materials.clone(),
                reason: m.reason.clone(),
                time: Some(xiaoneng_kit::timestamp(m.at)),
                violation_materials: m.violation.clone(),
            })
            .collect(),
        first_responsible: row.first_responsible,
        submitted_date: row.submitted_on.to_string(),
        accepted_date: date(row.accepted_on),
        promised_deadline: date(row.promised_deadline),
        statutory_deadline: date(row.statutory_deadline),
        tolerated_materials: rec.tolerated,
        tolerance_due_date: date(row.tolerance_due),
        review: rec
            .case
            .review
            .iter()
            .map(|(d, c)| pb::ReviewStep {
                department: d.clone(),
                concluded: c.is_some(),
                approved: c.as_ref().is_some_and(|(ok, _)| *ok),
                reason: c.as_ref().map(|(_, r)| r.clone()).unwrap_or_default(),
            })
            .collect(),
        denial_reason: rec.case.denial_reason.clone().unwrap_or_default(),
        paused_working_days: paused as i32,
        extension_days: rec.extension as i32,
        decided_date: date(rec.decided_on),
        certificate_deadline: date(certificate_deadline),
        certificate_number: rec.certificate_number,
        delivery_method: rec.delivery_method,
        handling_department: rec.handling_department,
        handler: rec.handler,
        referrals: rec.referrals.iter().map(referral_pb).collect(),
        joint: rec.joint,
        supervised: rec.supervised,
        escalations: fired
            .into_iter()
            .map(|f| pb::Escalation {
                clock: f.clock,
                level: level_pb(&f.kind) as i32,
                deadline: date(f.deadline),
                time: Some(xiaoneng_kit::timestamp(f.fired_at)),
            })
            .collect(),
        clocks,
        review_step: rec
            .review_step
            .as_ref()
            .map(|(n, _)| n.clone())
            .unwrap_or_default(),
        review_step_limit_days: rec
            .review_step
            .as_ref()
            .map(|(_, l)| *l as i32)
            .unwrap_or(0),
        review_started_date: date(rec.review_started_on),
        deemed_accepted: rec.deemed_accepted,
        deadline_provisional,
        history: history
            .into_iter()
            .map(|h| pb::HistoryEntry {
                action: h.action,
                from_state: state_from_name(&h.from_state) as i32,
                to_state: state_from_name(&h.to_state) as i32,
                actor: h.actor,
                actor_role: h.actor_role,
                reason: h.reason,
                time: Some(xiaoneng_kit::timestamp(h.at)),
            })
            .collect(),
    }
}

fn primary_role(caller: &Caller) -> String {
    caller.roles.first().cloned().unwrap_or_default()
}

impl CaseApi {
    /// Runs one change and answers with the case and its history.
    async fn change<F>(
        &self,
        caller: &Caller,
        id: &str,
        expected: i64,
        action: &str,
        reason: &str,
        rule: F,
    ) -> AppResult<pb::Case>
    where
        F: FnOnce(&mut CaseRow, &Calendar) -> AppResult<domain::Effects>,
    {
        let id = parse_id(id)?;
        let role = primary_role(caller);
        let audience = caller.audience();
        let ch = Change {
            scope: &audience,
            expected_version: expected,
            action,
            actor: &caller.subject,
            actor_role: &role,
            reason,
        };
        let snap = self.calendars.current();
        service::change(&self.pool, &self.ctx(&snap), id, &ch, rule).await?;
        self.load(&audience, id).await
    }

    /// The case as the API shows it: with its history and fired escalations.
    async fn load(&self, scope: &Audience, id: Uuid) -> AppResult<pb::Case> {
        let (row, history, fired) = service::view(&self.pool, scope, id).await?;
        let snap = self.calendars.current();
        Ok(to_pb(
            row,
            history,
            fired,
            &snap.calendars,
            self.clock.today(),
        ))
    }
}

const WINDOW_ROLES: &[&str] = &[roles::CLERK];
const REVIEW_ROLES: &[&str] = &[roles::REVIEWER];
/// Who may refer a case or an inquiry on (首问负责).
const REFER_ROLES: &[&str] = &[roles::CLERK, roles::REVIEWER, roles::HALL_MANAGER];
/// Who may list cases and inquiries of their region.
const LIST_ROLES: &[&str] = &[
    roles::SUPERVISOR,
    roles::HALL_MANAGER,
    roles::INSPECTOR,
    roles::CLERK,
    roles::REVIEWER,
];
/// Who may read one case: its applicant (a citizen reads only their own) and staff of its region.
const READ_ROLES: &[&str] = &[
    roles::CITIZEN,
    roles::CLERK,
    roles::REVIEWER,
    roles::HALL_MANAGER,
    roles::SUPERVISOR,
    roles::INSPECTOR,
    roles::SYSTEM,
];
/// Who loads calendar notices: the efficiency office (a national year needs a city or
/// province office, a region's overlay the office of that region) and the platform.
const CALENDAR_ROLES: &[&str] = &[roles::SUPERVISOR, roles::SYSTEM];
/// Who sets key-project flags (联办, 督办).
const SUPERVISE_ROLES: &[&str] = &[roles::SUPERVISOR, roles::HALL_MANAGER];

/// Who may call what: every method of the service and the roles that may call it. Each handler
/// asks this table first; where a role may act (own records, region, sub-regions) is the
/// caller's audience, checked against the record (`kit::auth::Audience`).
pub const AUTHORIZATION: auth::Authorization = &[
    ("SubmitCase", &[roles::CLERK, roles::CITIZEN, roles::SYSTEM]),
    ("GetCase", READ_ROLES),
    ("StartPreReview", WINDOW_ROLES),
    ("RequestCorrection", WINDOW_ROLES),
    ("SupplyMaterials", &[roles::CLERK, roles::CITIZEN]),
    ("AcceptCase", WINDOW_ROLES),
    ("RefuseCase", WINDOW_ROLES),
    ("StartReview", &[roles::CLERK, roles::REVIEWER]),
    ("ConcludeReviewStep", REVIEW_ROLES),
    ("ExtendDeadline", REVIEW_ROLES),
    ("SuspendCase", REVIEW_ROLES),
    ("ResumeCase", REVIEW_ROLES),
    ("IssueCertificate", &[roles::CLERK, roles::REVIEWER]),
    ("DeliverCase", WINDOW_ROLES),
    ("CloseCase", WINDOW_ROLES),
    ("WithdrawCase", &[roles::CLERK, roles::CITIZEN]),
    ("SupplyToleratedMaterials", &[roles::CLERK, roles::CITIZEN]),
    ("ReferCase", REFER_ROLES),
    ("SetCaseFlags", SUPERVISE_ROLES),
    ("ListCases", LIST_ROLES),
    (
        "OpenInquiry",
        &[roles::CLERK, roles::HALL_MANAGER, roles::REVIEWER],
    ),
    ("ReferInquiry", REFER_ROLES),
    ("ListInquiries", LIST_ROLES),
    ("LoadCalendarNotice", CALENDAR_ROLES),
    ("GetCalendarCoverage", LIST_ROLES),
];

fn authorize(caller: &Caller, method: &str) -> Result<(), AppError> {
    caller.authorize(AUTHORIZATION, method)
}

/// A transition that needs only the domain rule.
fn plain(action: Action) -> impl FnOnce(&mut CaseRow, &Calendar) -> AppResult<domain::Effects> {
    move |row, _| row.body.case.apply(&action).map_err(AppError::from)
}

#[tonic::async_trait]
impl pb::case_service_server::CaseService for CaseApi {
    async fn submit_case(
        &self,
        req: Request<pb::SubmitCaseRequest>,
    ) -> Result<Response<pb::SubmitCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "SubmitCase")?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let region = RegionCode::parse_field(&r.region_code, "region_code", &mut v);
        let matter_id = Uuid::parse_str(&r.matter_id).ok();
        v.check(matter_id.is_some(), "matter_id", "must be a matter id");
        let applicant = r.applicant.unwrap_or_default();
        v.text(&applicant.name, "applicant.name", 100);
        let agent = applicant.agent_name.trim().to_string();
        if agent.is_empty() {
            v.check(
                applicant.agent_kind.is_empty(),
                "applicant.agent_kind",
                "needs applicant.agent_name",
            );
        } else {
            v.check(
                matches!(applicant.agent_kind.as_str(), "代办" | "帮办"),
                "applicant.agent_kind",
                "must be 代办 or 帮办 when an agent acts",
            );
        }
        let inquiry = if r.inquiry_id.is_empty() {
            None
        } else {
            let id = Uuid::parse_str(&r.inquiry_id).ok();
            v.check(id.is_some(), "inquiry_id", "must be an inquiry id");
            id
        };
        // A citizen applies for themself; staff name the applicant's account when there is one.
        let applicant_citizen_id = if caller.acts_as_citizen() {
            v.check(
                applicant.citizen_id.is_empty() || applicant.citizen_id == caller.subject,
                "applicant.citizen_id",
                "a citizen applies for themself",
            );
            caller.subject.clone()
        } else {
            applicant.citizen_id.trim().to_string()
        };
        v.into_result()?;
        let region = region.expect("checked");
        caller.require_region(&region)?;
        let app = Application {
            region,
            matter_id: matter_id.expect("checked"),
            applicant_name: applicant.name.trim().to_string(),
            applicant_phone: applicant.phone,
            agent_name: agent,
            agent_kind: applicant.agent_kind,
            applicant_citizen_id,
            supplied: r.supplied_materials,
            inquiry,
            actor: caller.subject.clone(),
            actor_role: primary_role(&caller),
        };
        let request_id = Some(r.request_id.as_str()).filter(|s| !s.is_empty());
        let snap = self.calendars.current();
        let ctx = self.ctx(&snap);
        let row = service::apply(&self.pool, &self.catalog, &ctx, app, &caller, request_id).await?;
        Ok(Response::new(pb::SubmitCaseResponse {
            case: Some(self.load(&caller.audience(), row.id).await?),
        }))
    }

    async fn get_case(
        &self,
        req: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::GetCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "GetCase")?;
        let id = parse_id(&req.get_ref().id)?;
        Ok(Response::new(pb::GetCaseResponse {
            case: Some(self.load(&caller.audience(), id).await?),
        }))
    }

    async fn start_pre_review(
        &self,
        req: Request<pb::StartPreReviewRequest>,
    ) -> Result<Response<pb::StartPreReviewResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "StartPreReview")?;
        let r = req.into_inner();
        let rule = plain(Action::StartPreReview);
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "start_pre_review",
                "",
                rule,
            )
            .await?;
        Ok(Response::new(pb::StartPreReviewResponse {
            case: Some(case),
        }))
    }

    async fn request_correction(
        &self,
        req: Request<pb::RequestCorrectionRequest>,
    ) -> Result<Response<pb::RequestCorrectionResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "RequestCorrection")?;
        let r = req.into_inner();
        // The business clock, like every other stamp: deemed acceptance reads this date.
        let at = self.clock.now();
        let why = r.reason.clone();
        let rule = move |row: &mut CaseRow, _: &Calendar| {
            row.request_correction(r.materials, r.reason, at)
        };
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "request_correction",
                &why,
                rule,
            )
            .await?;
        Ok(Response::new(pb::RequestCorrectionResponse {
            case: Some(case),
        }))
    }

    async fn supply_materials(
        &self,
        req: Request<pb::SupplyMaterialsRequest>,
    ) -> Result<Response<pb::SupplyMaterialsResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "SupplyMaterials")?;
        let r = req.into_inner();
        let rule = |row: &mut CaseRow, _: &Calendar| row.supply(&r.materials);
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "supply_materials",
                "",
                rule,
            )
            .await?;
        Ok(Response::new(pb::SupplyMaterialsResponse {
            case: Some(case),
        }))
    }

    async fn accept_case(
        &self,
        req: Request<pb::AcceptCaseRequest>,
    ) -> Result<Response<pb::AcceptCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "AcceptCase")?;
        let r = req.into_inner();
        let today = self.clock.today();
        let due = if r.tolerance_due_date.is_empty() {
            None
        } else {
            Some(parse_date_field(
                &r.tolerance_due_date,
                "tolerance_due_date",
                today,
            )?)
        };
        let rule = |row: &mut CaseRow, cal: &Calendar| row.accept(due, cal, today);
        let case = self
            .change(&caller, &r.id, r.expected_version, "accept", "", rule)
            .await?;
        Ok(Response::new(pb::AcceptCaseResponse { case: Some(case) }))
    }

    async fn refuse_case(
        &self,
        req: Request<pb::RefuseCaseRequest>,
    ) -> Result<Response<pb::RefuseCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "RefuseCase")?;
        let r = req.into_inner();
        let action = Action::Refuse {
            reason: r.reason.clone(),
        };
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "refuse",
                &r.reason,
                plain(action),
            )
            .await?;
        Ok(Response::new(pb::RefuseCaseResponse { case: Some(case) }))
    }

    async fn start_review(
        &self,
        req: Request<pb::StartReviewRequest>,
    ) -> Result<Response<pb::StartReviewResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "StartReview")?;
        let r = req.into_inner();
        let today = self.clock.today();
        let reason = if r.step.is_empty() {
            String::new()
        } else {
            format!("环节: {}", r.step)
        };
        let rule =
            move |row: &mut CaseRow, _: &Calendar| row.start_review(r.departments, &r.step, today);
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "start_review",
                &reason,
                rule,
            )
            .await?;
        Ok(Response::new(pb::StartReviewResponse { case: Some(case) }))
    }

    async fn conclude_review_step(
        &self,
        req: Request<pb::ConcludeReviewStepRequest>,
    ) -> Result<Response<pb::ConcludeReviewStepResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "ConcludeReviewStep")?;
        let r = req.into_inner();
        if caller
            .department
            .as_deref()
            .is_some_and(|d| d != r.department)
        {
            return Err(AppError::PermissionDenied(format!(
                "a reviewer of {:?} cannot conclude for {}",
                caller.department, r.department
            ))
            .into());
        }
        let today = self.clock.today();
        let why = r.reason.clone();
        let rule = move |row: &mut CaseRow, _: &Calendar| {
            row.conclude(r.department, r.approve, r.reason, today)
        };
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "conclude_review_step",
                &why,
                rule,
            )
            .await?;
        Ok(Response::new(pb::ConcludeReviewStepResponse {
            case: Some(case),
        }))
    }

    async fn extend_deadline(
        &self,
        req: Request<pb::ExtendDeadlineRequest>,
    ) -> Result<Response<pb::ExtendDeadlineResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "ExtendDeadline")?;
        let r = req.into_inner();
        let mut v = Violations::new();
        v.text(&r.reason, "reason", 500);
        v.text(&r.approver, "approver", 100);
        v.into_result()?;
        let today = self.clock.today();
        let reason = format!("{} (批准: {})", r.reason.trim(), r.approver.trim());
        let rule = move |row: &mut CaseRow, cal: &Calendar| row.extend(r.days, cal, today);
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "extend_deadline",
                &reason,
                rule,
            )
            .await?;
        Ok(Response::new(pb::ExtendDeadlineResponse {
            case: Some(case),
        }))
    }

    async fn suspend_case(
        &self,
        req: Request<pb::SuspendCaseRequest>,
    ) -> Result<Response<pb::SuspendCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "SuspendCase")?;
        let r = req.into_inner();
        let today = self.clock.today();
        let action = Action::Suspend {
            reason: r.reason.clone(),
        };
        let rule = move |row: &mut CaseRow, cal: &Calendar| row.pause(&action, cal, today);
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "suspend",
                &r.reason,
                rule,
            )
            .await?;
        Ok(Response::new(pb::SuspendCaseResponse { case: Some(case) }))
    }

    async fn resume_case(
        &self,
        req: Request<pb::ResumeCaseRequest>,
    ) -> Result<Response<pb::ResumeCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "ResumeCase")?;
        let r = req.into_inner();
        let today = self.clock.today();
        let rule = move |row: &mut CaseRow, cal: &Calendar| row.pause(&Action::Resume, cal, today);
        let case = self
            .change(&caller, &r.id, r.expected_version, "resume", "", rule)
            .await?;
        Ok(Response::new(pb::ResumeCaseResponse { case: Some(case) }))
    }

    async fn issue_certificate(
        &self,
        req: Request<pb::IssueCertificateRequest>,
    ) -> Result<Response<pb::IssueCertificateResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "IssueCertificate")?;
        let r = req.into_inner();
        let mut v = Violations::new();
        v.text(&r.certificate_number, "certificate_number", 64);
        v.into_result()?;
        let rule = |row: &mut CaseRow, _: &Calendar| row.issue_certificate(&r.certificate_number);
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "issue_certificate",
                "",
                rule,
            )
            .await?;
        Ok(Response::new(pb::IssueCertificateResponse {
            case: Some(case),
        }))
    }

    async fn deliver_case(
        &self,
        req: Request<pb::DeliverCaseRequest>,
    ) -> Result<Response<pb::DeliverCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "DeliverCase")?;
        let r = req.into_inner();
        let mut v = Violations::new();
        v.text(&r.method, "method", 50);
        v.into_result()?;
        let rule = |row: &mut CaseRow, _: &Calendar| row.deliver(&r.method);
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "deliver",
                &r.method,
                rule,
            )
            .await?;
        Ok(Response::new(pb::DeliverCaseResponse { case: Some(case) }))
    }

    async fn close_case(
        &self,
        req: Request<pb::CloseCaseRequest>,
    ) -> Result<Response<pb::CloseCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "CloseCase")?;
        let r = req.into_inner();
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "close",
                "",
                plain(Action::Close),
            )
            .await?;
        Ok(Response::new(pb::CloseCaseResponse { case: Some(case) }))
    }

    async fn withdraw_case(
        &self,
        req: Request<pb::WithdrawCaseRequest>,
    ) -> Result<Response<pb::WithdrawCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "WithdrawCase")?;
        let r = req.into_inner();
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "withdraw",
                &r.reason,
                plain(Action::Withdraw),
            )
            .await?;
        Ok(Response::new(pb::WithdrawCaseResponse { case: Some(case) }))
    }

    async fn supply_tolerated_materials(
        &self,
        req: Request<pb::SupplyToleratedMaterialsRequest>,
    ) -> Result<Response<pb::SupplyToleratedMaterialsResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "SupplyToleratedMaterials")?;
        let r = req.into_inner();
        let reason = r.materials.join("、");
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "supply_tolerated",
                &reason,
                move |row: &mut CaseRow, _: &Calendar| row.supply_tolerated(&r.materials),
            )
            .await?;
        Ok(Response::new(pb::SupplyToleratedMaterialsResponse {
            case: Some(case),
        }))
    }

    async fn refer_case(
        &self,
        req: Request<pb::ReferCaseRequest>,
    ) -> Result<Response<pb::ReferCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "ReferCase")?;
        let r = req.into_inner();
        let referral = self.referral(&caller, &r.department, &r.handler, &r.reason)?;
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "refer",
                &r.reason,
                move |row: &mut CaseRow, _: &Calendar| row.refer(referral),
            )
            .await?;
        Ok(Response::new(pb::ReferCaseResponse { case: Some(case) }))
    }

    async fn set_case_flags(
        &self,
        req: Request<pb::SetCaseFlagsRequest>,
    ) -> Result<Response<pb::SetCaseFlagsResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "SetCaseFlags")?;
        let r = req.into_inner();
        let mut v = Violations::new();
        v.text(&r.reason, "reason", 500);
        v.into_result()?;
        let rule = |row: &mut CaseRow, _: &Calendar| row.set_flags(r.joint, r.supervised);
        let case = self
            .change(
                &caller,
                &r.id,
                r.expected_version,
                "set_flags",
                &r.reason,
                rule,
            )
            .await?;
        Ok(Response::new(pb::SetCaseFlagsResponse { case: Some(case) }))
    }

    async fn list_cases(
        &self,
        req: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "ListCases")?;
        let r = req.into_inner();
        let scope = region::narrow(&caller.region, &r.region_code, "region_code")?;
        let page = PageRequest::parse(r.page_size, &r.page_token)?;
        let state = match pb::CaseState::try_from(r.state) {
            Ok(pb::CaseState::Unspecified) => None,
            Ok(s) => Some(
                State::ALL
                    .iter()
                    .copied()
                    .find(|x| x.wire() == s)
                    .ok_or_else(|| AppError::invalid("state", "is not a case state"))?,
            ),
            Err(_) => return Err(AppError::invalid("state", "is not a case state").into()),
        };
        let (rows, next_page_token) =
            service::list(&self.pool, &scope, state, r.flagged_only, &page).await?;
        let today = self.clock.today();
        let snap = self.calendars.current();
        let cases = rows
            .into_iter()
            .map(|row| to_pb(row, Vec::new(), Vec::new(), &snap.calendars, today))
            .collect();
        Ok(Response::new(pb::ListCasesResponse {
            cases,
            next_page_token,
        }))
    }

    async fn open_inquiry(
        &self,
        req: Request<pb::OpenInquiryRequest>,
    ) -> Result<Response<pb::OpenInquiryResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "OpenInquiry")?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let region = RegionCode::parse_field(&r.region_code, "region_code", &mut v);
        v.text(&r.citizen_name, "citizen_name", 100);
        v.text(&r.question, "question", 2000);
        v.into_result()?;
        let region = region.expect("checked");
        caller.require_region(&region)?;
        let department = if r.department.is_empty() {
            caller.department.clone().unwrap_or_default()
        } else {
            r.department
        };
        let rec = InquiryRecord {
            citizen_name: r.citizen_name.trim().to_string(),
            question: r.question.trim().to_string(),
            first_responsible: caller.subject.clone(),
            handling_department: department,
            handler: caller.subject.clone(),
            referrals: Vec::new(),
        };
        let row = service::open_inquiry(&self.pool, &region, &rec, self.clock.now()).await?;
        Ok(Response::new(pb::OpenInquiryResponse {
            inquiry: Some(inquiry_pb(row)),
        }))
    }

    async fn refer_inquiry(
        &self,
        req: Request<pb::ReferInquiryRequest>,
    ) -> Result<Response<pb::ReferInquiryResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "ReferInquiry")?;
        let r = req.into_inner();
        let id =
            Uuid::parse_str(&r.id).map_err(|_| AppError::invalid("id", "must be an inquiry id"))?;
        let referral = self.referral(&caller, &r.department, &r.handler, &r.reason)?;
        let row = service::refer_inquiry(&self.pool, &caller.region, id, referral).await?;
        Ok(Response::new(pb::ReferInquiryResponse {
            inquiry: Some(inquiry_pb(row)),
        }))
    }

    async fn load_calendar_notice(
        &self,
        req: Request<pb::LoadCalendarNoticeRequest>,
    ) -> Result<Response<pb::LoadCalendarNoticeResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "LoadCalendarNotice")?;
        let notice = Some(
            self.load_calendar_notice_(&caller, req.into_inner())
                .await?,
        );
        Ok(Response::new(pb::LoadCalendarNoticeResponse { notice }))
    }

    async fn get_calendar_coverage(
        &self,
        req: Request<pb::GetCalendarCoverageRequest>,
    ) -> Result<Response<pb::GetCalendarCoverageResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "GetCalendarCoverage")?;
        Ok(Response::new(
            self.calendar_coverage(&caller, &req.get_ref().region_code)?,
        ))
    }

    async fn list_inquiries(
        &self,
        req: Request<pb::ListInquiriesRequest>,
    ) -> Result<Response<pb::ListInquiriesResponse>, Status> {
        let caller = auth::caller(&req)?;
        authorize(&caller, "ListInquiries")?;
        let r = req.into_inner();
        let scope = region::narrow(&caller.region, &r.region_code, "region_code")?;
        let page = PageRequest::parse(r.page_size, &r.page_token)?;
        let (rows, next_page_token) = service::list_inquiries(&self.pool, &scope, &page).await?;
        Ok(Response::new(pb::ListInquiriesResponse {
            inquiries: rows.into_iter().map(inquiry_pb).collect(),
            next_page_token,
        }))
    }
}

impl CaseApi {
    async fn load_calendar_notice_(
        &self,
        caller: &Caller,
        r: pb::LoadCalendarNoticeRequest,
    ) -> AppResult<pb::CalendarNotice> {
        let notice = calendar::parse_notice(&r.text, "text")?;
        // The region the notice's event carries: the overlay's, or the loading office's.
        let region = match &notice.scope {
            Scope::Region { code } => {
                let code = RegionCode::parse(code).map_err(|e| AppError::invalid("text", e))?;
                caller.require_region(&code)?;
                code
            }
            Scope::National { .. } if !caller.region.as_str().ends_with("00") => {
                return Err(AppError::PermissionDenied(
                    "a national notice is loaded by a city or province office".into(),
                ))
            }
            Scope::National { .. } => caller.region.clone(),
        };
        let now = self.clock.now();
        let epoch = service::load_notice(
            &self.pool,
            &self.calendars,
            &notice,
            &r.text,
            &caller.subject,
            &region,
            now,
        )
        .await?;
        let stored = StoredNotice {
            epoch,
            notice,
            loaded_by: caller.subject.clone(),
            loaded_at: now,
        };
        Ok(notice_pb(&stored))
    }

    fn calendar_coverage(
        &self,
        caller: &Caller,
        region: &str,
    ) -> AppResult<pb::GetCalendarCoverageResponse> {
        let code = if region.is_empty() {
            caller.region.clone()
        } else {
            RegionCode::parse(region).map_err(|e| AppError::invalid("region_code", e))?
        };
        caller.require_region(&code)?;
        let cal = self.calendars.current().calendars.for_region(code.as_str());
        let today = self.clock.today();
        Ok(pb::GetCalendarCoverageResponse {
            region_code: code.as_str().to_string(),
            covered_through: date(cal.covered_through(today)),
            days_left: cal.coverage_days_left(today) as i32,
            notices: self.calendars.notices().iter().map(notice_pb).collect(),
        })
    }

    /// A referral to `department` and `handler`, checked.
    fn referral(
        &self,
        caller: &Caller,
        department: &str,
        handler: &str,
        reason: &str,
    ) -> AppResult<Referral> {
        let mut v = Violations::new();
        v.text(department, "department", 100);
        v.text(handler, "handler", 100);
        v.text(reason, "reason", 500);
        v.into_result()?;
        Ok(Referral {
            from_department: String::new(),
            to_department: department.trim().to_string(),
            handler: handler.trim().to_string(),
            reason: reason.trim().to_string(),
            by: caller.subject.clone(),
            at: self.clock.now(),
        })
    }
}

fn notice_pb(n: &StoredNotice) -> pb::CalendarNotice {
    pb::CalendarNotice {
        scope: n.notice.scope.key(),
        version: n.notice.version.clone(),
        source: n.notice.source.clone(),
        fabricated: n.notice.fabricated,
        epoch: n.epoch,
        loaded_by: n.loaded_by.clone(),
        load_time: Some(xiaoneng_kit::timestamp(n.loaded_at)),
    }
}

fn inquiry_pb(row: InquiryRow) -> pb::Inquiry {
    let rec = row.body.0;
    pb::Inquiry {
        id: row.id.to_string(),
        region_code: row.region_code,
        citizen_name: rec.citizen_name,
        question: rec.question,
        first_responsible: rec.first_responsible,
        handling_department: rec.handling_department,
        handler: rec.handler,
        referrals: rec.referrals.iter().map(referral_pb).collect(),
        create_time: Some(xiaoneng_kit::timestamp(row.created_at)),
        case_id: row.case_id.map(|c| c.to_string()).unwrap_or_default(),
    }
}
