//! The gRPC adapter: each handler checks the caller's roles against [`AUTHORIZATION`], parses
//! the request (every bad field listed), calls one use case of [`Complaints`] and maps the
//! answer to protobuf in the caller's view (the accused unit: the substance, masked).

use tonic::{Request, Response, Status};
use uuid::Uuid;
use xiaoneng_kit::auth::{self, roles, Caller};
use xiaoneng_kit::{region, AppError, AppResult};
use xiaoneng_proto::complaint::v1 as pb;

use crate::domain::{
    Channel, ComplaintRow, Filing, Finding, Identity, Kind, State, Step, TargetKind, View,
};
use crate::service::{view_of, Complaints};

/// Staff who read complaints of their region (the substance, masked).
const STAFF: &[&str] = &[
    roles::CLERK,
    roles::REVIEWER,
    roles::HALL_MANAGER,
    roles::SUPERVISOR,
    roles::INSPECTOR,
    roles::SYSTEM,
];

/// Who may call what. Citizens file and read their own; the hotline (12345 platform) and
/// Open311 file as `system`; only an inspector reads an identity.
pub const AUTHORIZATION: auth::Authorization = &[
    (
        "FileComplaint",
        &[
            roles::CITIZEN,
            roles::HALL_MANAGER,
            roles::SUPERVISOR,
            roles::INSPECTOR,
            roles::SYSTEM,
        ],
    ),
    (
        "GetComplaint",
        &[
            roles::CITIZEN,
            roles::CLERK,
            roles::REVIEWER,
            roles::HALL_MANAGER,
            roles::SUPERVISOR,
            roles::INSPECTOR,
            roles::SYSTEM,
        ],
    ),
    (
        "ListComplaints",
        &[
            roles::CITIZEN,
            roles::CLERK,
            roles::REVIEWER,
            roles::HALL_MANAGER,
            roles::SUPERVISOR,
            roles::INSPECTOR,
            roles::SYSTEM,
        ],
    ),
    (
        "AdvanceComplaint",
        &[
            roles::HALL_MANAGER,
            roles::SUPERVISOR,
            roles::INSPECTOR,
            roles::SYSTEM,
        ],
    ),
    ("ReopenComplaint", &[roles::CITIZEN, roles::SYSTEM]),
    ("ExtendComplaint", &[roles::SUPERVISOR, roles::INSPECTOR]),
    ("RevealComplainant", &[roles::INSPECTOR]),
    ("ListIdentityReads", &[roles::SUPERVISOR, roles::INSPECTOR]),
    ("ListCategories", STAFF),
];

/// Callable without a token: the negative list is public.
pub const PUBLIC_METHODS: &[&str] = &["/xiaoneng.complaint.v1.ComplaintService/ListCategories"];

pub struct ComplaintApi(pub Complaints);

fn caller<T>(req: &Request<T>, method: &str) -> Result<Caller, Status> {
    let c = auth::caller(req)?;
    c.authorize(AUTHORIZATION, method)?;
    Ok(c)
}

fn id(s: &str, field: &str) -> AppResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| AppError::invalid(field, "must be an id"))
}

pub fn kind_of(k: i32) -> Option<Kind> {
    match pb::Kind::try_from(k).ok()? {
        pb::Kind::Urgent => Some(Kind::Urgent),
        pb::Kind::Consultation => Some(Kind::Consultation),
        pb::Kind::Complaint => Some(Kind::Complaint),
        pb::Kind::Retaliation => Some(Kind::Retaliation),
        pb::Kind::Unspecified => None,
    }
}

fn channel_of(c: i32) -> Option<Channel> {
    match pb::Channel::try_from(c).ok()? {
        pb::Channel::Hotline => Some(Channel::Hotline),
        pb::Channel::Web => Some(Channel::Web),
        pb::Channel::QrCode => Some(Channel::QrCode),
        pb::Channel::Mailbox => Some(Channel::Mailbox),
        pb::Channel::OnSite => Some(Channel::OnSite),
        pb::Channel::Open311 => Some(Channel::Open311),
        pb::Channel::Unspecified => None,
    }
}

pub fn target_kind_of(t: i32) -> Option<TargetKind> {
    match pb::TargetKind::try_from(t).ok()? {
        pb::TargetKind::Department => Some(TargetKind::Department),
        pb::TargetKind::Window => Some(TargetKind::Window),
        pb::TargetKind::Staff => Some(TargetKind::Staff),
        pb::TargetKind::Matter => Some(TargetKind::Matter),
        pb::TargetKind::Case => Some(TargetKind::Case),
        pb::TargetKind::Ticket => Some(TargetKind::Ticket),
        pb::TargetKind::Complaint => Some(TargetKind::Complaint),
        pb::TargetKind::Unspecified => None,
    }
}

fn state_of(s: i32) -> Option<State> {
    State::ALL
        .iter()
        .copied()
        .find(|x| crate::domain::wire::state(*x) as i32 == s)
}

