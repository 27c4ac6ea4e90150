//! gRPC handlers: parse, authorize, fetch the matter's terms from the catalog, apply the
//! domain rule through the store, map.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgPool;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use xiaoneng_calendar::{Calendars, Clock};
use xiaoneng_kit::auth::{self, roles, Caller};
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{parse_date_field, today_cn, AppError, AppResult, Violations};
use xiaoneng_proto::case::v1 as pb;
use xiaoneng_proto::catalog::v1::{catalog_service_client::CatalogServiceClient, GetMatterRequest};

use crate::domain::{self, Action, Case, RuleError, State};
use crate::store::{self, CaseRecord, CaseRow, Change, HistoryRow, NewCase, NoticeMeta};

pub struct CaseApi {
    pool: PgPool,
    catalog: CatalogServiceClient<Channel>,
    calendars: Calendars,
}

impl CaseApi {
    pub fn new(pool: PgPool, catalog: CatalogServiceClient<Channel>, calendars: Calendars) -> Self {
        CaseApi { pool, catalog, calendars }
    }
}

fn rule_error(e: RuleError) -> AppError {
    match e {
        RuleError::IllegalTransition { .. } => AppError::precondition("ILLEGAL_TRANSITION", e.to_string()),
        RuleError::Invalid { field, message } => AppError::invalid(field, message),
    }
}

fn parse_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| AppError::invalid("id", "must be a case id"))
}

fn require_any(caller: &Caller, allowed: &[&str]) -> AppResult<()> {
    if allowed.iter().any(|r| caller.has_role(r)) {
        Ok(())
    } else {
        Err(AppError::PermissionDenied(format!("one of the roles {allowed:?} is required")))
    }
}

fn state_pb(s: State) -> pb::CaseState {
    match s {
        State::Submitted => pb::CaseState::Submitted,
        State::PreReview => pb::CaseState::PreReview,
        State::CorrectionRequested => pb::CaseState::CorrectionRequested,
        State::Accepted => pb::CaseState::Accepted,
        State::NotAccepted => pb::CaseState::NotAccepted,
        State::InReview => pb::CaseState::InReview,
        State::Approved => pb::CaseState::Approved,
        State::Denied => pb::CaseState::Denied,
        State::CertificateIssued => pb::CaseState::CertificateIssued,
        State::Delivered => pb::CaseState::Delivered,
        State::Closed => pb::CaseState::Closed,
        State::Withdrawn => pb::CaseState::Withdrawn,
        State::Returned => pb::CaseState::Returned,
        State::Suspended => pb::CaseState::Suspended,
    }
}

fn state_from_name(s: &str) -> pb::CaseState {
    let all = [
        State::Submitted,
        State::PreReview,
        State::CorrectionRequested,
        State::Accepted,
        State::NotAccepted,
        State::InReview,
        State::Approved,
        State::Denied,
        State::CertificateIssued,
        State::Delivered,
        State::Closed,
        State::Withdrawn,
        State::Returned,
        State::Suspended,
    ];
    all.into_iter().find(|x| store::state_name(*x) == s).map(state_pb).unwrap_or(pb::CaseState::Unspecified)
}

