//! The main job `./scripts/up` runs against the six local services: a city efficiency office
//! watching two counties register departments. Each write goes through the catalog's outbox
//! and Kafka into accountability's ledger, exactly once, and each office sees only its part.
//! Safe to run again: writes carry request ids, so a second run creates nothing new.

use xiaoneng_e2e::proto::accountability::v1::{
    accountability_service_client::AccountabilityServiceClient, ListLedgerEntriesRequest,
};
use xiaoneng_e2e::proto::catalog::v1::{
    catalog_service_client::CatalogServiceClient, CreateDepartmentRequest, Department, SearchMattersRequest,
};
use xiaoneng_e2e::{channel, eventually, token};
use xiaoneng_kit::auth::roles;

const CATALOG: &str = "http://127.0.0.1:50051";
const ACCOUNTABILITY: &str = "http://127.0.0.1:50056";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let departments = [
        ("410702", "DAJ", "红旗区档案馆"),
        ("410702", "TJJ", "红旗区统计局"),
        ("410702", "SJJ", "红旗区审计局"),
        ("410703", "SCJGJ", "卫滨区市场监督管理局"),
        ("410703", "RSJ", "卫滨区人力资源和社会保障局"),
    ];

    println!("1. A call without a token is refused:");
    let mut anon = CatalogServiceClient::new(channel(CATALOG, None).await);
    let err = anon
        .create_department(CreateDepartmentRequest { department: None, request_id: String::new() })
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
            let all_here = created.iter().all(|id| r.entries.iter().any(|e| &e.subject == id));
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
        println!("   · {} {} {} subject {}", e.region_code, e.source, e.event_type, e.subject);
    }

    println!("4. A county sees only its own:");
    for county in ["410702", "410703"] {
        let t = token(&format!("office-{county}"), &[roles::SUPERVISOR], county);
        let mut c = AccountabilityServiceClient::new(channel(ACCOUNTABILITY, Some(&t)).await);
        let r = c
            .list_ledger_entries(ListLedgerEntriesRequest { page_size: 1000, ..Default::default() })
            .await?
            .into_inner();
        let foreign = r.entries.iter().filter(|e| e.region_code != county).count();
        println!("   {county}: {} entries, {} from other regions", r.entries.len(), foreign);
    }
    let t = token("office-410702", &[roles::SUPERVISOR], "410702");
    let mut c = AccountabilityServiceClient::new(channel(ACCOUNTABILITY, Some(&t)).await);
    let err = c
        .list_ledger_entries(ListLedgerEntriesRequest { region_code: "410703".into(), ..Default::default() })
        .await
        .expect_err("outside the caller's region");
    println!("   410702 asking for 410703 → {:?}: {}", err.code(), err.message());

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
        let names: Vec<String> = r.matters.iter().map(|m| m.terms.clone().unwrap_or_default().name).collect();
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
    cases::run().await?;
    let served = morning::run().await?;
    ratings::run(&served).await?;
    drill::run().await?;
    let concluded = complaints::run().await?;
    supervision::run(&concluded).await
}

/// The end of the main job: the city efficiency office's view of the day's supervision
/// records, made by the rules from the other services' events.
mod supervision {
    use xiaoneng_e2e::proto::accountability::v1 as apb;
    use xiaoneng_e2e::proto::accountability::v1::accountability_service_client::AccountabilityServiceClient;
    use xiaoneng_e2e::{channel, eventually, token};
    use xiaoneng_kit::auth::roles;

    const ACCOUNTABILITY: &str = "http://127.0.0.1:50056";

    pub async fn run(concluded: &str) -> anyhow::Result<()> {
        println!("12. The city efficiency office (410700): supervision records the rules made from today's events:");
        let t = token("xiaoneng-office", &[roles::SUPERVISOR], "410700");
        let c = AccountabilityServiceClient::new(channel(ACCOUNTABILITY, Some(&t)).await);
        let records = eventually(60, "the record of the substantiated complaint", || {
            let (mut c, id) = (c.clone(), concluded.to_string());
            async move {
                let req = apb::ListRecordsRequest { page_size: 20, ..Default::default() };
                let r = c.list_records(req).await.ok()?.into_inner().records;
                r.iter().any(|x| x.subject == id).then_some(r)
            }
        })
        .await;
        let sets = c.clone().list_rule_sets(apb::ListRuleSetsRequest::default()).await?.into_inner().rule_sets;
        let versions: Vec<String> =
            sets.iter().map(|s| format!("{} {} (from {})", s.region_code, s.version, s.effective_from)).collect();
        println!("   rule sets: {}", versions.join(", "));
        for r in records.iter().take(8) {
            println!(
                "   [{}] {} — {} / {} on {} (rule {} {}, {} evidence)",
                r.level,
                r.title,
                r.unit,
                if r.person.is_empty() { "—" } else { &r.person },
                r.on_date,
                r.rule_id,
                r.rule_version,
                r.evidence.len()
            );
        }
        let period = chrono::Utc::now().with_timezone(&xiaoneng_kit::clock::cst()).format("%Y-%m").to_string();
        println!("   the staff ranking of {period} (a rank needs 20 ratings and cases; the why beside it):");
        let req = apb::GetRankingRequest { period: period.clone(), staff: true, ..Default::default() };
        let ranking = c.clone().get_ranking(req).await?.into_inner();
        for r in ranking.rows.iter().take(8) {
            let rank = if r.rank == 0 { "—".to_string() } else { r.rank.to_string() };
            let mark = if r.bottom {
                "  (末位)"
            } else if r.top {
                "  (第一)"
            } else {
                ""
            };
            println!(
                "   {rank:>2} {:<8} score {:>5.1}  satisfaction {:.0}% [{:.0}%, {:.0}%] of {} ratings, {} cases ({} on time, {:.1} expected), penalty {:.0}{mark}",
                r.key,
                r.score,
                r.satisfaction * 100.0,
                r.satisfaction_lower * 100.0,
                r.satisfaction_upper * 100.0,
                r.ratings,
                r.cases,
                r.on_time,
                r.expected_on_time,
                r.penalty,
            );
        }
        let req = apb::PublishBulletinRequest { period: period.clone(), ..Default::default() };
        let b = c.clone().publish_bulletin(req).await?.into_inner();
        println!("   the bulletin of {period} (Markdown; HTML alongside, {} bytes):", b.html.len());
        for line in b.markdown.lines().filter(|l| !l.is_empty()).take(14) {
            println!("     {line}");
        }
        Ok(())
    }
}

