//! The gRPC adapter: each handler checks the caller's roles against [`AUTHORIZATION`], parses
//! the request (every bad field listed), calls one use case of [`Evaluation`] and maps the
//! answer to protobuf.

use tonic::{Request, Response, Status};
use uuid::Uuid;
use xiaoneng_kit::auth::{self, roles, Caller};
use xiaoneng_kit::region;
use xiaoneng_kit::{parse_date_field, AppError, AppResult};
use xiaoneng_proto::evaluation::v1 as pb;

use crate::domain::{AppealState, Confirmation, InvitationRow, RatingRow, Step};
use crate::service::Evaluation;

/// Who reads ratings and statistics of their region.
const READERS: &[&str] = &[
    roles::CITIZEN,
    roles::CLERK,
    roles::HALL_MANAGER,
    roles::SUPERVISOR,
    roles::INSPECTOR,
    roles::SYSTEM,
];

/// Who may call what. A citizen rates and confirms (their own invitations only, through the
/// audience); a window device or a forwarding platform rates as `system`.
pub const AUTHORIZATION: auth::Authorization = &[
    ("GetInvitation", READERS),
    ("ListInvitations", READERS),
    ("SubmitRating", &[roles::CITIZEN, roles::SYSTEM]),
    // A provincial platform or a hall's devices forward ratings in bulk.
    ("SubmitRatings", &[roles::SYSTEM]),
    ("AddFollowUp", &[roles::CITIZEN, roles::SYSTEM]),
    ("GetRating", READERS),
    (
        "AdvanceLoop",
        &[
            roles::CITIZEN,
            roles::CLERK,
            roles::HALL_MANAGER,
            roles::SUPERVISOR,
            roles::SYSTEM,
        ],
    ),
    // The rated unit appeals; the efficiency office decides.
    ("AppealRating", &[roles::CLERK, roles::HALL_MANAGER]),
    ("DecideAppeal", &[roles::SUPERVISOR]),
    (
        "ListManipulationFlags",
        &[roles::SUPERVISOR, roles::INSPECTOR],
    ),
    (
        "GetStatistics",
        &[
            roles::HALL_MANAGER,
            roles::SUPERVISOR,
            roles::INSPECTOR,
            roles::SYSTEM,
        ],
    ),
];

/// Methods callable without a token: the public reads, masked.
pub const PUBLIC_METHODS: &[&str] = &[
    "/xiaoneng.evaluation.v1.EvaluationService/ListPublicRatings",
    "/xiaoneng.evaluation.v1.EvaluationService/ListRatingOptions",
];

/// At most this many ratings in one SubmitRatings call.
const MAX_BATCH: usize = 500;

pub struct EvaluationApi(pub Evaluation);

fn caller<T>(req: &Request<T>, method: &str) -> Result<Caller, Status> {
    let c = auth::caller(req)?;
    c.authorize(AUTHORIZATION, method)?;
    Ok(c)
}

fn id(s: &str, field: &str) -> AppResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| AppError::invalid(field, "must be an id"))
}

