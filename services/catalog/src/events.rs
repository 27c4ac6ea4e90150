//! Events the catalog publishes on `xiaoneng.catalog.events`.

use xiaoneng_kit::events::NewEvent;
use xiaoneng_kit::ServiceKind;
use xiaoneng_proto::catalog::events::v1::DepartmentCreated;

use crate::store::DepartmentRow;

pub fn department_created(d: &DepartmentRow) -> anyhow::Result<NewEvent> {
    let region = xiaoneng_kit::region::RegionCode::parse(&d.region_code).map_err(anyhow::Error::msg)?;
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