/// A complaint in the reader's view: texts masked for the substance view; the identity never
/// (it is not on the row).
pub fn complaint_pb(c: &ComplaintRow, view: View, today: chrono::NaiveDate) -> pb::Complaint {
    use crate::domain::wire as w;
    pb::Complaint {
        id: c.id.to_string(),
        region_code: c.region_code.clone(),
        kind: w::kind(c.kind) as i32,
        category: c.category.clone(),
        channel: w::channel(c.channel) as i32,
        target: Some(w::target(c)),
        description: view.text(&c.description),
        attachments: c.attachments.clone(),
        anonymous: c.anonymous,
        fast_track: c.fast_track,
        state: w::state(c.state) as i32,
        assigned_to: c.assigned_to.clone(),
        to_discipline: c.to_discipline,
        due_date: c.due_on.map(|d| d.to_string()).unwrap_or_default(),
        overdue: c.overdue(today),
        escalated: c.escalated,
        extended: c.extended,
        extension_reason: view.text(&c.extension_reason),
        finding: w::finding(c.finding) as i32,
        findings: view.text(&c.findings),
        responsible_unit: c.responsible_unit.clone(),
        responsible_person: c.responsible_person.clone(),
        reply: view.text(&c.reply),
        satisfaction: c.satisfaction.clone(),
        callback_note: view.text(&c.callback_note),
        reopened: c.reopened,
        merged: c.merged,
        linked_case_id: c.linked_case_id.clone(),
        linked_complaint_id: c.linked_complaint_id.clone(),
        file_time: Some(xiaoneng_kit::timestamp(c.filed_at)),
        version: c.version,
    }
}

fn step(r: &pb::AdvanceComplaintRequest) -> AppResult<Step> {
    Ok(match pb::Step::try_from(r.step) {
        Ok(pb::Step::Assign) => Step::Assign {
            unit: r.unit.clone(),
        },
        Ok(pb::Step::Investigate) => Step::Investigate,
        Ok(pb::Step::Conclude) => Step::Conclude {
            finding: match pb::Finding::try_from(r.finding) {
                Ok(pb::Finding::Substantiated) => Finding::Substantiated,
                Ok(pb::Finding::PartlySubstantiated) => Finding::PartlySubstantiated,
                Ok(pb::Finding::NotSubstantiated) => Finding::NotSubstantiated,
                _ => return Err(AppError::invalid("finding", "must name the finding")),
            },
            findings: r.text.clone(),
            responsible_unit: r.responsible_unit.clone(),
            responsible_person: r.responsible_person.clone(),
        },
        Ok(pb::Step::Reply) => Step::Reply {
            text: r.text.clone(),
        },
        Ok(pb::Step::Callback) => Step::Callback {
            satisfaction: r.satisfaction.trim().to_string(),
            note: r.text.clone(),
        },
        Ok(pb::Step::Close) => Step::Close,
        _ => return Err(AppError::invalid("step", "must name a step of the loop")),
    })
}

#[tonic::async_trait]
impl pb::complaint_service_server::ComplaintService for ComplaintApi {
    async fn file_complaint(
        &self,
        req: Request<pb::FileComplaintRequest>,
    ) -> Result<Response<pb::FileComplaintResponse>, Status> {
        let c = caller(&req, "FileComplaint")?;
        let r = req.into_inner();
        let t = r.target.unwrap_or_default();
        let who = r.complainant.unwrap_or_default();
        let filing = Filing {
            region_code: r.region_code,
            kind: kind_of(r.kind),
            category: r.category,
            channel: channel_of(r.channel),
            target_kind: target_kind_of(t.kind),
            target_id: t.id,
            target_department: t.department,
            description: r.description,
            attachments: r.attachments,
            identity: Identity {
                name: who.name,
                phone: who.phone,
                id_number: who.id_number,
                address: who.address,
                email: who.email,
                first_name: who.first_name,
                last_name: who.last_name,
                device_id: who.device_id,
                account_id: who.account_id,
                account: String::new(),
            },
            fast_track: r.fast_track,
            location: Default::default(),
        };
        let (row, merged) = self.0.file(&c, filing).await?;
        Ok(Response::new(pb::FileComplaintResponse {
            complaint: Some(complaint_pb(&row, view_of(&c), self.0.clock.today())),
            merged,
        }))
    }

    async fn get_complaint(
        &self,
        req: Request<pb::GetComplaintRequest>,
    ) -> Result<Response<pb::GetComplaintResponse>, Status> {
        let c = caller(&req, "GetComplaint")?;
        let row = self.0.get(&c, id(&req.get_ref().id, "id")?).await?;
        Ok(Response::new(pb::GetComplaintResponse {
            complaint: Some(complaint_pb(&row, view_of(&c), self.0.clock.today())),
        }))
    }

