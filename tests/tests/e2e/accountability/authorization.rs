//! The accountability service's authorization as a matrix: every method × every role, each
//! cell's allow or deny written out here — not read from the service's table; and the region
//! cells: a county sees and acts on its own records only, the city on all of its counties.

use tonic::Code;
use xiaoneng_e2e::proto::accountability::v1 as apb;
use xiaoneng_e2e::proto::accountability::v1::accountability_service_client::AccountabilityServiceClient;
use xiaoneng_e2e::{channel, shared_brokers, token, Intercepted, ServiceProc};
use xiaoneng_kit::auth::roles::*;
use xiaoneng_kit::ServiceKind;

type Client = AccountabilityServiceClient<Intercepted>;

/// Method → the roles that may call it: the efficiency office (supervisor) everything, the
/// discipline inspectors (inspector) reads and inspections, nobody else anything.
const EXPECTED: &[(&str, &[&str])] = &[
    ("ListLedgerEntries", &[SUPERVISOR, INSPECTOR]),
    ("LoadRuleSet", &[SUPERVISOR]),
    ("ListRuleSets", &[SUPERVISOR, INSPECTOR]),
    ("ListRecords", &[SUPERVISOR, INSPECTOR]),
    ("ExemptRecord", &[SUPERVISOR]),
    ("RecordInspection", &[SUPERVISOR, INSPECTOR]),
    ("WhatIf", &[SUPERVISOR]),
    ("GetRanking", &[SUPERVISOR, INSPECTOR]),
    ("RecordAction", &[SUPERVISOR]),
    ("PublishBulletin", &[SUPERVISOR]),
    ("GetBulletin", &[SUPERVISOR, INSPECTOR]),
    ("ListBulletins", &[SUPERVISOR, INSPECTOR]),
    ("GrantTitle", &[SUPERVISOR]),
    ("AssessTitles", &[SUPERVISOR]),
];

const ROLES: &[&str] = &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM, CATALOG_ADMIN];

async fn as_in(s: &ServiceProc, who: &str, roles: &[&str], region: &str) -> Client {
    AccountabilityServiceClient::new(channel(&s.addr(), Some(&token(who, roles, region))).await)
}

/// Calls `method` with an (almost) empty request; its code.
async fn call(c: &mut Client, method: &str) -> Code {
    let r = match method {
        "ListLedgerEntries" => c.list_ledger_entries(apb::ListLedgerEntriesRequest::default()).await.map(|_| ()),
        "LoadRuleSet" => c.load_rule_set(apb::LoadRuleSetRequest::default()).await.map(|_| ()),
        "ListRuleSets" => c.list_rule_sets(apb::ListRuleSetsRequest::default()).await.map(|_| ()),
        "ListRecords" => c.list_records(apb::ListRecordsRequest::default()).await.map(|_| ()),
        "ExemptRecord" => c.exempt_record(apb::ExemptRecordRequest::default()).await.map(|_| ()),
        "RecordInspection" => c.record_inspection(apb::RecordInspectionRequest::default()).await.map(|_| ()),
        "WhatIf" => c.what_if(apb::WhatIfRequest::default()).await.map(|_| ()),
        "GetRanking" => c.get_ranking(apb::GetRankingRequest::default()).await.map(|_| ()),
        "RecordAction" => c.record_action(apb::RecordActionRequest::default()).await.map(|_| ()),
        "PublishBulletin" => c.publish_bulletin(apb::PublishBulletinRequest::default()).await.map(|_| ()),
        "GetBulletin" => c.get_bulletin(apb::GetBulletinRequest::default()).await.map(|_| ()),
        "ListBulletins" => c.list_bulletins(apb::ListBulletinsRequest::default()).await.map(|_| ()),
        "GrantTitle" => c.grant_title(apb::GrantTitleRequest::default()).await.map(|_| ()),
        "AssessTitles" => c.assess_titles(apb::AssessTitlesRequest::default()).await.map(|_| ()),
        other => panic!("no such method {other}"),
    };
    r.err().map_or(Code::Ok, |e| e.code())
}

/// Every role on every method: PERMISSION_DENIED exactly where the matrix says deny; and no
/// token at all is UNAUTHENTICATED everywhere.
#[tokio::test(flavor = "multi_thread")]
async fn every_role_on_every_method() {
    let s = ServiceProc::start(ServiceKind::Accountability, &shared_brokers()).await;
    let mut wrong = Vec::new();
    for role in ROLES {
        let mut c = as_in(&s, &format!("{role}-1"), &[role], "410702").await;
        for (method, allowed) in EXPECTED {
            let denied = call(&mut c, method).await == Code::PermissionDenied;
            if denied == allowed.contains(role) {
                wrong.push(format!("{role} on {method}: {}", if denied { "denied" } else { "allowed" }));
            }
        }
    }
    let mut anonymous = AccountabilityServiceClient::new(channel(&s.addr(), None).await);
    for (method, _) in EXPECTED {
        let code = call(&mut anonymous, method).await;
        if code != Code::Unauthenticated {
            wrong.push(format!("no token on {method}: {code:?}"));
        }
    }
    assert!(wrong.is_empty(), "cells not as expected:\n{}", wrong.join("\n"));
}

fn inspection(region: &str, person: &str) -> apb::RecordInspectionRequest {
    apb::RecordInspectionRequest {
        region_code: region.into(),
        kind: "random_check".into(),
        place: "政务服务中心".into(),
        findings: vec![apb::InspectionFinding {
            unit: "行政审批局".into(),
            person: person.into(),
            level: "reminder".into(),
            title: "工作日志缺失".into(),
        }],
        ..Default::default()
    }
}

