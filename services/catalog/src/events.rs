//! Events the catalog publishes on `xiaoneng.catalog.events`.

use xiaoneng_kit::events::NewEvent;
use xiaoneng_kit::ServiceKind;
use xiaoneng_proto::catalog::events::v1::DepartmentCreated;

use crate::domain::{CertificateRow, DepartmentRow};

pub fn department_created(d: &DepartmentRow) -> anyhow::Result<NewEvent> {
    let region =
        xiaoneng_kit::region::RegionCode::parse(&d.region_code).map_err(anyhow::Error::msg)?;
    Ok(NewEvent::new(
        ServiceKind::Catalog,
        d.id.to_string(),
        &region,
        &DepartmentCreated {
            department_id: d.id.to_string(),
            region_code: d.region_code.clone(),
            code: d.code.clone(),
            display_name: d.display_name.clone(),
        },
    ))
}

pub fn matter_published(
    matter_id: uuid::Uuid,
    region: &xiaoneng_kit::region::RegionCode,
    version: i32,
    terms: &xiaoneng_proto::catalog::v1::MatterTerms,
    effective: chrono::NaiveDate,
) -> NewEvent {
    NewEvent::new(
        ServiceKind::Catalog,
        matter_id.to_string(),
        region,
        &xiaoneng_proto::catalog::events::v1::MatterPublished {
            matter_id: matter_id.to_string(),
            region_code: region.to_string(),
            version,
            implementation_code: terms.implementation_code.clone(),
            name: terms.name.clone(),
            department_id: terms.department_id.clone(),
            effective_date: effective.to_string(),
            statutory_limit_days: terms.statutory_limit_days,
            promised_limit_days: terms.promised_limit_days,
            max_visits: terms.max_visits,
        },
    )
}

pub fn matter_retired(
    matter_id: uuid::Uuid,
    region: &xiaoneng_kit::region::RegionCode,
    on: chrono::NaiveDate,
    reason: &str,
) -> NewEvent {
    NewEvent::new(
        ServiceKind::Catalog,
        matter_id.to_string(),
        region,
        &xiaoneng_proto::catalog::events::v1::MatterRetired {
            matter_id: matter_id.to_string(),
            region_code: region.to_string(),
            retire_date: on.to_string(),
            reason: reason.to_string(),
        },
    )
}

pub fn certificate_changed(
    c: &CertificateRow,
    region: &xiaoneng_kit::region::RegionCode,
) -> NewEvent {
    NewEvent::new(
        ServiceKind::Catalog,
        c.staff_id.to_string(),
        region,
        &xiaoneng_proto::catalog::events::v1::CertificateChanged {
            certificate_id: c.id.to_string(),
            staff_id: c.staff_id.to_string(),
            region_code: c.region_code.clone(),
            number: c.number.clone(),
            status: if c.revoked { "REVOKED" } else { "VALID" }.into(),
            expiry_date: c.expiry_date.to_string(),
            reason: c.revoke_reason.clone().unwrap_or_default(),
        },
    )
}

pub fn matter_assigned(
    staff_id: uuid::Uuid,
    matter_id: uuid::Uuid,
    a: &crate::domain::Assigned,
    on: chrono::NaiveDate,
) -> NewEvent {
    NewEvent::new(
        ServiceKind::Catalog,
        staff_id.to_string(),
        &a.region,
        &xiaoneng_proto::catalog::events::v1::MatterAssigned {
            staff_id: staff_id.to_string(),
            matter_id: matter_id.to_string(),
            region_code: a.region.to_string(),
            department_id: a.department_id.to_string(),
            enforcement: a.enforcement,
            assigned_date: on.to_string(),
        },
    )
}
