//! The target a complaint names, checked where an id is given: a matter in force in the
//! catalog, a case in the case service, a ticket in the queue — each asked over gRPC as the
//! complaint service itself (a short-lived `system` token of the complaint's region). A
//! service that is not configured, or not reachable, leaves the target as given (a complaint
//! is never refused because a neighbour is down); a target that does not exist is NOT_FOUND.

use chrono::NaiveDate;
use xiaoneng_kit::auth::{roles, TokenMinter};
use xiaoneng_kit::catalog::Catalog;
use xiaoneng_kit::telemetry::{traced_channel, TracedChannel};
use xiaoneng_kit::{AppError, AppResult};
use xiaoneng_proto::case::v1::case_service_client::CaseServiceClient;
use xiaoneng_proto::case::v1::GetCaseRequest;
use xiaoneng_proto::queue::v1::queue_service_client::QueueServiceClient;
use xiaoneng_proto::queue::v1::GetTicketRequest;

use crate::domain::TargetKind;

#[derive(Clone)]
pub struct Targets {
    pub catalog: Option<Catalog>,
    pub cases: Option<CaseServiceClient<TracedChannel>>,
    pub tickets: Option<QueueServiceClient<TracedChannel>>,
    pub minter: std::sync::Arc<TokenMinter>,
}

fn lazy(addr: &str, setting: &str) -> anyhow::Result<Option<TracedChannel>> {
    if addr.is_empty() {
        return Ok(None);
    }
    Ok(Some(traced_channel(addr, setting)?))
}

impl Targets {
    pub fn connect(
        catalog: &str,
        case: &str,
        queue: &str,
        minter: TokenMinter,
    ) -> anyhow::Result<Targets> {
        Ok(Targets {
            catalog: if catalog.is_empty() {
                None
            } else {
                Some(Catalog::connect_lazy(catalog, "domain.catalog_addr")?)
            },
            cases: lazy(case, "domain.case_addr")?.map(CaseServiceClient::new),
            tickets: lazy(queue, "domain.queue_addr")?.map(QueueServiceClient::new),
            minter: std::sync::Arc::new(minter),
        })
    }

    fn request<T>(&self, msg: T, region: &str) -> AppResult<tonic::Request<T>> {
        let t = self
            .minter
            .mint("complaint-service", &[roles::SYSTEM], region, None, 60);
        let mut r = tonic::Request::new(msg);
        let v = format!("Bearer {t}")
            .parse()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("token header")))?;
        r.metadata_mut().insert("authorization", v);
        Ok(r)
    }

    /// Checks the target; the department it belongs to when the owning service tells it.
    pub async fn check(
        &self,
        kind: TargetKind,
        id: &str,
        region: &str,
        today: NaiveDate,
    ) -> AppResult<Option<String>> {
        let unavailable = |what: &str, s: &tonic::Status| {
            tracing::warn!(target_kind = what, error = %s.message(), "target not checked: its service did not answer");
        };
        match kind {
            TargetKind::Matter => {
                let Some(c) = &self.catalog else {
                    return Ok(None);
                };
                match c.matter_in_force(id, today).await {
                    Ok(m) => Ok(Some(m.department_name)),
                    Err(AppError::Unavailable(m)) => {
                        tracing::warn!(error = %m, "target not checked: the catalog did not answer");
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            }
            TargetKind::Case => {
                let Some(c) = &self.cases else {
                    return Ok(None);
                };
                let req = self.request(GetCaseRequest { id: id.to_string() }, region)?;
                match c.clone().get_case(req).await {
                    Ok(r) => Ok(r.into_inner().case.map(|k| k.handling_department)),
                    Err(s)
                        if matches!(
                            s.code(),
                            tonic::Code::NotFound | tonic::Code::InvalidArgument
                        ) =>
                    {
                        Err(AppError::not_found("case", id))
                    }
                    Err(s) => {
                        unavailable("case", &s);
                        Ok(None)
                    }
                }
            }
            TargetKind::Ticket => {
                let Some(c) = &self.tickets else {
                    return Ok(None);
                };
                let req = self.request(
                    GetTicketRequest {
                        ticket_id: id.to_string(),
                    },
                    region,
                )?;
                match c.clone().get_ticket(req).await {
                    Ok(_) => Ok(None),
                    Err(s)
                        if matches!(
                            s.code(),
                            tonic::Code::NotFound | tonic::Code::InvalidArgument
                        ) =>
                    {
                        Err(AppError::not_found("ticket", id))
                    }
                    Err(s) => {
                        unavailable("ticket", &s);
                        Ok(None)
                    }
                }
            }
            _ => Ok(None),
        }
    }
}
