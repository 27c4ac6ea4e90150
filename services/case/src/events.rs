//! Events the case service publishes on `xiaoneng.case.events`.

use xiaoneng_kit::events::NewEvent;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::ServiceKind;
use xiaoneng_proto::case::events::v1::{CaseTransitioned, OneTimeNoticeViolated};

use crate::domain::State;
use crate::store::{state_name, CaseRow};

fn region(row: &CaseRow) -> anyhow::Result<RegionCode> {
    RegionCode::parse(&row.region_code).map_err(anyhow::Error::msg)
}

pub fn transitioned(
    row: &CaseRow,
    action: &str,
    from: State,
    actor: &str,
    role: &str,
    reason: &str,
) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Case,
        row.id.to_string(),
        &region(row)?,
        &CaseTransitioned {
            case_id: row.id.to_string(),
            region_code: row.region_code.clone(),
            matter_id: row.matter_id.to_string(),
            matter_version: row.matter_version,
            action: action.to_string(),
            from_state: state_name(from),
            to_state: state_name(row.body.case.state),
            actor: actor.to_string(),
            actor_role: role.to_string(),
            reason: reason.to_string(),
            case_version: row.version,
            promised_deadline: row.promised_deadline.map(|d| d.to_string()).unwrap_or_default(),
            statutory_deadline: row.statutory_deadline.map(|d| d.to_string()).unwrap_or_default(),
        },
    ))
}

pub fn notice_violated(row: &CaseRow, materials: &[String], actor: &str) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Case,
        row.id.to_string(),
        &region(row)?,
        &OneTimeNoticeViolated {
            case_id: row.id.to_string(),
            region_code: row.region_code.clone(),
            matter_id: row.matter_id.to_string(),
            materials: materials.to_vec(),
            actor: actor.to_string(),
        },
    ))
}
