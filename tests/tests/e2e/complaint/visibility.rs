//! Who sees a complaint, as a matrix: reader (role, region, department, relation to the
//! complaint) × complaint (a 吃拿卡要 report, a retaliation report, an ordinary complaint
//! handed to discipline inspection later, ordinary complaints assigned to a unit, one of
//! another county), each cell written out here by hand — GetComplaint's code, and whether
//! ListComplaints holds it. Then the public face: Open311 lists no discipline report.

use tonic::Code;
use xiaoneng_e2e::proto::complaint::v1 as cpb;
use xiaoneng_e2e::proto::complaint::v1::complaint_service_client::ComplaintServiceClient;
use xiaoneng_e2e::{channel, http_request, shared_brokers, token, token_in};
use xiaoneng_kit::auth::roles::*;

use super::{advance, Complaints};

const OK: Code = Code::Ok;
const NF: Code = Code::NotFound;
const PD: Code = Code::PermissionDenied;

/// The complaints of the matrix, in its column order.
const COLUMNS: [&str; 6] = [
    "bribery about s2",
    "retaliation about s3",
    "handed to discipline",
    "ordinary about s2, assigned to 行政审批局",
    "ordinary about ZH01, assigned to 市场监督管理局",
    "ordinary of county 410703",
];

/// Reader → (subject, roles, region, department) and GetComplaint's code on each column.
type Row = (&'static str, &'static [&'static str], &'static str, &'static str, [Code; 6]);

const MATRIX: &[Row] = &[
    // The accused: never the report about themselves, nor the ordinary complaint naming them.
    ("s2", &[CLERK], "410702", "行政审批局", [NF, NF, NF, NF, NF, NF]),
    ("s2", &[REVIEWER, HALL_MANAGER], "410702", "行政审批局", [NF, NF, NF, NF, NF, NF]),
    // Their colleague in the same department: the ordinary complaint assigned to it only.
    ("s5", &[CLERK], "410702", "行政审批局", [NF, NF, NF, OK, NF, NF]),
    ("s6", &[REVIEWER], "410702", "市场监督管理局", [NF, NF, NF, NF, OK, NF]),
    // The hall, and staff with no department: nothing.
    ("hall-1", &[HALL_MANAGER], "410702", "", [NF, NF, NF, NF, NF, NF]),
    ("clerk-x", &[CLERK], "410702", "", [NF, NF, NF, NF, NF, NF]),
    // The efficiency office: ordinary complaints of its region, no discipline report.
    ("xiaonengban", &[SUPERVISOR], "410702", "", [NF, NF, NF, OK, OK, NF]),
    ("xiaonengban-city", &[SUPERVISOR], "410700", "", [NF, NF, NF, OK, OK, OK]),
    ("xiaonengban-3", &[SUPERVISOR], "410703", "", [NF, NF, NF, NF, NF, OK]),
    // Discipline inspection of the region and above: everything; another county's: nothing.
    ("jiwei-2", &[INSPECTOR], "410702", "", [OK, OK, OK, OK, OK, NF]),
    ("jiwei-city", &[INSPECTOR], "410700", "", [OK, OK, OK, OK, OK, OK]),
    ("jiwei-3", &[INSPECTOR], "410703", "", [NF, NF, NF, NF, NF, OK]),
    // An inspector named in a complaint does not read it either.
    ("s2", &[INSPECTOR], "410702", "", [NF, OK, OK, NF, OK, NF]),
    // The 12345 platform (system, no department) like the office; a department's system like
    // its department.
    ("12345", &[SYSTEM], "410700", "", [NF, NF, NF, OK, OK, OK]),
    ("sys-scjg", &[SYSTEM], "410702", "市场监督管理局", [NF, NF, NF, NF, OK, NF]),
    // Citizens: their own only (the filer of the bribery report reads it, as filed).
    ("citizen-zhang", &[CITIZEN], "410702", "", [OK, PD, OK, OK, PD, NF]),
    ("citizen-li", &[CITIZEN], "410702", "", [PD, OK, PD, PD, OK, NF]),
];

async fn as_reader(addr: &str, sub: &str, roles: &[&str], region: &str, dept: &str) -> Complaints {
    let t = if dept.is_empty() { token(sub, roles, region) } else { token_in(sub, roles, region, dept) };
    ComplaintServiceClient::new(channel(addr, Some(&t)).await)
}

fn filing(
    region: &str,
    category: &str,
    kind: cpb::Kind,
    target: (cpb::TargetKind, &str),
    text: &str,
) -> cpb::FileComplaintRequest {
    cpb::FileComplaintRequest {
        region_code: region.into(),
        kind: kind as i32,
        category: category.into(),
        channel: cpb::Channel::QrCode as i32,
        target: Some(cpb::Target { kind: target.0 as i32, id: target.1.into(), department: "行政审批局".into() }),
        description: text.into(),
        ..Default::default()
    }
}

/// Files the six complaints of [`COLUMNS`]; their ids.
async fn file_columns(addr: &str) -> Vec<String> {
    let mut zhang = as_reader(addr, "citizen-zhang", &[CITIZEN], "410702", "").await;
    let mut li = as_reader(addr, "citizen-li", &[CITIZEN], "410702", "").await;
    let mut wang = as_reader(addr, "citizen-wang", &[CITIZEN], "410703", "").await;
    let mut office = as_reader(addr, "xiaonengban-city", &[SUPERVISOR], "410700", "").await;
    let id = |r: tonic::Response<cpb::FileComplaintResponse>| r.into_inner().complaint.unwrap().id;
    let staff = cpb::TargetKind::Staff;
    let window = cpb::TargetKind::Window;
    let complaint = cpb::Kind::Complaint;
    let bribery = filing("410702", "bribery", complaint, (staff, "s2"), "办理时被暗示\"加急要表示一下\"");
    let retaliation = filing("410702", "buck_passing", cpb::Kind::Retaliation, (staff, "s3"), "投诉后被故意刁难");
    let handed = filing("410702", "slow_action", complaint, (window, "ZH07"), "窗口人员收了两条烟才办");
    let about_s2 = filing("410702", "buck_passing", complaint, (staff, "s2"), "让我跑了三个部门盖章");
    let about_window = filing("410702", "slow_action", complaint, (window, "ZH01"), "等了两个小时");
    let other_county = filing("410703", "slow_action", complaint, (window, "ZH02"), "一直不办");
    let ids = vec![
        id(zhang.file_complaint(bribery).await.unwrap()),
        id(li.file_complaint(retaliation).await.unwrap()),
        id(zhang.file_complaint(handed).await.unwrap()),
        id(zhang.file_complaint(about_s2).await.unwrap()),
        id(li.file_complaint(about_window).await.unwrap()),
        id(wang.file_complaint(other_county).await.unwrap()),
    ];
    for (i, unit) in [(2, "discipline"), (3, "行政审批局"), (4, "市场监督管理局")] {
        advance(&mut office, &ids[i], cpb::Step::Assign, |r| r.unit = unit.into()).await;
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn each_reader_sees_what_the_table_says_and_nothing_else() {
    let svc = super::start(&shared_brokers(), "2026-11-02T10:00:00+08:00").await;
    let addr = svc.addr();
    let ids = file_columns(&addr).await;
    let mut wrong = Vec::new();
    for (sub, roles, region, dept, want) in MATRIX {
        let mut c = as_reader(&addr, sub, roles, region, dept).await;
        let listed: Vec<String> = c
            .list_complaints(cpb::ListComplaintsRequest { page_size: 100, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .complaints
            .into_iter()
            .map(|x| x.id)
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let got = c.get_complaint(cpb::GetComplaintRequest { id: id.clone() }).await.err().map_or(OK, |e| e.code());
            let who = format!("{sub} {roles:?} of {region} {dept}");
            if got != want[i] {
                wrong.push(format!("{who} on {}: {got:?}, expected {:?}", COLUMNS[i], want[i]));
            }
            if listed.contains(id) != (want[i] == OK) {
                wrong.push(format!("{who}: {} {}listed", COLUMNS[i], if listed.contains(id) { "" } else { "not " }));
            }
        }
    }
    assert!(wrong.is_empty(), "cells not as expected:\n{}", wrong.join("\n"));

    // The efficiency office counts the discipline reports it may not read: three in 410702.
    let mut office = as_reader(&addr, "xiaonengban", &[SUPERVISOR], "410702", "").await;
    let list = office.list_complaints(cpb::ListComplaintsRequest::default()).await.unwrap().into_inner();
    assert_eq!(list.discipline_reports, 3);
    let mut clerk = as_reader(&addr, "s5", &[CLERK], "410702", "行政审批局").await;
    let list = clerk.list_complaints(cpb::ListComplaintsRequest::default()).await.unwrap().into_inner();
    assert_eq!(list.discipline_reports, 0, "only the office counts");
    // The accused cannot act on the report either: it does not exist for them.
    let mut accused = as_reader(&addr, "s2", &[HALL_MANAGER], "410702", "行政审批局").await;
    let step =
        cpb::AdvanceComplaintRequest { id: ids[0].clone(), step: cpb::Step::Investigate as i32, ..Default::default() };
    assert_eq!(accused.advance_complaint(step).await.unwrap_err().code(), NF);

    // The public face: no discipline report, by list or by id.
    let open311 = svc.env_of("XIAONENG__DOMAIN__OPEN311__ADDR").unwrap();
    let (st, body) = http_request(&open311, "GET", "/open311/v2/requests.json?jurisdiction_id=410700", None).await;
    assert_eq!(st, 200, "{body}");
    let public: serde_json::Value = serde_json::from_str(&body).unwrap();
    let public: Vec<&str> =
        public.as_array().unwrap().iter().map(|r| r["service_request_id"].as_str().unwrap()).collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(public.contains(&id.as_str()), i >= 3, "{} on Open311: {body}", COLUMNS[i]);
    }
    assert!(!body.contains("表示一下") && !body.contains("两条烟"), "{body}");
    for id in &ids[..3] {
        let (st, body) = http_request(&open311, "GET", &format!("/open311/v2/requests/{id}.json"), None).await;
        assert_eq!(st, 404, "{body}");
    }
}