fn date(d: Option<chrono::NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn invitation_pb(i: &InvitationRow) -> pb::Invitation {
    pb::Invitation {
        id: i.id.to_string(),
        region_code: i.region_code.clone(),
        occurrence: i.occurrence.wire() as i32,
        ticket_id: i.ticket_id.clone(),
        case_id: i.case_id.clone(),
        matter_id: i.matter_id.clone(),
        matter_name: i.matter_name.clone(),
        window_code: i.window_code.clone(),
        hall_id: i.hall_id.clone(),
        department: i.department.clone(),
        staff_id: i.staff_id.clone(),
        citizen_id: i.citizen_id.clone(),
        open_time: Some(xiaoneng_kit::timestamp(i.opened_at)),
        rate_by_date: i.rate_by.to_string(),
        rating_id: i.rating_id.map(|r| r.to_string()).unwrap_or_default(),
        expired: i.expired_at.is_some(),
    }
}

/// A refused item of a batch, as the result names it.
fn refusal(e: AppError) -> Result<pb::SubmitRatingResult, Status> {
    let (code, reason, fields) = match &e {
        AppError::InvalidArgument(v) => (
            "INVALID_ARGUMENT",
            "",
            v.iter().map(|f| f.field.clone()).collect(),
        ),
        AppError::NotFound { .. } => ("NOT_FOUND", "", Vec::new()),
        AppError::FailedPrecondition { reason, .. } => ("FAILED_PRECONDITION", *reason, Vec::new()),
        AppError::PermissionDenied(_) => ("PERMISSION_DENIED", "", Vec::new()),
        AppError::AlreadyExists(_) => ("ALREADY_EXISTS", "", Vec::new()),
        AppError::Aborted(_) => ("ABORTED", "", Vec::new()),
        _ => return Err(e.into()),
    };
    Ok(pb::SubmitRatingResult {
        rating: None,
        error_code: code.to_string(),
        error_reason: reason.to_string(),
        error_message: e.to_string(),
        bad_fields: fields,
    })
}

/// What the public sees of a rating: the account masked (or 匿名), the texts masked, never the
/// device or an appeal.
fn public_pb(p: &crate::domain::PublicRow) -> pb::PublicRating {
    use xiaoneng_kit::mask;
    let r = &p.rating;
    let l = r.bad_loop.as_ref().map(|l| &l.0);
    pb::PublicRating {
        id: r.id.to_string(),
        region_code: r.region_code.clone(),
        level: r.level,
        occurrence: p.occurrence.wire() as i32,
        matter_name: p.matter_name.clone(),
        department: p.department.clone(),
        window_code: p.window_code.clone(),
        staff_id: p.staff_id.clone(),
        rater: if r.anonymous || r.defaulted {
            "匿名".into()
        } else {
            mask::name(&r.rater)
        },
        comment: mask::text(&r.comment),
        tags: r.tags.iter().map(|t| mask::text(t)).collect(),
        follow_up: mask::text(&r.follow_up),
        rate_time: Some(xiaoneng_kit::timestamp(r.rated_at)),
        loop_state: l.map(|l| l.state.wire() as i32).unwrap_or_default(),
        rectification: l.map(|l| mask::text(&l.rectification)).unwrap_or_default(),
        reply: l.map(|l| mask::text(&l.reply)).unwrap_or_default(),
        defaulted: r.defaulted,
    }
}

fn rating_pb(r: &RatingRow, today: chrono::NaiveDate) -> pb::Rating {
    pb::Rating {
        id: r.id.to_string(),
        invitation_id: r.invitation_id.to_string(),
        region_code: r.region_code.clone(),
        level: r.level,
        scores: r
            .scores
            .0
            .iter()
            .map(|(i, l)| pb::Score {
                indicator: i.clone(),
                level: *l,
            })
            .collect(),
        comment: r.comment.clone(),
        tags: r.tags.clone(),
        reason: r.reason.clone(),
        channel: r.channel,
        anonymous: r.anonymous,
        follow_up: r.follow_up.clone(),
        rate_time: Some(xiaoneng_kit::timestamp(r.rated_at)),
        excluded: r.excluded,
        defaulted: r.defaulted,
        appeal: r.appeal.as_ref().map(|a| pb::Appeal {
            state: match a.state {
                AppealState::Pending => pb::AppealState::Pending,
                AppealState::Upheld => pb::AppealState::Upheld,
                AppealState::Rejected => pb::AppealState::Rejected,
            } as i32,
            grounds: a.grounds.clone(),
            statement: a.statement.clone(),
            evidence: a.evidence.clone(),
            appealed_by: a.appealed_by.clone(),
            decided_by: a.decided_by.clone(),
            decision_reason: a.decision_reason.clone(),
        }),
        r#loop: r.bad_loop.as_ref().map(|l| pb::BadRatingLoop {
            state: l.state.wire() as i32,
            step_due_date: date(l.step_due),
            step_overdue: l.overdue(today),
            reopened: l.reopened as i32,
            callback_outcome: l.callback_outcome.clone(),
            callback_time: l.callback_at.map(xiaoneng_kit::timestamp),
            rectification: l.rectification.clone(),
            reply: l.reply.clone(),
            confirmation: l.confirmation.clone(),
            provisional: l.provisional,
        }),
    }
}

