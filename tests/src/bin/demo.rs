//! The main job `./scripts/up` runs against the six local services: a city efficiency office
//! watching two counties register departments. Each write goes through the catalog's outbox
//! and Kafka into accountability's ledger, exactly once, and each office sees only its part.
//! Safe to run again: writes carry request ids, so a second run creates nothing new.

use std::time::Duration;

use xiaoneng_e2e::proto::accountability::v1::{
    accountability_service_client::AccountabilityServiceClient, ListLedgerEntriesRequest,
};
use xiaoneng_e2e::proto::catalog::v1::{
    catalog_service_client::CatalogServiceClient, CreateDepartmentRequest, Department,
    SearchMattersRequest,
};
use xiaoneng_e2e::{channel, eventually, token};
use xiaoneng_kit::auth::roles;

const CATALOG: &str = "http://127.0.0.1:50051";
const ACCOUNTABILITY: &str = "http://127.0.0.1:50056";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let departments = [
        ("410702", "ZWFW", "红旗区政务服务和大数据管理局"),
        ("410702", "TJJ", "红旗区统计局"),
        ("410702", "SJJ", "红旗区审计局"),
        ("410703", "SCJGJ", "卫滨区市场监督管理局"),
        ("410703", "RSJ", "卫滨区人力资源和社会保障局"),
    ];

    println!("1. A call without a token is refused:");
    let mut anon = CatalogServiceClient::new(channel(CATALOG, None).await);
    let err = anon
        .create_department(CreateDepartmentRequest {
            department: None,
            request_id: String::new(),
        })
        .await
        .expect_err("refused");
    println!("   CreateDepartment → {:?}: {}", err.code(), err.message());

    println!("2. Each county's catalog administrator registers its departments:");
    let mut created = Vec::new();
    for (region, code, name) in departments {
        let admin = token(&format!("admin-{region}"), &[roles::CATALOG_ADMIN], region);
        let mut c = CatalogServiceClient::new(channel(CATALOG, Some(&admin)).await);
        let d = c
            .create_department(CreateDepartmentRequest {
                department: Some(Department {
                    region_code: region.into(),
                    code: code.into(),
                    display_name: name.into(),
                    ..Default::default()
                }),
                request_id: format!("demo-{region}-{code}"),
            })
            .await?
            .into_inner()
            .department
            .unwrap_or_default();
        println!("   {region} {name} ({code}) id {}", d.id);
        created.push(d.id);
    }

    println!("3. The events reach the efficiency office's ledger through Kafka (outbox → broker → consumer):");
    let city = token("xiaoneng-office", &[roles::SUPERVISOR], "410700");
    let acc = AccountabilityServiceClient::new(channel(ACCOUNTABILITY, Some(&city)).await);
    let entries = eventually(60, "the ledger to show the demo departments", || {
        let mut acc = acc.clone();
        let created = created.clone();
        async move {
            let r = acc
                .list_ledger_entries(ListLedgerEntriesRequest {
                    event_type: "xiaoneng.catalog.events.v1.DepartmentCreated".into(),
                    page_size: 1000,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            let all_here = created
                .iter()
                .all(|id| r.entries.iter().any(|e| &e.subject == id));
            all_here.then_some(r.entries)
        }
    })
    .await;
    let mut ids: Vec<&str> = entries.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    println!(
        "   city office (410700) sees {} DepartmentCreated events, {} distinct event ids",
        entries.len(),
        ids.len()
    );
    for e in entries.iter().take(5) {
        println!(
            "   · {} {} {} subject {}",
            e.region_code, e.source, e.event_type, e.subject
        );
    }

    println!("4. A county sees only its own:");
    for county in ["410702", "410703"] {
        let t = token(&format!("office-{county}"), &[roles::SUPERVISOR], county);
        let mut c = AccountabilityServiceClient::new(channel(ACCOUNTABILITY, Some(&t)).await);
        let r = c
            .list_ledger_entries(ListLedgerEntriesRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner();
        let foreign = r.entries.iter().filter(|e| e.region_code != county).count();
        println!(
            "   {county}: {} entries, {} from other regions",
            r.entries.len(),
            foreign
        );
    }
    let t = token("office-410702", &[roles::SUPERVISOR], "410702");
    let mut c = AccountabilityServiceClient::new(channel(ACCOUNTABILITY, Some(&t)).await);
    let err = c
        .list_ledger_entries(ListLedgerEntriesRequest {
            region_code: "410703".into(),
            ..Default::default()
        })
        .await
        .expect_err("outside the caller's region");
    println!(
        "   410702 asking for 410703 → {:?}: {}",
        err.code(),
        err.message()
    );

    println!("5. A citizen looks for a matter's guide (办事指南) by search, no login needed:");
    let mut public = CatalogServiceClient::new(channel(CATALOG, None).await);
    for q in ["营业执照", "结婚", "身份证"] {
        let r = public
            .search_matters(SearchMattersRequest {
                query: q.into(),
                region_code: "410702".into(),
                page_size: 3,
                ..Default::default()
            })
            .await?
            .into_inner();
        let names: Vec<String> = r
            .matters
            .iter()
            .map(|m| m.terms.clone().unwrap_or_default().name)
            .collect();
        println!("   「{q}」 → {}", names.join(" · "));
    }
    let r = public
        .search_matters(SearchMattersRequest {
            query: "营业执照".into(),
            region_code: "410702".into(),
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    if let Some(m) = r.matters.first() {
        let t = m.terms.clone().unwrap_or_default();
        println!(
            "   办事指南: {} ({}), {} v{} in force since {}",
            t.name, t.implementation_code, m.department_name, m.version, m.effective_date
        );
        println!(
            "     法定时限 {} 个工作日, 承诺时限 {} 个工作日, 到现场次数 {}, {}",
            t.statutory_limit_days,
            t.promised_limit_days,
            t.max_visits,
            if t.free { "不收费" } else { "收费" }
        );
        for mat in &t.materials {
            println!(
                "     {} {}{}",
                if mat.key {
                    "★"
                } else if mat.required {
                    "·"
                } else {
                    "○"
                },
                mat.name,
                if mat.key {
                    " (关键材料, 不可容缺)"
                } else if !mat.required {
                    " (可选)"
                } else {
                    ""
                }
            );
        }
        println!("     办理结果: {}; 依据: {}", t.result_name, t.legal_basis);
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
