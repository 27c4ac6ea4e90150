//! Events the accountability service publishes on `xiaoneng.accountability.events`: every
//! supervision record, for department systems to act on.

use xiaoneng_kit::events::NewEvent;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::ServiceKind;
use xiaoneng_proto::accountability::events::v1::{
    ActionRecorded, BulletinPublished, RecordCreated, RecordExempted, TitleChanged,
};

use crate::domain::RecordRow;

pub fn record_created(r: &RecordRow) -> anyhow::Result<NewEvent> {
    let region = RegionCode::parse(&r.region_code).map_err(anyhow::Error::msg)?;
    Ok(NewEvent::new(
        ServiceKind::Accountability,
        r.id.to_string(),
        &region,
        &RecordCreated {
            record_id: r.id.to_string(),
            region_code: r.region_code.clone(),
            rule_id: r.rule_id.clone(),
            rule_version: r.rule_version.clone(),
            level: r.level.name().to_string(),
            title: r.title.clone(),
            unit: r.unit.clone(),
            person: r.person.clone(),
            subject: r.subject.clone(),
            evidence: r.evidence.iter().map(|e| e.to_string()).collect(),
            on_date: r.on_date.to_string(),
        },
    ))
}

pub fn record_exempted(r: &RecordRow) -> anyhow::Result<NewEvent> {
    let region = RegionCode::parse(&r.region_code).map_err(anyhow::Error::msg)?;
    Ok(NewEvent::new(
        ServiceKind::Accountability,
        r.id.to_string(),
        &region,
        &RecordExempted {
            record_id: r.id.to_string(),
            region_code: r.region_code.clone(),
            reason: r.exemption_reason.clone().unwrap_or_default(),
            approver: r.exemption_approver.clone().unwrap_or_default(),
            exemption_date: r.exemption_date.map(|d| d.to_string()).unwrap_or_default(),
        },
    ))
}

pub fn action_recorded(
    scope: &RegionCode,
    period: &str,
    a: &crate::domain::bulletin::ActionRow,
) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Accountability,
        format!("{}:{period}:{}", scope.as_str(), a.key),
        scope,
        &ActionRecorded {
            region_code: scope.as_str().to_string(),
            period: period.to_string(),
            key: a.key.clone(),
            action: a.action.clone(),
            note: a.note.clone(),
        },
    ))
}

pub fn bulletin_published(
    id: uuid::Uuid,
    scope: &RegionCode,
    period: &str,
    records: &[RecordRow],
) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Accountability,
        id.to_string(),
        scope,
        &BulletinPublished {
            bulletin_id: id.to_string(),
            region_code: scope.as_str().to_string(),
            period: period.to_string(),
            records: records.len() as i32,
        },
    ))
}

pub fn title_changed(
    region: &RegionCode,
    unit: &str,
    year: i32,
    status: &str,
    reasons: &[String],
) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Accountability,
        format!("{}:{unit}:{year}", region.as_str()),
        region,
        &TitleChanged {
            region_code: region.as_str().to_string(),
            unit: unit.to_string(),
            year,
            status: status.to_string(),
            reasons: reasons.to_vec(),
        },
    ))
}