fn step(r: &pb::AdvanceLoopRequest) -> AppResult<Step> {
    let text = r.text.clone();
    Ok(match pb::LoopStep::try_from(r.step) {
        Ok(pb::LoopStep::Callback) => Step::Callback { outcome: text },
        Ok(pb::LoopStep::Rectify) => Step::Rectify { text },
        Ok(pb::LoopStep::Reply) => Step::Reply { text },
        Ok(pb::LoopStep::Confirm) => Step::Confirm {
            answer: Confirmation::parse(text.trim()).ok_or_else(|| {
                AppError::invalid(
                    "text",
                    "must be satisfied, basically_satisfied or not_satisfied",
                )
            })?,
        },
        _ => return Err(AppError::invalid("step", "must name a step of the loop")),
    })
}

#[tonic::async_trait]
impl pb::evaluation_service_server::EvaluationService for EvaluationApi {
    async fn get_invitation(
        &self,
        req: Request<pb::GetInvitationRequest>,
    ) -> Result<Response<pb::GetInvitationResponse>, Status> {
        let c = caller(&req, "GetInvitation")?;
        let inv = self.0.invitation(&c, id(&req.get_ref().id, "id")?).await?;
        Ok(Response::new(pb::GetInvitationResponse {
            invitation: Some(invitation_pb(&inv)),
        }))
    }

    async fn list_invitations(
        &self,
        req: Request<pb::ListInvitationsRequest>,
    ) -> Result<Response<pb::ListInvitationsResponse>, Status> {
        let c = caller(&req, "ListInvitations")?;
        let (rows, next_page_token) = self.0.invitations(&c, req.get_ref()).await?;
        let invitations = rows.iter().map(invitation_pb).collect();
        Ok(Response::new(pb::ListInvitationsResponse {
            invitations,
            next_page_token,
        }))
    }

    async fn submit_rating(
        &self,
        req: Request<pb::SubmitRatingRequest>,
    ) -> Result<Response<pb::SubmitRatingResponse>, Status> {
        let c = caller(&req, "SubmitRating")?;
        let inv = id(&req.get_ref().invitation_id, "invitation_id")?;
        let (_, r) = self.0.rate(&c, inv, req.get_ref()).await?;
        Ok(Response::new(pb::SubmitRatingResponse {
            rating: Some(rating_pb(&r, self.0.clock.today())),
        }))
    }

    async fn submit_ratings(
        &self,
        req: Request<pb::SubmitRatingsRequest>,
    ) -> Result<Response<pb::SubmitRatingsResponse>, Status> {
        let c = caller(&req, "SubmitRatings")?;
        let items = &req.get_ref().ratings;
        let mut v = xiaoneng_kit::Violations::new();
        v.check(!items.is_empty(), "ratings", "name at least one rating");
        v.check(
            items.len() <= MAX_BATCH,
            "ratings",
            &format!("at most {MAX_BATCH} in one call"),
        );
        v.into_result()?;
        // Items whose id does not parse are refused here; the rest go to one transaction.
        let mut parsed = Vec::new();
        let mut results: Vec<Option<pb::SubmitRatingResult>> = Vec::with_capacity(items.len());
        for r in items {
            match id(&r.invitation_id, "invitation_id") {
                Ok(inv) => {
                    parsed.push((inv, r));
                    results.push(None);
                }
                Err(e) => results.push(Some(refusal(e)?)),
            }
        }
        let today = self.0.clock.today();
        let mut done = self.0.rate_many(&c, &parsed).await?.into_iter();
        let mut out = Vec::with_capacity(items.len());
        for slot in results {
            out.push(match slot {
                Some(refused) => refused,
                None => match done.next().expect("one outcome per parsed item") {
                    Ok((_, r)) => pb::SubmitRatingResult {
                        rating: Some(rating_pb(&r, today)),
                        ..Default::default()
                    },
                    Err(e) => refusal(e)?,
                },
            });
        }
        Ok(Response::new(pb::SubmitRatingsResponse { results: out }))
    }