    async fn list_complaints(
        &self,
        req: Request<pb::ListComplaintsRequest>,
    ) -> Result<Response<pb::ListComplaintsResponse>, Status> {
        let c = caller(&req, "ListComplaints")?;
        let r = req.get_ref();
        let page = xiaoneng_kit::paging::PageRequest::parse(r.page_size, &r.page_token)?;
        let state = if r.state == 0 {
            None
        } else {
            Some(state_of(r.state).ok_or_else(|| AppError::invalid("state", "is not a state"))?)
        };
        let listed = self.0.list(&c, &r.region_code, state, &page).await?;
        let (view, today) = (view_of(&c), self.0.clock.today());
        Ok(Response::new(pb::ListComplaintsResponse {
            complaints: listed
                .rows
                .iter()
                .map(|x| complaint_pb(x, view, today))
                .collect(),
            next_page_token: listed.next_page_token,
            discipline_reports: listed.discipline_reports,
        }))
    }

    async fn advance_complaint(
        &self,
        req: Request<pb::AdvanceComplaintRequest>,
    ) -> Result<Response<pb::AdvanceComplaintResponse>, Status> {
        let c = caller(&req, "AdvanceComplaint")?;
        let r = req.get_ref();
        let (cid, s) = (id(&r.id, "id")?, step(r)?);
        let row = self.0.advance(&c, cid, s, r.expected_version).await?;
        Ok(Response::new(pb::AdvanceComplaintResponse {
            complaint: Some(complaint_pb(&row, view_of(&c), self.0.clock.today())),
        }))
    }

    async fn reopen_complaint(
        &self,
        req: Request<pb::ReopenComplaintRequest>,
    ) -> Result<Response<pb::ReopenComplaintResponse>, Status> {
        let c = caller(&req, "ReopenComplaint")?;
        let r = req.get_ref();
        let row = self.0.reopen(&c, id(&r.id, "id")?, &r.reason).await?;
        Ok(Response::new(pb::ReopenComplaintResponse {
            complaint: Some(complaint_pb(&row, view_of(&c), self.0.clock.today())),
        }))
    }

    async fn extend_complaint(
        &self,
        req: Request<pb::ExtendComplaintRequest>,
    ) -> Result<Response<pb::ExtendComplaintResponse>, Status> {
        let c = caller(&req, "ExtendComplaint")?;
        let r = req.get_ref();
        let row = self.0.extend(&c, id(&r.id, "id")?, &r.reason).await?;
        Ok(Response::new(pb::ExtendComplaintResponse {
            complaint: Some(complaint_pb(&row, view_of(&c), self.0.clock.today())),
        }))
    }

    async fn reveal_complainant(
        &self,
        req: Request<pb::RevealComplainantRequest>,
    ) -> Result<Response<pb::RevealComplainantResponse>, Status> {
        let c = caller(&req, "RevealComplainant")?;
        let r = req.get_ref();
        let who = self.0.reveal(&c, id(&r.id, "id")?, &r.purpose).await?;
        Ok(Response::new(pb::RevealComplainantResponse {
            anonymous: who.is_none(),
            complainant: who.map(|i| pb::Complainant {
                name: i.name,
                phone: i.phone,
                id_number: i.id_number,
                address: i.address,
                email: i.email,
                first_name: i.first_name,
                last_name: i.last_name,
                device_id: i.device_id,
                account_id: i.account_id,
            }),
        }))
    }

    async fn list_identity_reads(
        &self,
        req: Request<pb::ListIdentityReadsRequest>,
    ) -> Result<Response<pb::ListIdentityReadsResponse>, Status> {
        let c = caller(&req, "ListIdentityReads")?;
        let r = req.get_ref();
        let scope = region::narrow(&c.region, &r.region_code, "region_code")?;
        let complaint = if r.complaint_id.is_empty() {
            None
        } else {
            Some(id(&r.complaint_id, "complaint_id")?)
        };
        let reads = self.0.reads(&scope, complaint).await?;
        Ok(Response::new(pb::ListIdentityReadsResponse {
            reads: reads
                .into_iter()
                .map(|x| pb::IdentityRead {
                    complaint_id: x.complaint_id.to_string(),
                    reader: x.reader,
                    purpose: x.purpose,
                    read_time: Some(xiaoneng_kit::timestamp(x.read_at)),
                    region_code: x.region_code,
                })
                .collect(),
        }))
    }

    async fn list_categories(
        &self,
        req: Request<pb::ListCategoriesRequest>,
    ) -> Result<Response<pb::ListCategoriesResponse>, Status> {
        let r = req.get_ref();
        let mut v = xiaoneng_kit::Violations::new();
        region::RegionCode::parse_field(&r.region_code, "region_code", &mut v);
        v.into_result()?;
        let categories = self
            .0
            .rules
            .categories(&r.region_code)
            .into_iter()
            .map(|c| pb::Category {
                code: c.code,
                name: c.name,
                misconduct: c.misconduct,
            })
            .collect();
        Ok(Response::new(pb::ListCategoriesResponse { categories }))
    }
}