/// A drill on a private stack (its own broker and databases, so nothing reaches the real
/// topics): the evaluation service on a business clock from Wed 30 Sep 2026, one ticket served
/// and rated 差评; the callback is due Thu 8 Oct (National Day in between); restarted on the
/// business day 9 Oct, it reports the step overdue, once.
mod drill {
    use xiaoneng_e2e::proto::evaluation::v1 as epb;
    use xiaoneng_e2e::proto::evaluation::v1::evaluation_service_client::EvaluationServiceClient;
    use xiaoneng_e2e::proto::queue::v1 as qpb;
    use xiaoneng_e2e::proto::queue::v1::queue_service_client::QueueServiceClient;
    use xiaoneng_e2e::{bin_dir, channel, eventually, token, Broker, ServiceProc};
    use xiaoneng_kit::auth::roles;
    use xiaoneng_kit::ServiceKind;

    pub async fn run() -> anyhow::Result<()> {
        println!("   drill (a private stack on a business clock): a 差评 step overdue across National Day:");
        let broker = Broker::start();
        let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root");
        let out = std::process::Command::new(bin_dir().join("xiaoneng-catalog-load"))
            .arg("--file")
            .arg(root.join("services/catalog/data/starter/410702.toml"))
            .env("XIAONENG__DATABASE__NAME", &catalog.database)
            .output()?;
        anyhow::ensure!(out.status.success(), "loader: {}", String::from_utf8_lossy(&out.stderr));
        let addr = catalog.addr();
        let queue = ServiceProc::start_with(
            ServiceKind::Queue,
            &broker.brokers(),
            &[("XIAONENG__DOMAIN__CATALOG_ADDR", &addr)],
        )
        .await;
        let mut eval = ServiceProc::start_with(
            ServiceKind::Evaluation,
            &broker.brokers(),
            &[
                ("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-09-30T10:00:00+08:00"),
                ("XIAONENG__DOMAIN__OVERDUE_INTERVAL_MS", "200"),
            ],
        )
        .await;
        let q = |who: &str, r: &str| token(who, &[r], "410702");
        let mut m = QueueServiceClient::new(channel(&queue.addr(), Some(&q("manager", roles::HALL_MANAGER))).await);
        let a = qpb::Category { code: "A".into(), name: "综合类".into(), matter_ids: vec![] };
        let req = qpb::CreateHallRequest {
            region_code: "410702".into(),
            name: "演练大厅".into(),
            categories: vec![a],
            weekend_service: false,
        };
        let hall = m.create_hall(req).await?.into_inner().hall.unwrap_or_default();
        let w = qpb::Window {
            hall_id: hall.id.clone(),
            code: "ZH01".into(),
            kind: qpb::WindowKind::Comprehensive as i32,
            ..Default::default()
        };
        let w = m
            .upsert_window(qpb::UpsertWindowRequest { window: Some(w) })
            .await?
            .into_inner()
            .window
            .unwrap_or_default();
        let open = qpb::SetWindowStateRequest {
            window_id: w.id.clone(),
            state: qpb::WindowState::Open as i32,
            staff_id: "s1".into(),
        };
        m.set_window_state(open).await?;
        let mut c = catalog_client(&catalog).await;
        let matter = c
            .list_matters(xiaoneng_e2e::proto::catalog::v1::ListMattersRequest {
                region_code: "410702".into(),
                page_size: 1,
                ..Default::default()
            })
            .await?
            .into_inner()
            .matters
            .into_iter()
            .next()
            .map(|m| m.matter_id)
            .unwrap_or_default();
        let mut kiosk = QueueServiceClient::new(channel(&queue.addr(), Some(&q("kiosk", roles::SYSTEM))).await);
        let req = qpb::IssueTicketRequest { hall_id: hall.id.clone(), matter_id: matter, ..Default::default() };
        let t = kiosk.issue_ticket(req).await?.into_inner().ticket.unwrap_or_default();
        let mut clerk = QueueServiceClient::new(channel(&queue.addr(), Some(&q("s1", roles::CLERK))).await);
        clerk.call_next(qpb::CallNextRequest { window_id: w.id.clone() }).await?;
        clerk.finish_service(qpb::FinishServiceRequest { window_id: w.id.clone() }).await?;
        let pad = token("pad-zh01", &[roles::SYSTEM], "410702");
        let mut e = EvaluationServiceClient::new(channel(&eval.addr(), Some(&pad)).await);
        let inv = eventually(60, "the drill's invitation", || {
            let (mut e, ticket_id) = (e.clone(), t.id.clone());
            async move {
                let req = epb::ListInvitationsRequest { ticket_id, ..Default::default() };
                e.list_invitations(req).await.ok()?.into_inner().invitations.into_iter().next()
            }
        })
        .await;
        let req = epb::SubmitRatingRequest {
            invitation_id: inv.id.clone(),
            level: 1,
            comment: "演练: 窗口无人解释".into(),
            channel: epb::Channel::WindowDevice as i32,
            ..Default::default()
        };
        let r = e.submit_rating(req).await?.into_inner().rating.unwrap_or_default();
        let due = r.r#loop.map(|l| l.step_due_date).unwrap_or_default();
        println!("   {} rated 差评 on Wed 30 Sep 2026: callback due {due}", t.number);
        eval.kill();
        eval.set_env("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-10-09T09:00:00+08:00");
        eval.restart().await;
        let e = EvaluationServiceClient::new(channel(&eval.addr(), Some(&pad)).await);
        let id = r.id.clone();
        let l = eventually(30, "the overdue step", || {
            let (mut e, id) = (e.clone(), id.clone());
            async move {
                let r = e.get_rating(epb::GetRatingRequest { id }).await.ok()?.into_inner().rating?;
                r.r#loop.filter(|l| l.step_overdue)
            }
        })
        .await;
        let db = eval.db().await;
        let overdue = eventually(30, "the overdue event", || {
            let (db, id) = (db.clone(), r.id.clone());
            async move {
                let rows: Vec<Vec<u8>> = sqlx::query_scalar(
                    "SELECT payload FROM outbox WHERE event_key = $1
                     AND event_type = 'xiaoneng.evaluation.events.v1.BadRatingLoopChanged'",
                )
                .bind(&id)
                .fetch_all(&db)
                .await
                .ok()?;
                use prost::Message as _;
                let n = rows
                    .iter()
                    .filter_map(|p| {
                        xiaoneng_e2e::proto::evaluation::events::v1::BadRatingLoopChanged::decode(p.as_slice()).ok()
                    })
                    .filter(|e| e.overdue)
                    .count();
                (n > 0).then_some(n)
            }
        })
        .await;
        println!(
            "   on Fri 9 Oct the callback (due {}) is overdue: {overdue} BadRatingLoopChanged(overdue) for the efficiency office",
            l.step_due_date
        );
        Ok(())
    }