    async fn list_rating_options(
        &self,
        req: Request<pb::ListRatingOptionsRequest>,
    ) -> Result<Response<pb::ListRatingOptionsResponse>, Status> {
        let occurrence = match pb::Occurrence::try_from(req.get_ref().occurrence) {
            Ok(pb::Occurrence::Online) => crate::domain::Occurrence::Online,
            _ => crate::domain::Occurrence::OnSite,
        };
        let levels = crate::domain::LEVEL_NAMES
            .iter()
            .map(|(v, n)| pb::RatingOption {
                code: v.to_string(),
                name: n.to_string(),
                bad: *v <= 2,
            })
            .collect();
        let indicators = crate::domain::indicators(occurrence)
            .iter()
            .map(|c| pb::RatingOption {
                code: c.to_string(),
                name: crate::domain::indicator_name(c).to_string(),
                bad: false,
            })
            .collect();
        Ok(Response::new(pb::ListRatingOptionsResponse {
            levels,
            indicators,
        }))
    }

    async fn list_public_ratings(
        &self,
        req: Request<pb::ListPublicRatingsRequest>,
    ) -> Result<Response<pb::ListPublicRatingsResponse>, Status> {
        let r = req.get_ref();
        let mut v = xiaoneng_kit::Violations::new();
        let scope = region::RegionCode::parse_field(&r.region_code, "region_code", &mut v);
        let page = xiaoneng_kit::paging::PageRequest::parse(r.page_size, &r.page_token);
        if let Err(AppError::InvalidArgument(bad)) = &page {
            for f in bad {
                v.check(false, &f.field, &f.description);
            }
        }
        v.into_result()?;
        let (scope, page) = (scope.expect("checked"), page?);
        let today = self.0.clock.today();
        let from = parse_date_field(
            &r.from_date,
            "from_date",
            today - chrono::Duration::days(30),
        )?;
        let to = parse_date_field(&r.to_date, "to_date", today)?;
        let (rows, next_page_token) = self
            .0
            .public_ratings(&scope, (from, to), r.bad_only, &page)
            .await?;
        Ok(Response::new(pb::ListPublicRatingsResponse {
            ratings: rows.iter().map(public_pb).collect(),
            next_page_token,
        }))
    }

    async fn add_follow_up(
        &self,
        req: Request<pb::AddFollowUpRequest>,
    ) -> Result<Response<pb::AddFollowUpResponse>, Status> {
        let c = caller(&req, "AddFollowUp")?;
        let r = req.get_ref();
        let mut v = xiaoneng_kit::Violations::new();
        v.text(&r.comment, "comment", 1000);
        v.into_result()?;
        let r = self
            .0
            .follow_up(&c, id(&r.rating_id, "rating_id")?, &r.comment)
            .await?;
        Ok(Response::new(pb::AddFollowUpResponse {
            rating: Some(rating_pb(&r, self.0.clock.today())),
        }))
    }

    async fn get_rating(
        &self,
        req: Request<pb::GetRatingRequest>,
    ) -> Result<Response<pb::GetRatingResponse>, Status> {
        let c = caller(&req, "GetRating")?;
        let r = self
            .0
            .rating(&c.audience(), id(&req.get_ref().id, "id")?)
            .await?;
        Ok(Response::new(pb::GetRatingResponse {
            rating: Some(rating_pb(&r, self.0.clock.today())),
        }))
    }

    async fn advance_loop(
        &self,
        req: Request<pb::AdvanceLoopRequest>,
    ) -> Result<Response<pb::AdvanceLoopResponse>, Status> {
        let c = caller(&req, "AdvanceLoop")?;
        let (rating, step) = (
            id(&req.get_ref().rating_id, "rating_id")?,
            step(req.get_ref())?,
        );
        let r = self.0.advance(&c, rating, step).await?;
        Ok(Response::new(pb::AdvanceLoopResponse {
            rating: Some(rating_pb(&r, self.0.clock.today())),
        }))
    }

