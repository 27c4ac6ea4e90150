//! The catalog as the other services call it: the matter version in force on a day, with one
//! mapping of the catalog's errors (no such matter in force → NOT_FOUND naming it, anything
//! else → UNAVAILABLE) and one client per process, connected lazily, carrying the trace context.

use crate::telemetry::{traced_channel, TracedChannel};
use chrono::NaiveDate;
use xiaoneng_proto::catalog::v1::{
    catalog_service_client::CatalogServiceClient, GetMatterRequest, MatterVersion,
};

use crate::{AppError, AppResult};

#[derive(Clone)]
pub struct Catalog {
    client: CatalogServiceClient<TracedChannel>,
}

impl Catalog {
    /// A lazily connected client of the catalog at `addr` (`setting` names it in errors).
    pub fn connect_lazy(addr: &str, setting: &str) -> anyhow::Result<Self> {
        Ok(Catalog {
            client: CatalogServiceClient::new(traced_channel(addr, setting)?),
        })
    }

    /// The version of `matter_id` in force on `on`.
    pub async fn matter_in_force(
        &self,
        matter_id: &str,
        on: NaiveDate,
    ) -> AppResult<MatterVersion> {
        let req = GetMatterRequest {
            matter_id: matter_id.to_string(),
            as_of: on.to_string(),
        };
        let answer = self
            .client
            .clone()
            .get_matter(req)
            .await
            .map_err(|s| match s.code() {
                tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                    AppError::not_found("matter in force", matter_id.to_string())
                }
                _ => AppError::Unavailable(format!("catalog: {}", s.message())),
            })?;
        answer
            .into_inner()
            .matter
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("catalog answered without a matter")))
    }
}