    async fn catalog_client(
        c: &ServiceProc,
    ) -> xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient<xiaoneng_e2e::Intercepted> {
        xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient::new(
            channel(&c.addr(), None).await,
        )
    }
}

/// The complaint part: complaints by the hall's QR code, the hotline and Open311; a repeat
/// merged; one carried to a substantiated conclusion with its callback; what the inspector and
/// the accused unit each see.
mod complaints {
    use xiaoneng_e2e::proto::complaint::v1 as cpb;
    use xiaoneng_e2e::proto::complaint::v1::complaint_service_client::ComplaintServiceClient;
    use xiaoneng_e2e::{channel, http_request, token};
    use xiaoneng_kit::auth::roles;

    const COMPLAINT: &str = "http://127.0.0.1:50055";
    const OPEN311: &str = "127.0.0.1:52055";

    fn hotline_filing(description: &str) -> cpb::FileComplaintRequest {
        cpb::FileComplaintRequest {
            region_code: "410702".into(),
            kind: cpb::Kind::Complaint as i32,
            category: "buck_passing".into(),
            channel: cpb::Channel::Hotline as i32,
            target: Some(cpb::Target {
                kind: cpb::TargetKind::Window as i32,
                id: "ZH01".into(),
                department: "红旗区行政审批服务局".into(),
            }),
            description: description.into(),
            complainant: Some(cpb::Complainant {
                name: "李建国".into(),
                phone: "13903730001".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Returns the id of the complaint carried to a substantiated conclusion.
    pub async fn run() -> anyhow::Result<String> {
        println!("11. 投诉举报: a citizen scans the hall's QR code (干部作风评价二维码) and reports 吃拿卡要:");
        let citizen = token("citizen-zhao", &[roles::CITIZEN], "410702");
        let mut qr = ComplaintServiceClient::new(channel(COMPLAINT, Some(&citizen)).await);
        let report = cpb::FileComplaintRequest {
            region_code: "410702".into(),
            kind: cpb::Kind::Complaint as i32,
            category: "bribery".into(),
            channel: cpb::Channel::QrCode as i32,
            target: Some(cpb::Target {
                kind: cpb::TargetKind::Staff as i32,
                id: "s2".into(),
                department: String::new(),
            }),
            description: "办理时被暗示\"加急要表示一下\"".into(),
            ..Default::default()
        };
        let r = qr.file_complaint(report).await?.into_inner().complaint.unwrap_or_default();
        println!("   {} → assigned to {} (discipline inspection), due {}", r.category, r.assigned_to, r.due_date);

        println!("   the 12345 hotline enters a real-name complaint, then the same caller again:");
        let agent = token("12345-agent-07", &[roles::SYSTEM], "410700");
        let mut hotline = ComplaintServiceClient::new(channel(COMPLAINT, Some(&agent)).await);
        let first = hotline
            .file_complaint(hotline_filing("ZH01窗口让我跑了三趟, 每次说缺不同材料. 我的电话13903730001"))
            .await?
            .into_inner();
        let c = first.complaint.unwrap_or_default();
        let linked = if c.linked_complaint_id.is_empty() {
            String::new()
        } else {
            format!(", linked to the earlier {}", &c.linked_complaint_id[..8])
        };
        println!("   filed {} (merged into an open one: {}), due {}{linked}", &c.id[..8], first.merged, c.due_date);
        let again = hotline.file_complaint(hotline_filing("再次来电催问处理进度")).await?.into_inner();
        let m = again.complaint.unwrap_or_default();
        println!("   the repeat → merged {}: into {} ({} merged)", again.merged, &m.id[..8], m.merged);

        println!("   an Open311 client (a dashboard or app) posts one, form-encoded with its api_key:");
        let form = "api_key=demokey&jurisdiction_id=410702&service_code=slow_action&description=%E8%90%A5%E4%B8%9A%E6%89%A7%E7%85%A7%E5%8A%9E%E4%BA%86%E4%B8%A4%E5%91%A8%E6%B2%A1%E6%9C%89%E7%BB%93%E6%9E%9C&attribute%5Btarget_kind%5D=window&attribute%5Btarget_id%5D=QY01";
        let (status, body) = http_request(OPEN311, "POST", "/open311/v2/requests.json", Some(form)).await;
        println!("   POST /open311/v2/requests.json → {status} {body}");
        let (status, body) =
            http_request(OPEN311, "GET", "/open311/v2/requests.json?status=open&service_code=slow_action", None).await;
        println!(
            "   GET /open311/v2/requests.json?status=open&service_code=slow_action → {status}, {} bytes",
            body.len()
        );

        println!("   the efficiency office carries the hotline complaint to a substantiated conclusion:");
        let office = token("xiaoneng-office", &[roles::SUPERVISOR], "410700");
        let mut city = ComplaintServiceClient::new(channel(COMPLAINT, Some(&office)).await);
        let step =
            |s: cpb::Step| cpb::AdvanceComplaintRequest { id: c.id.clone(), step: s as i32, ..Default::default() };
        let steps = [
            cpb::AdvanceComplaintRequest { unit: "红旗区行政审批服务局".into(), ..step(cpb::Step::Assign) },
            step(cpb::Step::Investigate),
            cpb::AdvanceComplaintRequest {
                finding: cpb::Finding::Substantiated as i32,
                text: "调取录像属实: 未一次性告知所需材料".into(),
                responsible_unit: "红旗区行政审批服务局".into(),
                responsible_person: "s1".into(),
                ..step(cpb::Step::Conclude)
            },
            cpb::AdvanceComplaintRequest {
                text: "已约谈窗口人员, 完善一次性告知单".into(), ..step(cpb::Step::Reply)
            },
            cpb::AdvanceComplaintRequest {
                satisfaction: "satisfied".into(),
                text: "电话回访, 群众满意".into(),
                ..step(cpb::Step::Callback)
            },
            step(cpb::Step::Close),
        ];
        for s in steps {
            let name = cpb::Step::try_from(s.step).map(|x| x.as_str_name()).unwrap_or("?");
            let done = city.advance_complaint(s).await?.into_inner().complaint.unwrap_or_default();
            let state = cpb::State::try_from(done.state).map(|x| x.as_str_name()).unwrap_or("?");
            println!("   {name} → {state}");
        }

        println!("   what the accused unit sees, the person it names, and the inspector:");
        let named = token("s1", &[roles::CLERK], "410702");
        let mut named = ComplaintServiceClient::new(channel(COMPLAINT, Some(&named)).await);
        let hidden = named.get_complaint(cpb::GetComplaintRequest { id: c.id.clone() }).await.expect_err("hidden");
        println!(
            "   s1, held responsible, reads it → {:?} (a complaint is never read by the person it names)",
            hidden.code()
        );
        let colleague = xiaoneng_e2e::token_in("s7", &[roles::CLERK], "410702", "红旗区行政审批服务局");
        let mut unit = ComplaintServiceClient::new(channel(COMPLAINT, Some(&colleague)).await);
        let seen = unit.get_complaint(cpb::GetComplaintRequest { id: c.id.clone() }).await?.into_inner();
        println!(
            "   the assigned unit: 「{}」 — masked, no complainant on the record",
            seen.complaint.unwrap_or_default().description
        );
        let denied = unit
            .reveal_complainant(cpb::RevealComplainantRequest { id: c.id.clone(), purpose: "想知道是谁".into() })
            .await
            .expect_err("only inspectors");
        println!("   unit asks who complained → {:?}", denied.code());
        let inspector = token("jiwei-01", &[roles::INSPECTOR], "410700");
        let mut jiwei = ComplaintServiceClient::new(channel(COMPLAINT, Some(&inspector)).await);
        let seen = jiwei.get_complaint(cpb::GetComplaintRequest { id: c.id.clone() }).await?.into_inner();
        println!("   inspector: 「{}」", seen.complaint.unwrap_or_default().description);
        let who = jiwei
            .reveal_complainant(cpb::RevealComplainantRequest {
                id: c.id.clone(), purpose: "核实回访对象".into()
            })
            .await?
            .into_inner()
            .complainant
            .unwrap_or_default();
        let masked = xiaoneng_kit::mask::name(&who.name);
        println!("   inspector reads the identity (audited): {masked}, {}", xiaoneng_kit::mask::text(&who.phone));
        let reads = jiwei
            .list_identity_reads(cpb::ListIdentityReadsRequest { complaint_id: c.id.clone(), ..Default::default() })
            .await?
            .into_inner()
            .reads;
        for r in reads {
            println!("   audit: {} read it, purpose 「{}」", r.reader, r.purpose);
        }
        Ok(c.id)
    }
}

/// The evaluation part: the morning's services rated at the window device (一次一评), one 差评
/// walked through its closed loop, and what the city office's statistics show.
mod ratings {
    use xiaoneng_e2e::proto::evaluation::v1 as epb;
    use xiaoneng_e2e::proto::evaluation::v1::evaluation_service_client::EvaluationServiceClient;
    use xiaoneng_e2e::{channel, eventually, token};
    use xiaoneng_kit::auth::roles;

    const EVALUATION: &str = "http://127.0.0.1:50054";

    pub async fn run(served: &[(String, String)]) -> anyhow::Result<()> {
        println!("9. 好差评: each service finished this morning opened one invitation; the window pads rate them:");
        let device = token("pad-zh01", &[roles::SYSTEM], "410702");
        let mut pad = EvaluationServiceClient::new(channel(EVALUATION, Some(&device)).await);
        let mut bad = None;
        let mut rated = 0;
        for (i, (ticket, number)) in served.iter().enumerate() {
            let p = pad.clone();
            let inv = eventually(30, "the invitation of a finished ticket", || {
                let (mut p, ticket_id) = (p.clone(), ticket.clone());
                async move {
                    let req = epb::ListInvitationsRequest { ticket_id, ..Default::default() };
                    p.list_invitations(req).await.ok()?.into_inner().invitations.into_iter().next()
                }
            })
            .await;
            if !inv.rating_id.is_empty() {
                continue; // rated by an earlier run of the demo
            }
            let (level, comment) =
                if i == 0 { (2, "等候时间太长, 没人解释") } else { (5 - (i % 2) as i32, "") };
            let req = epb::SubmitRatingRequest {
                invitation_id: inv.id.clone(),
                level,
                comment: comment.into(),
                channel: epb::Channel::WindowDevice as i32,
                device: format!("pad-{}", inv.window_code),
                ..Default::default()
            };
            let r = pad.submit_rating(req).await?.into_inner().rating.unwrap_or_default();
            rated += 1;
            if level <= 2 {
                println!(
                    "   {number} at {}: 差评 {level} ({comment}) → closed loop, callback due {}",
                    inv.window_code,
                    r.r#loop.as_ref().map(|l| l.step_due_date.clone()).unwrap_or_default()
                );
                bad = Some(r.id);
            }
        }
        println!("   {rated} ratings given");
        println!("   the demo's delivered cases are rated online (一事一评) through the portal:");
        let portal = token("gov-portal", &[roles::SYSTEM], "410702");
        let mut web = EvaluationServiceClient::new(channel(EVALUATION, Some(&portal)).await);
        let req = epb::ListInvitationsRequest { unrated_only: true, page_size: 100, ..Default::default() };
        let online = web.list_invitations(req).await?.into_inner().invitations;
        for inv in online.into_iter().filter(|i| i.occurrence == epb::Occurrence::Online as i32) {
            let scores = ["overall", "guide_accuracy", "convenience", "efficiency", "usability"]
                .iter()
                .map(|i| epb::Score { indicator: i.to_string(), level: 5 })
                .collect();
            let req = epb::SubmitRatingRequest {
                invitation_id: inv.id.clone(),
                level: 5,
                scores,
                channel: epb::Channel::Portal as i32,
                ..Default::default()
            };
            web.submit_rating(req).await?;
            println!(
                "   case {} ({}) handled by {}: 非常满意",
                &inv.case_id[..8.min(inv.case_id.len())],
                inv.matter_name,
                inv.department
            );
        }
        if let Some(id) = bad {
            let manager = token("hall-manager", &[roles::HALL_MANAGER], "410702");
            let mut unit = EvaluationServiceClient::new(channel(EVALUATION, Some(&manager)).await);
            let steps = [
                (epb::LoopStep::Callback, "已电话回访, 群众反映高峰期等候过长"),
                (epb::LoopStep::Rectify, "高峰期增开潮汐窗口, 安排引导员解释"),
                (epb::LoopStep::Reply, "已向群众答复整改措施"),
            ];
            for (step, text) in steps {
                let req = epb::AdvanceLoopRequest { rating_id: id.clone(), step: step as i32, text: text.into() };
                let l = unit.advance_loop(req).await?.into_inner().rating.and_then(|r| r.r#loop).unwrap_or_default();
                println!(
                    "   {:?}: {text} (next due {})",
                    step,
                    if l.step_due_date.is_empty() { "—" } else { &l.step_due_date }
                );
            }
            let req = epb::AdvanceLoopRequest {
                rating_id: id.clone(),
                step: epb::LoopStep::Confirm as i32,
                text: "basically_satisfied".into(),
            };
            let l = pad.advance_loop(req).await?.into_inner().rating.and_then(|r| r.r#loop).unwrap_or_default();
            println!(
                "   the citizen confirms at the pad: {} → loop {:?}",
                l.confirmation,
                epb::LoopState::try_from(l.state).unwrap_or(epb::LoopState::Unspecified)
            );
        }
        let office = token("xiaoneng-office", &[roles::SUPERVISOR], "410700");
        let mut city = EvaluationServiceClient::new(channel(EVALUATION, Some(&office)).await);
        let today = chrono::Utc::now().with_timezone(&xiaoneng_kit::clock::cst()).date_naive().to_string();
        let req = epb::GetStatisticsRequest {
            dimension: epb::Dimension::Window as i32,
            from_date: today.clone(),
            to_date: today,
            ..Default::default()
        };
        let mut public = EvaluationServiceClient::new(channel(EVALUATION, None).await);
        let public_req = epb::ListPublicRatingsRequest {
            region_code: "410702".into(),
            bad_only: true,
            page_size: 3,
            ..Default::default()
        };
        println!("   the public read of 差评 and their rectification (no login, personal data masked):");
        for p in public.list_public_ratings(public_req).await?.into_inner().ratings {
            println!(
                "   {} at {}: 「{}」 rater {}, rectification 「{}」",
                p.level, p.window_code, p.comment, p.rater, p.rectification
            );
        }
        println!("10. The city efficiency office's statistics of today, by window:");
        for row in city.get_statistics(req).await?.into_inner().rows {
            println!(
                "   {}: {} ratings, satisfaction {:.0}%, 差评 {}, callback {:.0}%, rectified {:.0}%",
                if row.key.is_empty() { "网上办理 (online)" } else { &row.key },
                row.ratings,
                row.satisfaction_rate * 100.0,
                row.bad_ratings,
                row.callback_rate * 100.0,
                row.rectification_rate * 100.0
            );
        }
        Ok(())
    }
}

/// The case part of the main job: cases carried through the lifecycle under the legal clock.
mod cases {
    use std::time::Duration;

    use xiaoneng_e2e::proto::accountability::v1::{
        accountability_service_client::AccountabilityServiceClient, ListLedgerEntriesRequest,
    };
    use xiaoneng_e2e::proto::case::v1 as cpb;
    use xiaoneng_e2e::proto::case::v1::case_service_client::CaseServiceClient;
    use xiaoneng_e2e::proto::catalog::v1::{catalog_service_client::CatalogServiceClient, SearchMattersRequest};
    use xiaoneng_e2e::{channel, eventually, Intercepted};
    use xiaoneng_kit::auth::{roles, TokenMinter};

    const CASE: &str = "http://127.0.0.1:50053";
    type Cases = CaseServiceClient<Intercepted>;

    fn token(sub: &str, roles: &[&str], dept: Option<&str>) -> String {
        TokenMinter::new(&xiaoneng_e2e::settings().auth).mint(sub, roles, "410702", dept, 3600)
    }

    fn state(k: &cpb::Case) -> String {
        format!("{:?}", cpb::CaseState::try_from(k.state).unwrap_or(cpb::CaseState::Unspecified))
    }

    fn timeline(title: &str, k: &cpb::Case) {
        println!(
            "   ── {title}: {} 「{}」 申请人 {} — {}",
            &k.id[..8],
            k.matter_name,
            k.applicant.as_ref().map(|a| a.name.as_str()).unwrap_or(""),
            state(k)
        );
        println!(
            "      首问负责人 {}; 受理 {}; 承诺期限 {}; 法定期限 {}{}",
            k.first_responsible,
            if k.accepted_date.is_empty() { "—" } else { &k.accepted_date },
            if k.promised_deadline.is_empty() { "—" } else { &k.promised_deadline },
            if k.statutory_deadline.is_empty() { "—" } else { &k.statutory_deadline },
            if k.certificate_deadline.is_empty() {
                String::new()
            } else {
                format!("; 发证期限 {}", k.certificate_deadline)
            }
        );
        for h in &k.history {
            let at = h
                .time
                .as_ref()
                .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
                .map(|t| t.with_timezone(&xiaoneng_kit::clock::cst()).format("%m-%d %H:%M:%S").to_string())
                .unwrap_or_default();
            let to = cpb::CaseState::try_from(h.to_state).map(|s| format!("{s:?}")).unwrap_or_default();
            let reason = if h.reason.is_empty() { String::new() } else { format!(" — {}", h.reason) };
            println!("      {at}  {:<22} → {:<20} {} ({}){reason}", h.action, to, h.actor, h.actor_role);
        }
    }

    async fn matter(query: &str) -> anyhow::Result<(String, Vec<String>, Vec<String>)> {
        let mut public = CatalogServiceClient::new(channel(super::CATALOG, None).await);
        let r = public
            .search_matters(SearchMattersRequest {
                query: query.into(),
                region_code: "410702".into(),
                page_size: 1,
                ..Default::default()
            })
            .await?
            .into_inner();
        let m = r.matters.into_iter().next().ok_or_else(|| anyhow::anyhow!("no matter for {query}"))?;
        let t = m.terms.unwrap_or_default();
        let key = t.materials.iter().filter(|x| x.key).map(|x| x.name.clone()).collect();
        let other = t.materials.iter().filter(|x| x.required && !x.key).map(|x| x.name.clone()).collect();
        Ok((m.matter_id, key, other))
    }

    async fn submit(c: &mut Cases, matter: &str, name: &str, supplied: Vec<String>) -> anyhow::Result<cpb::Case> {
        Ok(c.submit_case(cpb::SubmitCaseRequest {
            region_code: "410702".into(),
            matter_id: matter.into(),
            applicant: Some(cpb::Applicant { name: name.into(), phone: "13900000000".into(), ..Default::default() }),
            supplied_materials: supplied,
            ..Default::default()
        })
        .await?
        .into_inner()
        .case
        .unwrap_or_default())
    }

    pub async fn run() -> anyhow::Result<()> {
        let (matter, key, other) = matter("营业执照").await?;
        anyhow::ensure!(other.len() >= 2, "the demo needs a matter with two non-key materials");
        let clerk = token("窗口-张敏", &[roles::CLERK], Some("综合窗口"));
        let mut c = CaseServiceClient::new(channel(CASE, Some(&clerk)).await);
        let scjg = token("审核-李强", &[roles::REVIEWER], Some("红旗区市场监督管理局"));
        let mut r1 = CaseServiceClient::new(channel(CASE, Some(&scjg)).await);
        let ga = token("审核-周涛", &[roles::REVIEWER], Some("红旗区公安分局"));
        let mut r2 = CaseServiceClient::new(channel(CASE, Some(&ga)).await);

        println!("6. Cases under the legal clock (working days of the 2026 national calendar):");
        // A: a one-time notice lists everything missing; parallel review by two departments; delivery.
        let k = submit(&mut c, &matter, "王小明", key.clone()).await?;
        let k = c
            .request_correction(cpb::RequestCorrectionRequest {
                id: k.id.clone(),
                expected_version: k.version,
                materials: other.clone(),
                reason: "一次性告知: 请补齐所列全部材料".into(),
            })
            .await?
            .into_inner()
            .case
            .unwrap_or_default();
        println!("   一次性告知书 for {}: {}", &k.id[..8], k.notices[0].materials.join("、"));
        let k = c
            .supply_materials(cpb::SupplyMaterialsRequest {
                id: k.id.clone(),
                expected_version: k.version,
                materials: other.clone(),
            })
            .await?
            .into_inner()
            .case
            .unwrap_or_default();
        let k = c
            .accept_case(cpb::AcceptCaseRequest {
                id: k.id.clone(),
                expected_version: k.version,
                tolerance_due_date: String::new(),
            })
            .await?
            .into_inner()
            .case
            .unwrap_or_default();
        let k = c
            .start_review(cpb::StartReviewRequest {
                id: k.id.clone(),
                expected_version: k.version,
                departments: vec!["红旗区市场监督管理局".into(), "红旗区公安分局".into()],
                step: "审核".into(),
            })
            .await?
            .into_inner()
            .case
            .unwrap_or_default();
        let conclude = |k: &cpb::Case, dept: &str| cpb::ConcludeReviewStepRequest {
            id: k.id.clone(),
            expected_version: k.version,
            department: dept.into(),
            approve: true,
            reason: String::new(),
        };
        let k =
            r1.conclude_review_step(conclude(&k, "红旗区市场监督管理局")).await?.into_inner().case.unwrap_or_default();
        println!("   并联审批: after 市场监管 approved the case is still {} (waiting for 公安)", state(&k));
        let k = r2.conclude_review_step(conclude(&k, "红旗区公安分局")).await?.into_inner().case.unwrap_or_default();
        let k = c
            .issue_certificate(cpb::IssueCertificateRequest {
                id: k.id.clone(),
                expected_version: k.version,
                certificate_number: "91410702MA00DEMO1X".into(),
            })
            .await?
            .into_inner()
            .case
            .unwrap_or_default();
        let k = c
            .deliver_case(cpb::DeliverCaseRequest {
                id: k.id.clone(),
                expected_version: k.version,
                method: "邮寄送达".into(),
            })
            .await?
            .into_inner()
            .case
            .unwrap_or_default();
        let a = c
            .close_case(cpb::CloseCaseRequest { id: k.id.clone(), expected_version: k.version })
            .await?
            .into_inner()
            .case
            .unwrap_or_default();

        // B: 容缺受理 — accepted with non-key materials missing on a commitment, then a warning
        // (the promise is 1 working day, warnings come 2 working days ahead).
        let k = submit(&mut c, &matter, "李娟", key.clone()).await?;
        let due = (xiaoneng_kit::today_cn() + chrono::Duration::days(7)).to_string();
        let b = c
            .accept_case(cpb::AcceptCaseRequest {
                id: k.id.clone(),
                expected_version: k.version,
                tolerance_due_date: due,
            })
            .await?
            .into_inner()
            .case
            .unwrap_or_default();
        println!(
            "   容缺受理 {}: missing {} due {}",
            &b.id[..8],
            b.tolerated_materials.join("、"),
            b.tolerance_due_date
        );
        let id = b.id.clone();
        let b = eventually(30, "the warning on case B", || {
            let mut c = c.clone();
            let id = id.clone();
            async move {
                let k = c.get_case(cpb::GetCaseRequest { id }).await.ok()?.into_inner().case?;
                (!k.escalations.is_empty()).then_some(k)
            }
        })
        .await;
        for e in &b.escalations {
            println!(
                "   预警: case {} clock {} deadline {} ({:?})",
                &b.id[..8],
                e.clock,
                e.deadline,
                cpb::EscalationLevel::try_from(e.level).unwrap_or_default()
            );
        }
        // C: referred to another department; the first-responsible stays.
        let k = submit(&mut c, &matter, "赵刚", key.iter().chain(other.iter()).cloned().collect()).await?;
        let k3 = c
            .refer_case(cpb::ReferCaseRequest {
                id: k.id.clone(),
                expected_version: k.version,
                department: "红旗区市场监督管理局".into(),
                handler: "登记科 孙丽".into(),
                reason: "涉及名称争议, 转登记科办理".into(),
            })
            .await?
            .into_inner()
            .case
            .unwrap_or_default();
        println!("   timelines:");
        timeline("A 一次性告知 + 并联审批", &a);
        timeline("B 容缺受理 + 预警", &b);
        timeline("C 首问负责 + 转办", &k3);
        println!(
            "      C is handled by {} / {}; first-responsible still {}",
            k3.handling_department, k3.handler, k3.first_responsible
        );

        let sup = xiaoneng_e2e::token("efficiency-office", &[roles::SUPERVISOR], "410700");
        let mut acc = AccountabilityServiceClient::new(channel(super::ACCOUNTABILITY, Some(&sup)).await);
        let warned = b.id.clone();
        eventually(60, "the warning in the efficiency office's ledger", || {
            let mut acc = acc.clone();
            let warned = warned.clone();
            async move {
                let r = acc
                    .list_ledger_entries(ListLedgerEntriesRequest {
                        event_type: "xiaoneng.case.events.v1.CaseEscalated".into(),
                        page_size: 100,
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner();
                r.entries.iter().any(|e| e.subject == warned).then_some(())
            }
        })
        .await;
        let n = acc
            .list_ledger_entries(ListLedgerEntriesRequest {
                event_type: "xiaoneng.case.events.v1.CaseTransitioned".into(),
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner()
            .entries
            .len();
        println!("7. The city efficiency office's ledger has case B's warning and {n} case transitions (via Kafka).");
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(())
    }
}

/// A morning in one hall: appointments checked in, walk-ins, windows calling, a surge opening a
/// tidal window, the board's stream.
mod morning {
    use std::time::Duration;

    use tokio_stream::StreamExt;
    use xiaoneng_e2e::proto::catalog::v1::{catalog_service_client::CatalogServiceClient, SearchMattersRequest};
    use xiaoneng_e2e::proto::queue::v1 as pb;
    use xiaoneng_e2e::proto::queue::v1::queue_service_client::QueueServiceClient;
    use xiaoneng_e2e::{channel, eventually, token};
    use xiaoneng_kit::auth::roles;

    const QUEUE: &str = "http://127.0.0.1:50052";

    async fn matter(q: &str) -> anyhow::Result<(String, String)> {
        let mut public = CatalogServiceClient::new(channel(super::CATALOG, None).await);
        let r = public
            .search_matters(SearchMattersRequest {
                query: q.into(),
                region_code: "410702".into(),
                page_size: 1,
                ..Default::default()
            })
            .await?
            .into_inner();
        let m = r.matters.into_iter().next().ok_or_else(|| anyhow::anyhow!("no matter for {q}"))?;
        Ok((m.matter_id, m.terms.unwrap_or_default().name))
    }

    /// The morning; returns the tickets served, as (id, number).
    pub async fn run() -> anyhow::Result<Vec<(String, String)>> {
        let (company, company_name) = matter("营业执照").await?;
        let (social, social_name) = matter("社保卡").await?;
        let manager = token("hall-manager", &[roles::HALL_MANAGER], "410702");
        let mut m = QueueServiceClient::new(channel(QUEUE, Some(&manager)).await);
        let now = chrono::Utc::now().with_timezone(&xiaoneng_kit::clock::cst());
        println!("8. A morning in the hall (周末不打烊), {}:", now.format("%Y-%m-%d %H:%M"));
        let hall = m
            .create_hall(pb::CreateHallRequest {
                region_code: "410702".into(),
                name: format!("红旗区政务服务中心 演示 {}", now.format("%H%M%S")),
                categories: vec![
                    pb::Category { code: "A".into(), name: "综合".into(), matter_ids: vec![] },
                    pb::Category { code: "B".into(), name: "企业开办".into(), matter_ids: vec![company.clone()] },
                ],
                weekend_service: true,
            })
            .await?
            .into_inner()
            .hall
            .unwrap_or_default();
        // Where ./scripts/up points the browser: this hall's screen, desk and pads.
        if let Ok(path) = std::env::var("XIAONENG_DEMO_HALL_FILE") {
            std::fs::write(path, &hall.id)?;
        }
        let mut windows = Vec::new();
        for (code, kind, matters, tidal) in [
            ("ZH01", pb::WindowKind::Comprehensive, vec![], false),
            ("QY01", pb::WindowKind::Department, vec![company.clone()], false),
            ("LS01", pb::WindowKind::GreenChannel, vec![], false),
            ("CX01", pb::WindowKind::Comprehensive, vec![], true),
        ] {
            let w = m
                .upsert_window(pb::UpsertWindowRequest {
                    window: Some(pb::Window {
                        hall_id: hall.id.clone(),
                        code: code.into(),
                        kind: kind as i32,
                        matter_ids: matters,
                        tidal,
                        ..Default::default()
                    }),
                })
                .await?
                .into_inner()
                .window
                .unwrap_or_default();
            windows.push(w);
        }
        for (w, staff) in windows.iter().zip(["王芳", "刘洋", "陈静"]) {
            m.set_window_state(pb::SetWindowStateRequest {
                window_id: w.id.clone(),
                state: pb::WindowState::Open as i32,
                staff_id: staff.into(),
            })
            .await?;
        }
        let roster = ["王芳", "刘洋", "陈静", "赵磊"]
            .iter()
            .map(|s| pb::StaffOnDuty { staff_id: s.to_string(), name: s.to_string(), categories: vec![] })
            .collect();
        m.set_staff_roster(pb::SetStaffRosterRequest { hall_id: hall.id.clone(), staff: roster }).await?;
        m.set_tidal_policy(pb::SetTidalPolicyRequest {
            hall_id: hall.id.clone(),
            policy: Some(pb::TidalPolicy {
                category: "A".into(),
                open_waiting: 6,
                open_wait_minutes: 0,
                close_waiting: 1,
            }),
        })
        .await?;
        println!("   windows ZH01 综合 (王芳), QY01 企业开办 (刘洋), LS01 绿色通道 (陈静); CX01 潮汐 reserve; 赵磊 on standby");

        // The board: a display and voice caller watching the hall.
        let mut board = QueueServiceClient::new(channel(QUEUE, None).await)
            .watch_board(pb::WatchBoardRequest { hall_id: hall.id.clone() })
            .await?
            .into_inner();
        let board_task = tokio::spawn(async move {
            let mut lines = Vec::new();
            while let Ok(Some(Ok(u))) = tokio::time::timeout(Duration::from_secs(3), board.next()).await {
                if !u.announcement.is_empty() {
                    let waiting: std::collections::BTreeMap<_, _> = u.waiting.into_iter().collect();
                    lines.push(format!("{} (waiting {waiting:?})", u.announcement));
                }
            }
            lines
        });

        // Appointments made for this morning, checked in on arrival.
        let start = (now - chrono::Duration::minutes(10)).format("%H:%M").to_string();
        let end = (now + chrono::Duration::minutes(50)).min(
            now.date_naive()
                .and_hms_opt(23, 59, 0)
                .map(|t| t.and_local_timezone(xiaoneng_kit::clock::cst()).unwrap())
                .unwrap_or(now),
        );
        let mut appointment_tickets = Vec::new();
        match m
            .create_slots(pb::CreateSlotsRequest {
                hall_id: hall.id.clone(),
                matter_id: company.clone(),
                date: now.date_naive().to_string(),
                start_time: start,
                end_time: end.format("%H:%M").to_string(),
                minutes: 30,
                capacity: 2,
            })
            .await
        {
            Ok(slots) => {
                let slot = slots.into_inner().slots.into_iter().next().unwrap_or_default();
                for name in ["周明", "吴倩"] {
                    let citizen = token(&format!("citizen-{name}"), &[roles::CITIZEN], "410702");
                    let mut c = QueueServiceClient::new(channel(QUEUE, Some(&citizen)).await);
                    let a = c
                        .book_appointment(pb::BookAppointmentRequest {
                            slot_id: slot.id.clone(),
                            citizen_name: name.into(),
                            ..Default::default()
                        })
                        .await?
                        .into_inner()
                        .appointment
                        .unwrap_or_default();
                    appointment_tickets.push((name, a.id));
                }
                println!(
                    "   {} booked 「{company_name}」 {}–{}",
                    appointment_tickets.iter().map(|(n, _)| *n).collect::<Vec<_>>().join("、"),
                    slot.start_time,
                    slot.end_time
                );
            }
            Err(e) => println!("   no appointments today: {}", e.message()),
        }
        let kiosk = token("kiosk-1", &[roles::SYSTEM], "410702");
        let mut k = QueueServiceClient::new(channel(QUEUE, Some(&kiosk)).await);
        let mut walk = Vec::new();
        for i in 0..8 {
            let t = k
                .issue_ticket(pb::IssueTicketRequest {
                    hall_id: hall.id.clone(),
                    matter_id: social.clone(),
                    priority: pb::Priority::Normal as i32,
                    ..Default::default()
                })
                .await?
                .into_inner();
            if i == 7 {
                println!(
                    "   8 walk-ins for 「{social_name}」: last one {} sees {} ahead, about {} min",
                    t.ticket.clone().unwrap_or_default().number,
                    t.waiting_ahead,
                    t.estimated_wait_minutes
                );
            }
            walk.push(t.ticket.unwrap_or_default());
        }
        let elder = k
            .issue_ticket(pb::IssueTicketRequest {
                hall_id: hall.id.clone(),
                matter_id: social.clone(),
                priority: pb::Priority::Elderly as i32,
                ..Default::default()
            })
            .await?
            .into_inner()
            .ticket
            .unwrap_or_default();
        println!("   an elderly citizen takes {} (绿色通道)", elder.number);
        for (name, id) in &appointment_tickets {
            let citizen = token(&format!("citizen-{name}"), &[roles::CITIZEN], "410702");
            let mut c = QueueServiceClient::new(channel(QUEUE, Some(&citizen)).await);
            let ci = c.check_in(pb::CheckInRequest { appointment_id: id.clone() }).await?.into_inner();
            println!(
                "   {name} checks in (一键取号): {} {}",
                ci.ticket.unwrap_or_default().number,
                if ci.late { "(late: a walk-in)" } else { "ahead of walk-ins" }
            );
        }

        // The surge: 8+ waiting in A opens CX01 with the standby colleague.
        let sup = m.clone();
        let hall_id = hall.id.clone();
        let opened = eventually(20, "the tidal window", || {
            let (mut m, hall_id) = (sup.clone(), hall_id.clone());
            async move {
                let e = m.list_tidal_events(pb::ListTidalEventsRequest { hall_id }).await.ok()?.into_inner().events;
                e.into_iter().find(|e| e.action == pb::TidalAction::Opened as i32)
            }
        })
        .await;
        println!("   潮汐窗口 {} opened with {}: {}", opened.window_code, opened.staff_id, opened.reason);

        let clerk = token("clerk", &[roles::CLERK], "410702");
        let mut c = QueueServiceClient::new(channel(QUEUE, Some(&clerk)).await);
        let mut served = 0;
        let mut tickets = Vec::new();
        loop {
            let mut any = false;
            for w in &windows {
                if let Ok(r) = c.call_next(pb::CallNextRequest { window_id: w.id.clone() }).await {
                    if let Some(t) = r.into_inner().ticket {
                        any = true;
                        served += 1;
                        c.finish_service(pb::FinishServiceRequest { window_id: w.id.clone() }).await?;
                        tickets.push((t.id, t.number));
                    }
                }
            }
            if !any {
                break;
            }
        }
        let closed = eventually(20, "the tidal window to close", || {
            let (mut m, hall_id) = (sup.clone(), hall.id.clone());
            async move {
                let e = m.list_tidal_events(pb::ListTidalEventsRequest { hall_id }).await.ok()?.into_inner().events;
                e.into_iter().find(|e| e.action == pb::TidalAction::Closed as i32)
            }
        })
        .await;
        println!("   {served} citizens served; 潮汐窗口 {} closed: {}", closed.window_code, closed.reason);
        println!("   the board announced:");
        for line in board_task.await? {
            println!("     {line}");
        }
        Ok(tickets)
    }
}