    async fn appeal_rating(
        &self,
        req: Request<pb::AppealRatingRequest>,
    ) -> Result<Response<pb::AppealRatingResponse>, Status> {
        let c = caller(&req, "AppealRating")?;
        let rating = id(&req.get_ref().rating_id, "rating_id")?;
        let r = self.0.appeal(&c, rating, req.get_ref()).await?;
        Ok(Response::new(pb::AppealRatingResponse {
            rating: Some(rating_pb(&r, self.0.clock.today())),
        }))
    }

    async fn decide_appeal(
        &self,
        req: Request<pb::DecideAppealRequest>,
    ) -> Result<Response<pb::DecideAppealResponse>, Status> {
        let c = caller(&req, "DecideAppeal")?;
        let r = req.get_ref();
        let r = self
            .0
            .decide_appeal(&c, id(&r.rating_id, "rating_id")?, r.uphold, &r.reason)
            .await?;
        Ok(Response::new(pb::DecideAppealResponse {
            rating: Some(rating_pb(&r, self.0.clock.today())),
        }))
    }

    async fn list_manipulation_flags(
        &self,
        req: Request<pb::ListManipulationFlagsRequest>,
    ) -> Result<Response<pb::ListManipulationFlagsResponse>, Status> {
        let c = caller(&req, "ListManipulationFlags")?;
        let scope = region::narrow(&c.region, &req.get_ref().region_code, "region_code")?;
        let flags = self.0.flags(&scope).await?;
        let flags = flags
            .into_iter()
            .map(|f| pb::ManipulationFlag {
                id: f.id.to_string(),
                region_code: f.region_code,
                kind: f.kind.name().to_string(),
                subject: f.subject,
                ratings: f.ratings,
                window_minutes: f.window_minutes,
                rating_ids: f.rating_ids.iter().map(|r| r.to_string()).collect(),
                flag_time: Some(xiaoneng_kit::timestamp(f.flagged_at)),
            })
            .collect();
        Ok(Response::new(pb::ListManipulationFlagsResponse { flags }))
    }

    async fn get_statistics(
        &self,
        req: Request<pb::GetStatisticsRequest>,
    ) -> Result<Response<pb::GetStatisticsResponse>, Status> {
        let c = caller(&req, "GetStatistics")?;
        let r = req.get_ref();
        let scope = region::narrow(&c.region, &r.region_code, "region_code")?;
        let today = self.0.clock.today();
        let from = parse_date_field(&r.from_date, "from_date", today)?;
        let to = parse_date_field(&r.to_date, "to_date", today)?;
        let dimension = match pb::Dimension::try_from(r.dimension) {
            Ok(pb::Dimension::Region) => "region_code",
            Ok(pb::Dimension::Department) => "department",
            Ok(pb::Dimension::Staff) => "staff_id",
            Ok(pb::Dimension::Window) => "window_code",
            Ok(pb::Dimension::Matter) => "matter_id",
            _ => return Err(AppError::invalid("dimension", "must name a dimension").into()),
        };
        let bottom = (r.bottom > 0).then_some(crate::domain::Bottom {
            n: r.bottom as usize,
            min_ratings: r.min_ratings.max(1) as i64,
        });
        let rows = self
            .0
            .statistics(&scope, dimension, (from, to), bottom)
            .await?;
        let rows = rows
            .iter()
            .map(|s| {
                let (satisfaction_rate, bad_rate, callback_rate, rectification_rate) = s.rates();
                pb::StatisticsRow {
                    key: s.key.clone(),
                    ratings: s.ratings,
                    bad_ratings: s.bad,
                    satisfaction_rate,
                    bad_rate,
                    callback_rate,
                    rectification_rate,
                }
            })
            .collect();
        Ok(Response::new(pb::GetStatisticsResponse { rows }))
    }
}