/// Records of 410702 and 410703 (an inspection in each): each county's office lists its own
/// only, the city both; a county cannot exempt the other's record (NOT_FOUND: it does not exist
/// for it), act on, rank or publish for the other county, or load its rules
/// (PERMISSION_DENIED); the city can.
#[tokio::test(flavor = "multi_thread")]
async fn a_county_acts_on_its_own_records_and_the_city_on_its_counties() {
    let s = ServiceProc::start(ServiceKind::Accountability, &shared_brokers()).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut hongqi = as_in(&s, "office-702", &[SUPERVISOR], "410702").await;
    let mut weibin = as_in(&s, "office-703", &[SUPERVISOR], "410703").await;
    let mut city = as_in(&s, "office-700", &[SUPERVISOR], "410700").await;
    let a = hongqi.record_inspection(inspection("", &format!("a-{tag}"))).await.unwrap().into_inner().records;
    let b = weibin.record_inspection(inspection("", &format!("b-{tag}"))).await.unwrap().into_inner().records;
    assert_eq!((a[0].region_code.as_str(), b[0].region_code.as_str()), ("410702", "410703"));
    let denied = hongqi.record_inspection(inspection("410703", "x")).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "an inspection in another county");

    let mine = |records: Vec<apb::Record>| -> Vec<String> {
        let mut v: Vec<String> =
            records.into_iter().filter(|r| r.person.ends_with(&tag)).map(|r| r.region_code).collect();
        v.sort();
        v
    };
    let list = apb::ListRecordsRequest { page_size: 100, ..Default::default() };
    assert_eq!(mine(hongqi.list_records(list.clone()).await.unwrap().into_inner().records), ["410702"]);
    assert_eq!(mine(weibin.list_records(list.clone()).await.unwrap().into_inner().records), ["410703"]);
    assert_eq!(mine(city.list_records(list.clone()).await.unwrap().into_inner().records), ["410702", "410703"]);
    let narrow = apb::ListRecordsRequest { region_code: "410703".into(), ..list.clone() };
    assert_eq!(hongqi.list_records(narrow.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(mine(city.list_records(narrow).await.unwrap().into_inner().records), ["410703"]);

    let exempt = |id: &str| apb::ExemptRecordRequest {
        record_id: id.into(),
        reason: "系统故障".into(),
        approver: "效能办".into(),
    };
    assert_eq!(hongqi.exempt_record(exempt(&b[0].id)).await.unwrap_err().code(), Code::NotFound);
    city.exempt_record(exempt(&b[0].id)).await.unwrap();

    let period = "2026-11".to_string();
    let other = "410703".to_string();
    let ranking = apb::GetRankingRequest { region_code: other.clone(), period: period.clone(), staff: false };
    assert_eq!(hongqi.get_ranking(ranking.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    city.get_ranking(ranking).await.unwrap();
    let bulletin = apb::PublishBulletinRequest { region_code: other.clone(), period: period.clone() };
    assert_eq!(hongqi.publish_bulletin(bulletin.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    let action = apb::RecordActionRequest {
        region_code: other.clone(),
        period,
        key: "行政审批局".into(),
        action: "interview".into(),
        note: "约谈".into(),
    };
    assert_eq!(hongqi.record_action(action.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    // The city acts for the county: its bulletin is published, and an action is held to the
    // county's ranking (行政审批局 is not ranked there: FAILED_PRECONDITION, not DENIED).
    let published = city.publish_bulletin(bulletin).await.unwrap().into_inner();
    assert!(published.markdown.contains("410703"), "{}", published.markdown);
    // The stored bulletin is read back by its region and the city, never by the other county.
    let get = apb::GetBulletinRequest { bulletin_id: published.bulletin_id.clone() };
    let stored = city.get_bulletin(get.clone()).await.unwrap().into_inner().bulletin.unwrap();
    assert_eq!((stored.region_code.as_str(), stored.markdown.as_str()), ("410703", published.markdown.as_str()));
    assert_eq!(weibin.get_bulletin(get.clone()).await.unwrap().into_inner().bulletin.unwrap().html, published.html);
    assert_eq!(hongqi.get_bulletin(get).await.unwrap_err().code(), Code::NotFound);
    let list = apb::ListBulletinsRequest { page_size: 100, ..Default::default() };
    let ids = |r: apb::ListBulletinsResponse| r.bulletins.into_iter().map(|b| b.id).collect::<Vec<_>>();
    assert!(!ids(hongqi.list_bulletins(list.clone()).await.unwrap().into_inner()).contains(&published.bulletin_id));
    assert!(ids(weibin.list_bulletins(list.clone()).await.unwrap().into_inner()).contains(&published.bulletin_id));
    let theirs = apb::ListBulletinsRequest { region_code: "410703".into(), ..list };
    assert_eq!(hongqi.list_bulletins(theirs.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    assert!(ids(city.list_bulletins(theirs).await.unwrap().into_inner()).contains(&published.bulletin_id));
    let refused = city.record_action(action).await.unwrap_err();
    assert_eq!(crate::common::reason(&refused), "NOT_AT_THE_RANKING_EDGE", "{refused:?}");
    let rules = format!("region = \"410703\"\nversion = \"{tag}\"\neffective_from = \"2026-01-01\"\nrules = []\n");
    let load = apb::LoadRuleSetRequest { text: rules };
    assert_eq!(hongqi.load_rule_set(load.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    city.load_rule_set(load).await.unwrap();
}
