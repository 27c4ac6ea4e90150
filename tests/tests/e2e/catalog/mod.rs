//! The catalog against the real stack: versions by effective date, validation, the starter
//! catalog and Chinese search, staff and certificates.

use std::process::Command;

use tonic::Code;
use tonic_types::StatusExt;
use xiaoneng_e2e::proto::catalog::v1 as pb;
use xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use xiaoneng_e2e::{bin_dir, channel, shared_brokers, token, Intercepted, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

mod authorization;

type Client = CatalogServiceClient<Intercepted>;

pub(crate) async fn clients(catalog: &ServiceProc, region: &str) -> (Client, Client) {
    let admin = token("catalog-admin", &[roles::CATALOG_ADMIN], region);
    (
        CatalogServiceClient::new(channel(&catalog.addr(), Some(&admin)).await),
        CatalogServiceClient::new(channel(&catalog.addr(), None).await),
    )
}

async fn department(c: &mut Client, region: &str, code: &str) -> String {
    crate::common::department(c, region, code, &format!("{code}局")).await
}

pub(crate) fn terms(dept: &str, code: &str, promised: i32) -> pb::MatterTerms {
    pb::MatterTerms {
        implementation_code: code.into(),
        name: "食品经营许可".into(),
        matter_type: pb::MatterType::License as i32,
        department_id: dept.into(),
        statutory_limit_days: 20,
        promised_limit_days: promised,
        free: true,
        channels: vec![pb::Channel::Window as i32],
        window_codes: vec!["ZH01".into()],
        max_visits: 1,
        keywords: vec!["开饭店".into()],
        materials: vec![
            pb::Material {
                name: "申请书".into(),
                required: true,
                key: true,
                form: pb::MaterialForm::Original as i32,
                copies: 1,
                ..Default::default()
            },
            pb::Material {
                name: "营业执照复印件".into(),
                required: true,
                form: pb::MaterialForm::Copy as i32,
                copies: 1,
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

pub(crate) fn day(offset: i64) -> String {
    (xiaoneng_kit::today_cn() + chrono_days(offset)).to_string()
}

fn chrono_days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

async fn in_force(c: &mut Client, id: &str, as_of: &str) -> Result<pb::MatterVersion, tonic::Status> {
    c.get_matter(pb::GetMatterRequest { matter_id: id.into(), as_of: as_of.into() })
        .await
        .map(|r| r.into_inner().matter.unwrap())
}

async fn draft(admin: &mut Client, dept: &str, promised: i32) -> pb::MatterVersion {
    let terms = Some(terms(dept, "410702-SCJ-006", promised));
    let req = pb::CreateMatterDraftRequest { region_code: "410702".into(), terms, request_id: String::new() };
    admin.create_matter_draft(req).await.unwrap().into_inner().matter.unwrap()
}

async fn publish(admin: &mut Client, matter_id: &str, version: i32, date: &str) -> Result<(), Code> {
    let req = pb::PublishMatterVersionRequest { matter_id: matter_id.into(), version, effective_date: date.into() };
    admin.publish_matter_version(req).await.map(|_| ()).map_err(|e| e.code())
}

/// A draft is not public; a published version is immutable; a second version published for a
/// date 30 days ahead (read once before, so cached) is in force from that date, not before, and
/// a case opened in the past keeps the old terms; nothing is in force before the first version.
#[tokio::test(flavor = "multi_thread")]
async fn a_version_takes_effect_on_its_date_and_the_past_keeps_its_terms() {
    // A Redis of its own: the cache generation moves only with this test's publishes.
    let redis = crate::common::PrivateRedis::start().await;
    let url = redis.url();
    let catalog =
        ServiceProc::start_with(ServiceKind::Catalog, &shared_brokers(), &[("XIAONENG__REDIS__URL", url.as_str())])
            .await;
    let generation = || {
        let url = url.clone();
        async move {
            let mut r = redis_client(&url).await;
            redis::cmd("GET").arg("xn:catalog:gen").query_async::<Option<i64>>(&mut r).await.unwrap().unwrap_or(0)
        }
    };
    let (mut admin, mut public) = clients(&catalog, "410702").await;
    let dept = department(&mut admin, "410702", "SCJ").await;
    let v1 = draft(&mut admin, &dept, 10).await;
    let id = v1.matter_id.as_str();
    assert_eq!((v1.version, v1.state), (1, pb::VersionState::Draft as i32));
    assert_eq!(in_force(&mut public, id, "").await.unwrap_err().code(), Code::NotFound);
    publish(&mut admin, id, 1, &day(-30)).await.unwrap();
    let terms = Some(terms(&dept, "410702-SCJ-006", 3));
    let edit = admin.update_matter_draft(pb::UpdateMatterDraftRequest { matter_id: id.into(), version: 1, terms });
    assert_eq!(edit.await.unwrap_err().code(), Code::FailedPrecondition);
    let future = day(30);
    assert_eq!(in_force(&mut public, id, &future).await.unwrap().version, 1);
    let hits = "catalog_cache_hits_total";
    let before = catalog.metric(hits).await;
    assert_eq!(in_force(&mut public, id, &future).await.unwrap().version, 1);
    assert_eq!(catalog.metric(hits).await, before + 1.0, "the second read is the cached answer");
    let published = generation().await;
    let v2 = draft(&mut admin, &dept, 5).await;
    assert_eq!((v2.matter_id.as_str(), v2.version), (id, 2));
    let early = publish(&mut admin, id, 2, &day(-40)).await;
    assert_eq!(early, Err(Code::InvalidArgument), "not before the version in force");
    publish(&mut admin, id, 2, &future).await.unwrap();
    assert_eq!(generation().await, published + 1, "the publish moved the generation once");
    assert_eq!(publish(&mut admin, id, 2, &day(40)).await, Err(Code::FailedPrecondition));
    let now = in_force(&mut public, id, "").await.unwrap();
    assert_eq!((now.version, now.terms.unwrap().promised_limit_days), (1, 10), "old terms before the date");
    let then = in_force(&mut public, id, &future).await.unwrap();
    assert_eq!((then.version, then.terms.unwrap().promised_limit_days), (2, 5), "cache invalidated");
    assert_eq!(in_force(&mut public, id, &day(-10)).await.unwrap().version, 1);
    assert_eq!(in_force(&mut public, id, &day(-31)).await.unwrap_err().code(), Code::NotFound);
}

/// A matter retired from a date is not in force from then on, still the day before; each
/// publish and the retirement left one event in the outbox.
#[tokio::test(flavor = "multi_thread")]
async fn a_retired_matter_is_not_in_force_from_its_date() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let (mut admin, mut public) = clients(&catalog, "410702").await;
    let dept = department(&mut admin, "410702", "SCJ").await;
    let id = draft(&mut admin, &dept, 10).await.matter_id;
    publish(&mut admin, &id, 1, &day(-30)).await.unwrap();
    draft(&mut admin, &dept, 5).await;
    publish(&mut admin, &id, 2, &day(30)).await.unwrap();
    let retire_date = day(60);
    let req =
        pb::RetireMatterRequest {
            matter_id: id.clone(), retire_date: retire_date.clone(), reason: "事项取消".into()
        };
    admin.retire_matter(req).await.unwrap();
    assert_eq!(in_force(&mut public, &id, &retire_date).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(in_force(&mut public, &id, &day(59)).await.unwrap().version, 2);
    let types: Vec<String> = sqlx::query_scalar("SELECT event_type FROM outbox WHERE event_key = $1 ORDER BY id")
        .bind(&id)
        .fetch_all(&catalog.db().await)
        .await
        .unwrap();
    let published = "xiaoneng.catalog.events.v1.MatterPublished";
    assert_eq!(types, [published, published, "xiaoneng.catalog.events.v1.MatterRetired"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_matters_are_refused_with_field_violations_and_nothing_is_written() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let (mut admin, _) = clients(&catalog, "410702").await;
    let dept = department(&mut admin, "410702", "MZJ").await;
    let cases: Vec<(pb::MatterTerms, Vec<&str>)> = vec![
        (terms(&dept, "X-1", 25), vec!["terms.promised_limit_days"]),
        (pb::MatterTerms { channels: vec![], window_codes: vec![], ..terms(&dept, "X-2", 5) }, vec!["terms.channels"]),
        (
            {
                let mut t = terms(&dept, "X-3", 5);
                t.materials[1].name = "申请书".into();
                t
            },
            vec!["terms.materials[1].name"],
        ),
        (terms(&uuid::Uuid::new_v4().to_string(), "X-4", 5), vec!["terms.department_id"]),
    ];
    for (t, fields) in cases {
        let err = admin
            .create_matter_draft(pb::CreateMatterDraftRequest {
                region_code: "410702".into(),
                terms: Some(t),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        let got: Vec<String> =
            err.get_error_details().bad_request().unwrap().field_violations.iter().map(|v| v.field.clone()).collect();
        assert_eq!(got, fields);
    }
    // Another county's admin cannot write here; a clerk cannot write at all.
    let other = token("other-admin", &[roles::CATALOG_ADMIN], "410703");
    let mut other = CatalogServiceClient::new(channel(&catalog.addr(), Some(&other)).await);
    let err = other
        .create_matter_draft(pb::CreateMatterDraftRequest {
            region_code: "410702".into(),
            terms: Some(terms(&dept, "X-5", 5)),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let db = catalog.db().await;
    let (matters, versions): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM matters), (SELECT count(*) FROM matter_versions)")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!((matters, versions), (0, 0), "nothing half-written");
}

fn load_starter(catalog: &ServiceProc) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(bin_dir().join("xiaoneng-catalog-load"))
        .arg("--file")
        .arg(root.join("services/catalog/data/starter/410702.toml"))
        .env("XIAONENG__DATABASE__NAME", &catalog.database)
        .env("XIAONENG__SERVICE__METRICS_ADDR", "")
        .output()
        .expect("run loader");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn search(c: &mut Client, q: &str, channel: pb::Channel) -> Vec<String> {
    c.search_matters(pb::SearchMattersRequest {
        query: q.into(),
        region_code: "410702".into(),
        channel: channel as i32,
        page_size: 10,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .matters
    .into_iter()
    .map(|m| m.terms.unwrap().name)
    .collect()
}

/// The starter catalog of 410702 loads 14 departments and 66 matters, each announced; loading
/// it again creates and announces nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_starter_catalog_loads_once() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let first = load_starter(&catalog);
    assert!(first.contains("14 departments") && first.contains("66 matters"), "{first}");
    let db = catalog.db().await;
    let count =
        "SELECT (SELECT count(*) FROM matters), (SELECT count(*) FROM matter_versions), (SELECT count(*) FROM outbox)";
    let (_, _, announced): (i64, i64, i64) = sqlx::query_as(count).fetch_one(&db).await.unwrap();
    assert!(announced >= 13 + 66, "every created record announced");
    let again = load_starter(&catalog);
    assert!(again.contains("created 0 departments, 0 posts, 0 staff, 0 certificates, 0 matters"), "{again}");
    let counts: (i64, i64, i64) = sqlx::query_as(count).fetch_one(&db).await.unwrap();
    assert_eq!(counts, (66, 66, announced), "loading again announces nothing");
}

/// Citizens find matters by everyday Chinese words; filters by channel and county hold; an
/// empty query is refused; paging the full list returns every matter once.
#[tokio::test(flavor = "multi_thread")]
async fn citizens_find_matters_in_chinese() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    load_starter(&catalog);
    let (_, mut public) = clients(&catalog, "410702").await;
    let any = pb::Channel::Unspecified;
    for (q, first) in [
        ("营业执照", "企业设立登记"),
        ("结婚", "内地居民结婚登记"),
        ("开饭店", "食品经营许可"),
        ("异地就医", "异地就医备案"),
        ("过户", "国有建设用地使用权及房屋所有权转移登记"),
    ] {
        assert_eq!(search(&mut public, q, any).await[0], first, "{q}");
    }
    let id = search(&mut public, "身份证", any).await;
    assert!(id[..3].iter().all(|n| n.starts_with("居民身份证")), "{id:?}");
    let online = search(&mut public, "身份证", pb::Channel::Online).await;
    assert!(online.iter().all(|n| !n.starts_with("居民身份证")), "ID cards are window-only: {online:?}");
    let req = pb::SearchMattersRequest { query: "结婚".into(), region_code: "410703".into(), ..Default::default() };
    assert!(public.search_matters(req).await.unwrap().into_inner().matters.is_empty());
    let empty = public.search_matters(pb::SearchMattersRequest::default()).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    let (mut seen, mut page_token) = (Vec::new(), String::new());
    loop {
        let req =
            pb::ListMattersRequest { region_code: "410702".into(), page_size: 7, page_token, ..Default::default() };
        let page = public.list_matters(req).await.unwrap().into_inner();
        seen.extend(page.matters.into_iter().map(|m| m.matter_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!((total, seen.len()), (66, 66));
    let penalty = pb::MatterType::Penalty as i32;
    let req = pb::ListMattersRequest {
        region_code: "410702".into(),
        matter_type: penalty,
        page_size: 100,
        ..Default::default()
    };
    assert_eq!(public.list_matters(req).await.unwrap().into_inner().matters.len(), 3);
}

/// A traffic-enforcement department with a post and three trained officers.
pub(crate) async fn enforcement_team(admin: &mut Client) -> (String, String, Vec<String>) {
    let dept = department(admin, "410702", "JTJ").await;
    let post = pb::Post {
        department_id: dept.clone(),
        name: "交通执法大队".into(),
        duties: "道路运输执法".into(),
        ..Default::default()
    };
    let post = admin.create_post(pb::CreatePostRequest { post: Some(post) }).await.unwrap().into_inner().post.unwrap();
    let mut people = Vec::new();
    for (name, badge) in [("梁晨", "JT-1"), ("罗斌", "JT-2"), ("韩冰", "JT-3")] {
        let staff = pb::Staff {
            department_id: dept.clone(),
            post_id: post.id.clone(),
            name: name.into(),
            badge_number: badge.into(),
            title: "执法员".into(),
            main_business: "道路运输执法".into(),
            trained: true,
            ..Default::default()
        };
        let s = admin.create_staff(pb::CreateStaffRequest { staff: Some(staff), roles: vec![] }).await.unwrap();
        people.push(s.into_inner().staff.unwrap().id);
    }
    (dept, post.id, people)
}

/// Certificates expiring in 10 days, in 400 days, and one revoked: the first and the revoked.
async fn certify(admin: &mut Client, people: &[String]) -> String {
    let mut ids = Vec::new();
    for (staff, number, expiry) in
        [(&people[0], "C-EXPIRING", 10), (&people[1], "C-LATER", 400), (&people[2], "C-REVOKED", 300)]
    {
        let certificate = pb::Certificate {
            staff_id: staff.clone(),
            number: number.into(),
            scope: "交通运输行政执法".into(),
            issue_date: day(-700),
            expiry_date: day(expiry),
            ..Default::default()
        };
        let c = admin.issue_certificate(pb::IssueCertificateRequest { certificate: Some(certificate) }).await.unwrap();
        ids.push(c.into_inner().certificate.unwrap().id);
    }
    let revoke = pb::RevokeCertificateRequest { id: ids[2].clone(), reason: "调离执法岗位".into() };
    admin.revoke_certificate(revoke).await.unwrap();
    ids.swap_remove(2)
}

/// A post's A and B staff (AB岗) are two different people.
#[tokio::test(flavor = "multi_thread")]
async fn a_post_has_two_different_people_as_a_and_b() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let (mut admin, _) = clients(&catalog, "410702").await;
    let (_, post_id, people) = enforcement_team(&mut admin).await;
    let ab = |a: &str, b: &str| pb::SetPostStaffRequest {
        post_id: post_id.clone(),
        a_staff_id: a.into(),
        b_staff_id: b.into(),
    };
    let post = admin.set_post_staff(ab(&people[0], &people[1])).await.unwrap().into_inner().post.unwrap();
    assert_eq!((post.a_staff_id.as_str(), post.b_staff_id.as_str()), (people[0].as_str(), people[1].as_str()));
    let same = admin.set_post_staff(ab(&people[0], &people[0])).await.unwrap_err();
    assert_eq!(same.code(), Code::InvalidArgument);
}

/// The public notices list certificates expiring within 30 days and revoked ones with the
/// reason; revoking twice is an illegal transition; each change is one event.
#[tokio::test(flavor = "multi_thread")]
async fn expiring_and_revoked_certificates_are_announced() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let (mut admin, mut public) = clients(&catalog, "410702").await;
    let (_, _, people) = enforcement_team(&mut admin).await;
    let revoked = certify(&mut admin, &people).await;
    let again = admin.revoke_certificate(pb::RevokeCertificateRequest { id: revoked, reason: "x".into() }).await;
    assert_eq!(again.unwrap_err().code(), Code::FailedPrecondition);
    let req = pb::ListCertificateNoticesRequest { region_code: "410702".into(), expiring_within_days: 30 };
    let notices = public.list_certificate_notices(req).await.unwrap().into_inner();
    let expiring: Vec<_> = notices.expiring.iter().map(|c| c.number.as_str()).collect();
    let revoked: Vec<_> = notices.revoked.iter().map(|c| (c.number.as_str(), c.revoke_reason.as_str())).collect();
    assert_eq!((expiring, revoked), (vec!["C-EXPIRING"], vec![("C-REVOKED", "调离执法岗位")]));
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE event_type = 'xiaoneng.catalog.events.v1.CertificateChanged'",
    )
    .fetch_one(&catalog.db().await)
    .await
    .unwrap();
    assert_eq!(events, 4, "three issued, one revoked");
}

/// An enforcement matter is assigned only to staff with a valid certificate: NO_VALID_CERTIFICATE
/// for the officer whose certificate was revoked, whose public badge shows it revoked.
#[tokio::test(flavor = "multi_thread")]
async fn an_enforcement_matter_needs_a_valid_certificate() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let (mut admin, mut public) = clients(&catalog, "410702").await;
    let (dept, _, people) = enforcement_team(&mut admin).await;
    certify(&mut admin, &people).await;
    let mut penalty = terms(&dept, "410702-JT-004", 20);
    penalty.name = "对道路运输违法行为的行政处罚".into();
    penalty.matter_type = pb::MatterType::Penalty as i32;
    let req =
        pb::CreateMatterDraftRequest { region_code: "410702".into(), terms: Some(penalty), request_id: String::new() };
    let m = admin.create_matter_draft(req).await.unwrap().into_inner().matter.unwrap();
    let assign =
        |staff: &str| pb::AssignMatterToStaffRequest { staff_id: staff.into(), matter_id: m.matter_id.clone() };
    let err = admin.assign_matter_to_staff(assign(&people[2])).await.unwrap_err();
    assert_eq!((err.code(), crate::common::reason(&err)), (Code::FailedPrecondition, "NO_VALID_CERTIFICATE".into()));
    let staff = admin.assign_matter_to_staff(assign(&people[1])).await.unwrap().into_inner().staff.unwrap();
    assert_eq!(staff.assigned_matter_ids, [m.matter_id.clone()]);
    let badge = public.get_staff(pb::GetStaffRequest { id: people[2].clone() }).await.unwrap();
    let badge = badge.into_inner().staff.unwrap();
    assert_eq!(badge.certificates[0].status, pb::CertificateStatus::Revoked as i32);
    assert!(badge.assigned_matter_ids.is_empty());
}

async fn redis_client(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}