fn date(d: Option<chrono::NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn to_pb(row: CaseRow, history: Vec<HistoryRow>, calendars: &Calendars) -> pb::Case {
    let cal = calendars.for_region(&row.region_code);
    let today = today_cn();
    let paused = clocks(&row).map(|(s, _)| s.paused_working_days(&cal, today)).unwrap_or(0);
    let rec = row.body.0;
    let certificate_deadline = rec.decided_on.map(|d| cal.add_working_days(d, CERTIFICATE_DAYS));
    let missing = rec.case.missing().into_iter().collect();
    pb::Case {
        id: row.id.to_string(),
        region_code: row.region_code,
        matter_id: row.matter_id.to_string(),
        matter_version: row.matter_version,
        matter_name: row.matter_name,
        state: state_pb(rec.case.state) as i32,
        version: row.version,
        applicant: Some(pb::Applicant {
            name: rec.applicant_name,
            phone: rec.applicant_phone,
            agent_name: rec.agent_name,
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

/// The statutory clock (with the extension) and the promised clock, both stopped by pauses.
fn clocks(row: &CaseRow) -> Option<(Clock, Clock)> {
    let start = row.accepted_on?;
    let rec = &row.body;
    let statutory = Clock {
        start,
        limit: row.statutory_limit.max(0) as u32,
        extension: rec.extension,
        pauses: rec.pauses.clone(),
    };
    let promised = Clock { start, limit: row.promised_limit.max(0) as u32, extension: 0, pauses: rec.pauses.clone() };
    Some((statutory, promised))
}

fn recompute_deadlines(row: &mut CaseRow, calendars: &Calendars, today: chrono::NaiveDate) {
    let cal = calendars.for_region(&row.region_code);
    if let Some((statutory, promised)) = clocks(row) {
        row.statutory_deadline = Some(statutory.deadline(&cal, today));
        row.promised_deadline = Some(promised.deadline(&cal, today));
    }
}

fn primary_role(caller: &Caller) -> String {
    caller.roles.first().cloned().unwrap_or_default()
}

impl CaseApi {
    /// Runs one change and answers with the case and its history.
    async fn change<F>(&self, caller: &Caller, id: &str, expected: i64, action: &str, reason: &str, rule: F) -> AppResult<pb::Case>
    where
        F: FnOnce(&mut CaseRow) -> AppResult<domain::Effects>,
    {
        let id = parse_id(id)?;
        let role = primary_role(caller);
        let ch = Change {
            scope: &caller.region,
            expected_version: expected,
            action,
            actor: &caller.subject,
            actor_role: &role,
            reason,
        };
        store::change(&self.pool, id, &ch, rule).await?;
        let (row, history) = store::get(&self.pool, &caller.region, id).await?;
        Ok(to_pb(row, history, &self.calendars))
    }
}

const WINDOW_ROLES: &[&str] = &[roles::CLERK];
const REVIEW_ROLES: &[&str] = &[roles::REVIEWER];
/// 行政许可法 art. 44: the certificate within 10 working days of the decision.
const CERTIFICATE_DAYS: u32 = 10;

/// A transition that needs only the domain rule.
fn plain(action: Action) -> impl FnOnce(&mut CaseRow) -> AppResult<domain::Effects> {
    move |row| row.body.case.apply(&action).map_err(rule_error)
}

#[tonic::async_trait]
impl pb::case_service_server::CaseService for CaseApi {
    async fn submit_case(&self, req: Request<pb::SubmitCaseRequest>) -> Result<Response<pb::SubmitCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, &[roles::CLERK, roles::CITIZEN, roles::SYSTEM])?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let region = RegionCode::parse_field(&r.region_code, "region_code", &mut v);
        let matter_id = Uuid::parse_str(&r.matter_id).ok();
        v.check(matter_id.is_some(), "matter_id", "must be a matter id");
        let applicant = r.applicant.unwrap_or_default();
        v.text(&applicant.name, "applicant.name", 100);
        v.into_result()?;
        let (region, matter_id) = (region.expect("checked"), matter_id.expect("checked"));
        if !caller.region.contains(&region) {
            return Err(AppError::PermissionDenied(format!("region {region} is outside the caller's region")).into());
        }
        // The matter version in force today: the case keeps these terms.
        let matter = self
            .catalog
            .clone()
            .get_matter(GetMatterRequest { matter_id: matter_id.to_string(), as_of: String::new() })
            .await
            .map_err(|s| match s.code() {
                tonic::Code::NotFound => AppError::not_found("matter in force", matter_id.to_string()),
                _ => AppError::Unavailable(format!("catalog: {}", s.message())),
            })?
            .into_inner()
            .matter
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("catalog answered without a matter")))?;
        let terms = matter.terms.clone().unwrap_or_default();
        if matter.region_code != region.as_str() && !terms.cross_region {
            return Err(AppError::precondition(
                "NOT_CROSS_REGION",
                format!("{} is handled in {} and is not 通办", terms.name, matter.region_code),
            )
            .into());
        }
        let known: BTreeSet<&str> = terms.materials.iter().map(|m| m.name.as_str()).collect();
        let mut v = Violations::new();
        for (i, m) in r.supplied_materials.iter().enumerate() {
            v.check(known.contains(m.as_str()), &format!("supplied_materials[{i}]"), "is not a material of this matter");
        }
        v.into_result()?;
        let required: BTreeMap<String, bool> =
            terms.materials.iter().filter(|m| m.required).map(|m| (m.name.clone(), m.key)).collect();
        let record = CaseRecord {
            case: Case::new(required, r.supplied_materials.iter().cloned().collect()),
            applicant_name: applicant.name.trim().to_string(),
            applicant_phone: applicant.phone,
            agent_name: applicant.agent_name,
            notices: Vec::new(),
            tolerated: Vec::new(),
            pauses: Vec::new(),
            extension: 0,
            decided_on: None,
            certificate_number: String::new(),
            delivery_method: String::new(),
        };
        let new = NewCase {
            region,
            matter_id,
            matter_version: matter.version,
            matter_name: terms.name.clone(),
            promised_limit: terms.promised_limit_days,
            statutory_limit: terms.statutory_limit_days,
            record,
            first_responsible: caller.subject.clone(),
            actor_role: primary_role(&caller),
            submitted_on: today_cn(),
        };
        let request_id = Some(r.request_id.as_str()).filter(|s| !s.is_empty());
        let row = store::submit(&self.pool, &new, request_id).await?;
        let (row, history) = store::get(&self.pool, &caller.region, row.id).await?;
        Ok(Response::new(pb::SubmitCaseResponse { case: Some(to_pb(row, history, &self.calendars)) }))
    }

    async fn get_case(&self, req: Request<pb::GetCaseRequest>) -> Result<Response<pb::GetCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        let id = parse_id(&req.get_ref().id)?;
        let (row, history) = store::get(&self.pool, &caller.region, id).await?;
        Ok(Response::new(pb::GetCaseResponse { case: Some(to_pb(row, history, &self.calendars)) }))
    }

    async fn start_pre_review(
        &self,
        req: Request<pb::StartPreReviewRequest>,
    ) -> Result<Response<pb::StartPreReviewResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, WINDOW_ROLES)?;
        let r = req.into_inner();
        let case = self
            .change(&caller, &r.id, r.expected_version, "start_pre_review", "", |row| {
                row.body.case.apply(&Action::StartPreReview).map_err(rule_error)
            })
            .await?;
        Ok(Response::new(pb::StartPreReviewResponse { case: Some(case) }))
    }

    async fn request_correction(
        &self,
        req: Request<pb::RequestCorrectionRequest>,
    ) -> Result<Response<pb::RequestCorrectionResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, WINDOW_ROLES)?;
        let r = req.into_inner();
        let reason = r.reason.clone();
        let case = self
            .change(&caller, &r.id, r.expected_version, "request_correction", &r.reason, move |row| {
                let fx = row
                    .body
                    .case
                    .apply(&Action::RequestCorrection { materials: r.materials.clone() })
                    .map_err(rule_error)?;
                row.body.notices.push(NoticeMeta {
                    reason,
                    at: chrono::Utc::now(),
                    violation: fx.notice_violation.clone(),
                });
                Ok(fx)
            })
            .await?;
        Ok(Response::new(pb::RequestCorrectionResponse { case: Some(case) }))
    }

    async fn supply_materials(
        &self,
        req: Request<pb::SupplyMaterialsRequest>,
    ) -> Result<Response<pb::SupplyMaterialsResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, &[roles::CLERK, roles::CITIZEN])?;
        let r = req.into_inner();
        let case = self
            .change(&caller, &r.id, r.expected_version, "supply_materials", "", |row| {
                let fx = row.body.case.apply(&Action::SupplyMaterials).map_err(rule_error)?;
                let mut v = Violations::new();
                for (i, m) in r.materials.iter().enumerate() {
                    v.check(
                        row.body.case.matter_materials.contains_key(m),
                        &format!("materials[{i}]"),
                        "is not a required material of this matter",
                    );
                }
                v.into_result()?;
                row.body.case.supplied.extend(r.materials.iter().cloned());
                Ok(fx)
            })
            .await?;
        Ok(Response::new(pb::SupplyMaterialsResponse { case: Some(case) }))
    }

    async fn accept_case(&self, req: Request<pb::AcceptCaseRequest>) -> Result<Response<pb::AcceptCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, WINDOW_ROLES)?;
        let r = req.into_inner();
        let today = today_cn();
        let due = if r.tolerance_due_date.is_empty() {
            None
        } else {
            Some(parse_date_field(&r.tolerance_due_date, "tolerance_due_date", today)?)
        };
        let calendars = &self.calendars;
        let case = self
            .change(&caller, &r.id, r.expected_version, "accept", "", |row| {
                let missing = row.body.case.missing();
                let mut tolerated = Vec::new();
                if !missing.is_empty() {
                    // 容缺受理: only non-key materials, only with a due date.
                    let due = due.ok_or_else(|| {
                        AppError::invalid("tolerance_due_date", "is required when materials are missing (容缺受理)")
                    })?;
                    tolerated = domain::check_tolerated(&row.body.case, due, today).map_err(rule_error)?;
                    row.tolerance_due = Some(due);
                }
                let fx = row.body.case.apply(&Action::Accept).map_err(rule_error)?;
                row.body.tolerated = tolerated;
                row.accepted_on = Some(today);
                recompute_deadlines(row, calendars, today);
                Ok(fx)
            })
            .await?;
        Ok(Response::new(pb::AcceptCaseResponse { case: Some(case) }))
    }

    async fn refuse_case(&self, req: Request<pb::RefuseCaseRequest>) -> Result<Response<pb::RefuseCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, WINDOW_ROLES)?;
        let r = req.into_inner();
        let case = self
            .change(&caller, &r.id, r.expected_version, "refuse", &r.reason, |row| {
                row.body.case.apply(&Action::Refuse { reason: r.reason.clone() }).map_err(rule_error)
            })
            .await?;
        Ok(Response::new(pb::RefuseCaseResponse { case: Some(case) }))
    }

    async fn start_review(&self, req: Request<pb::StartReviewRequest>) -> Result<Response<pb::StartReviewResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, &[roles::CLERK, roles::REVIEWER])?;
        let r = req.into_inner();
        let action = Action::StartReview { departments: r.departments.clone() };
        let case = self.change(&caller, &r.id, r.expected_version, "start_review", "", plain(action)).await?;
        Ok(Response::new(pb::StartReviewResponse { case: Some(case) }))
    }

    async fn conclude_review_step(
        &self,
        req: Request<pb::ConcludeReviewStepRequest>,
    ) -> Result<Response<pb::ConcludeReviewStepResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, REVIEW_ROLES)?;
        let r = req.into_inner();
        if caller.department.as_deref().is_some_and(|d| d != r.department) {
            return Err(AppError::PermissionDenied(format!("a reviewer of {:?} cannot conclude for {}", caller.department, r.department)).into());
        }
        let today = today_cn();
        let action = Action::ConcludeStep { department: r.department.clone(), approve: r.approve, reason: r.reason.clone() };
        let case = self
            .change(&caller, &r.id, r.expected_version, "conclude_review_step", &r.reason, move |row| {
                let fx = row.body.case.apply(&action).map_err(rule_error)?;
                if fx.review_finished {
                    row.body.decided_on = Some(today);
                }
                Ok(fx)
            })
            .await?;
        Ok(Response::new(pb::ConcludeReviewStepResponse { case: Some(case) }))
    }

    async fn extend_deadline(
        &self,
        req: Request<pb::ExtendDeadlineRequest>,
    ) -> Result<Response<pb::ExtendDeadlineResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, REVIEW_ROLES)?;
        let r = req.into_inner();
        let mut v = Violations::new();
        v.text(&r.reason, "reason", 500);
        v.text(&r.approver, "approver", 100);
        v.into_result()?;
        let today = today_cn();
        let calendars = &self.calendars;
        let reason = format!("{} (批准: {})", r.reason.trim(), r.approver.trim());
        let case = self
            .change(&caller, &r.id, r.expected_version, "extend_deadline", &reason, move |row| {
                if !matches!(row.body.case.state, State::Accepted | State::InReview | State::Suspended) {
                    return Err(AppError::precondition("ILLEGAL_TRANSITION", "only a case under the clock can be extended"));
                }
                // 行政许可法 art. 42: +10 alone, +15 when several departments review jointly.
                let max = if row.body.case.review.len() > 1 { 15 } else { 10 };
                if r.days < 1 || r.days > max {
                    return Err(AppError::invalid("days", format!("must be 1-{max} working days")));
                }
                let (mut statutory, _) = clocks(row).ok_or_else(|| AppError::precondition("NOT_ACCEPTED", "the case is not accepted"))?;
                statutory
                    .extend(r.days as u32)
                    .map_err(|e| AppError::precondition("ALREADY_EXTENDED", e.to_string()))?;
                row.body.extension = statutory.extension;
                recompute_deadlines(row, calendars, today);
                Ok(domain::Effects::default())
            })
            .await?;
        Ok(Response::new(pb::ExtendDeadlineResponse { case: Some(case) }))
    }

    async fn suspend_case(&self, req: Request<pb::SuspendCaseRequest>) -> Result<Response<pb::SuspendCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, REVIEW_ROLES)?;
        let r = req.into_inner();
        let today = today_cn();
        let calendars = &self.calendars;
        let action = Action::Suspend { reason: r.reason.clone() };
        let case = self
            .change(&caller, &r.id, r.expected_version, "suspend", &r.reason, move |row| {
                let fx = row.body.case.apply(&action).map_err(rule_error)?;
                let (mut statutory, _) = clocks(row).ok_or_else(|| AppError::precondition("NOT_ACCEPTED", "the case is not accepted"))?;
                statutory.pause(today).map_err(|e| AppError::precondition("CLOCK", e.to_string()))?;
                row.body.pauses = statutory.pauses;
                recompute_deadlines(row, calendars, today);
                Ok(fx)
            })
            .await?;
        Ok(Response::new(pb::SuspendCaseResponse { case: Some(case) }))
    }

    async fn resume_case(&self, req: Request<pb::ResumeCaseRequest>) -> Result<Response<pb::ResumeCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, REVIEW_ROLES)?;
        let r = req.into_inner();
        let today = today_cn();
        let calendars = &self.calendars;
        let case = self
            .change(&caller, &r.id, r.expected_version, "resume", "", move |row| {
                let fx = row.body.case.apply(&Action::Resume).map_err(rule_error)?;
                let (mut statutory, _) = clocks(row).ok_or_else(|| AppError::precondition("NOT_ACCEPTED", "the case is not accepted"))?;
                statutory.resume(today).map_err(|e| AppError::precondition("CLOCK", e.to_string()))?;
                row.body.pauses = statutory.pauses;
                recompute_deadlines(row, calendars, today);
                Ok(fx)
            })
            .await?;
        Ok(Response::new(pb::ResumeCaseResponse { case: Some(case) }))
    }

    async fn issue_certificate(
        &self,
        req: Request<pb::IssueCertificateRequest>,
    ) -> Result<Response<pb::IssueCertificateResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, &[roles::CLERK, roles::REVIEWER])?;
        let r = req.into_inner();
        let mut v = Violations::new();
        v.text(&r.certificate_number, "certificate_number", 64);
        v.into_result()?;
        let case = self
            .change(&caller, &r.id, r.expected_version, "issue_certificate", "", move |row| {
                let fx = row.body.case.apply(&Action::IssueCertificate).map_err(rule_error)?;
                row.body.certificate_number = r.certificate_number.trim().to_string();
                Ok(fx)
            })
            .await?;
        Ok(Response::new(pb::IssueCertificateResponse { case: Some(case) }))
    }

    async fn deliver_case(&self, req: Request<pb::DeliverCaseRequest>) -> Result<Response<pb::DeliverCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, WINDOW_ROLES)?;
        let r = req.into_inner();
        let mut v = Violations::new();
        v.text(&r.method, "method", 50);
        v.into_result()?;
        let method = r.method.trim().to_string();
        let case = self
            .change(&caller, &r.id, r.expected_version, "deliver", &r.method, move |row| {
                let fx = row.body.case.apply(&Action::Deliver).map_err(rule_error)?;
                row.body.delivery_method = method;
                Ok(fx)
            })
            .await?;
        Ok(Response::new(pb::DeliverCaseResponse { case: Some(case) }))
    }

    async fn close_case(&self, req: Request<pb::CloseCaseRequest>) -> Result<Response<pb::CloseCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, WINDOW_ROLES)?;
        let r = req.into_inner();
        let case = self.change(&caller, &r.id, r.expected_version, "close", "", plain(Action::Close)).await?;
        Ok(Response::new(pb::CloseCaseResponse { case: Some(case) }))
    }

    async fn withdraw_case(&self, req: Request<pb::WithdrawCaseRequest>) -> Result<Response<pb::WithdrawCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        require_any(&caller, &[roles::CLERK, roles::CITIZEN])?;
        let r = req.into_inner();
        let case = self.change(&caller, &r.id, r.expected_version, "withdraw", &r.reason, plain(Action::Withdraw)).await?;
        Ok(Response::new(pb::WithdrawCaseResponse { case: Some(case) }))
    }
}
