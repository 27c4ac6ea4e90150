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

type Client = CatalogServiceClient<Intercepted>;

async fn clients(catalog: &ServiceProc, region: &str) -> (Client, Client) {
    let admin = token("catalog-admin", &[roles::CATALOG_ADMIN], region);
    (
        CatalogServiceClient::new(channel(&catalog.addr(), Some(&admin)).await),
        CatalogServiceClient::new(channel(&catalog.addr(), None).await),
    )
}

async fn department(c: &mut Client, region: &str, code: &str) -> String {
    c.create_department(pb::CreateDepartmentRequest {
        department: Some(pb::Department {
            region_code: region.into(),
            code: code.into(),
            display_name: format!("{code}局"),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .department
    .unwrap()
    .id
}

fn terms(dept: &str, code: &str, promised: i32) -> pb::MatterTerms {
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

fn day(offset: i64) -> String {
    (xiaoneng_kit::today_cn() + chrono_days(offset)).to_string()
}

fn chrono_days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

async fn in_force(
    c: &mut Client,
    id: &str,
    as_of: &str,
) -> Result<pb::MatterVersion, tonic::Status> {
    c.get_matter(pb::GetMatterRequest {
        matter_id: id.into(),
        as_of: as_of.into(),
    })
    .await
    .map(|r| r.into_inner().matter.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_take_effect_on_their_date_and_cases_keep_the_old_terms() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let (mut admin, mut public) = clients(&catalog, "410702").await;
    let dept = department(&mut admin, "410702", "SCJ").await;

    let v1 = admin
        .create_matter_draft(pb::CreateMatterDraftRequest {
            region_code: "410702".into(),
            terms: Some(terms(&dept, "410702-SCJ-006", 10)),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .matter
        .unwrap();
    assert_eq!((v1.version, v1.state), (1, pb::VersionState::Draft as i32));
    // A draft is not public.
    assert_eq!(
        in_force(&mut public, &v1.matter_id, "")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let publish = |version: i32, date: String| pb::PublishMatterVersionRequest {
        matter_id: v1.matter_id.clone(),
        version,
        effective_date: date,
    };
    admin
        .publish_matter_version(publish(1, day(-30)))
        .await
        .unwrap();
    // Published versions are immutable.
    let err = admin
        .update_matter_draft(pb::UpdateMatterDraftRequest {
            matter_id: v1.matter_id.clone(),
            version: 1,
            terms: Some(terms(&dept, "410702-SCJ-006", 3)),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Read the future date once so it is cached, then publish a version effective on it.
    let future = day(30);
    assert_eq!(
        in_force(&mut public, &v1.matter_id, &future)
            .await
            .unwrap()
            .version,
        1
    );
    let v2 = admin
        .create_matter_draft(pb::CreateMatterDraftRequest {
            region_code: "410702".into(),
            terms: Some(terms(&dept, "410702-SCJ-006", 5)),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .matter
        .unwrap();
    assert_eq!(
        (v2.matter_id.as_str(), v2.version),
        (v1.matter_id.as_str(), 2)
    );
    // Not before the version in force.
    let err = admin
        .publish_matter_version(publish(2, day(-40)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    admin
        .publish_matter_version(publish(2, future.clone()))
        .await
        .unwrap();
    assert_eq!(
        admin
            .publish_matter_version(publish(2, day(40)))
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );

    let today = in_force(&mut public, &v1.matter_id, "").await.unwrap();
    assert_eq!(
        (today.version, today.terms.unwrap().promised_limit_days),
        (1, 10),
        "old terms before the date"
    );
    let then = in_force(&mut public, &v1.matter_id, &future).await.unwrap();
    assert_eq!(
        (then.version, then.terms.unwrap().promised_limit_days),
        (2, 5),
        "new terms from the date (cache invalidated)"
    );
    let past = in_force(&mut public, &v1.matter_id, &day(-10))
        .await
        .unwrap();
    assert_eq!(past.version, 1, "a case opened in the past keeps its terms");
    assert_eq!(
        in_force(&mut public, &v1.matter_id, &day(-31))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // Retire from a date: nothing in force from then on.
    let retire_on = day(60);
    admin
        .retire_matter(pb::RetireMatterRequest {
            matter_id: v1.matter_id.clone(),
            retire_date: retire_on.clone(),
            reason: "事项取消".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        in_force(&mut public, &v1.matter_id, &retire_on)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        in_force(&mut public, &v1.matter_id, &day(59))
            .await
            .unwrap()
            .version,
        2
    );

    // Each publish and the retirement left an event in the outbox.
    let db = catalog.db().await;
    let types: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM outbox WHERE event_key = $1 ORDER BY id")
            .bind(&v1.matter_id)
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        types,
        [
            "xiaoneng.catalog.events.v1.MatterPublished",
            "xiaoneng.catalog.events.v1.MatterPublished",
            "xiaoneng.catalog.events.v1.MatterRetired"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_matters_are_refused_with_field_violations_and_nothing_is_written() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let (mut admin, _) = clients(&catalog, "410702").await;
    let dept = department(&mut admin, "410702", "MZJ").await;
    let cases: Vec<(pb::MatterTerms, Vec<&str>)> = vec![
        (terms(&dept, "X-1", 25), vec!["terms.promised_limit_days"]),
        (
            pb::MatterTerms {
                channels: vec![],
                window_codes: vec![],
                ..terms(&dept, "X-2", 5)
            },
            vec!["terms.channels"],
        ),
        (
            {
                let mut t = terms(&dept, "X-3", 5);
                t.materials[1].name = "申请书".into();
                t
            },
            vec!["terms.materials[1].name"],
        ),
        (
            terms(&uuid::Uuid::new_v4().to_string(), "X-4", 5),
            vec!["terms.department_id"],
        ),
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
        let got: Vec<String> = err
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|v| v.field.clone())
            .collect();
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
    let (matters, versions): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM matters), (SELECT count(*) FROM matter_versions)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((matters, versions), (0, 0), "nothing half-written");
}

fn load_starter(catalog: &ServiceProc) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let out = Command::new(bin_dir().join("xiaoneng-catalog-load"))
        .arg("--file")
        .arg(root.join("services/catalog/data/starter/410702.toml"))
        .env("XIAONENG__DATABASE__NAME", &catalog.database)
        .env("XIAONENG__SERVICE__METRICS_ADDR", "")
        .output()
        .expect("run loader");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn starter_catalog_loads_once_and_citizens_find_matters_in_chinese() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let first = load_starter(&catalog);
    assert!(
        first.contains("13 departments") && first.contains("66 matters"),
        "{first}"
    );
    let db = catalog.db().await;
    let outbox_after_first: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(
        outbox_after_first >= 13 + 66,
        "every created record announced"
    );
    let again = load_starter(&catalog);
    assert!(
        again.contains("created 0 departments, 0 posts, 0 staff, 0 certificates, 0 matters"),
        "{again}"
    );
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM matters), (SELECT count(*) FROM matter_versions), (SELECT count(*) FROM outbox)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        counts,
        (66, 66, outbox_after_first),
        "loading again announces nothing"
    );

    let (_, mut public) = clients(&catalog, "410702").await;
    let any = pb::Channel::Unspecified;
    assert_eq!(
        search(&mut public, "营业执照", any).await[0],
        "企业设立登记"
    );
    assert_eq!(
        search(&mut public, "结婚", any).await[0],
        "内地居民结婚登记"
    );
    let id = search(&mut public, "身份证", any).await;
    assert!(
        id[..3].iter().all(|n| n.starts_with("居民身份证")),
        "{id:?}"
    );
    assert_eq!(search(&mut public, "开饭店", any).await[0], "食品经营许可");
    assert_eq!(
        search(&mut public, "异地就医", any).await[0],
        "异地就医备案"
    );
    assert_eq!(
        search(&mut public, "过户", any).await[0],
        "国有建设用地使用权及房屋所有权转移登记"
    );
    // Filters: ID cards are window-only; nothing of this county in another.
    let online = search(&mut public, "身份证", pb::Channel::Online).await;
    assert!(
        online.iter().all(|n| !n.starts_with("居民身份证")),
        "{online:?}"
    );
    let elsewhere = public
        .search_matters(pb::SearchMattersRequest {
            query: "结婚".into(),
            region_code: "410703".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(elsewhere.matters.is_empty());
    let empty = public
        .search_matters(pb::SearchMattersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);

    // Paging a broad query and the full list returns every matter once.
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = public
            .list_matters(pb::ListMattersRequest {
                region_code: "410702".into(),
                page_size: 7,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
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
    let licenses = public
        .list_matters(pb::ListMattersRequest {
            region_code: "410702".into(),
            matter_type: pb::MatterType::Penalty as i32,
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(licenses.matters.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_are_announced_and_gate_enforcement_matters() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let (mut admin, mut public) = clients(&catalog, "410702").await;
    let dept = department(&mut admin, "410702", "JTJ").await;
    let post = admin
        .create_post(pb::CreatePostRequest {
            post: Some(pb::Post {
                department_id: dept.clone(),
                name: "交通执法大队".into(),
                duties: "道路运输执法".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    let mut people = Vec::new();
    for (name, badge) in [("梁晨", "JT-1"), ("罗斌", "JT-2"), ("韩冰", "JT-3")] {
        let s = admin
            .create_staff(pb::CreateStaffRequest {
                staff: Some(pb::Staff {
                    department_id: dept.clone(),
                    post_id: post.id.clone(),
                    name: name.into(),
                    badge_number: badge.into(),
                    title: "执法员".into(),
                    main_business: "道路运输执法".into(),
                    trained: true,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .staff
            .unwrap();
        people.push(s.id);
    }
    let ab = admin
        .set_post_staff(pb::SetPostStaffRequest {
            post_id: post.id.clone(),
            a_staff_id: people[0].clone(),
            b_staff_id: people[1].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(
        (ab.a_staff_id.as_str(), ab.b_staff_id.as_str()),
        (people[0].as_str(), people[1].as_str())
    );
    let same = admin
        .set_post_staff(pb::SetPostStaffRequest {
            post_id: post.id.clone(),
            a_staff_id: people[0].clone(),
            b_staff_id: people[0].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(same.code(), Code::InvalidArgument);

    let issue = |staff: &str, number: &str, expiry: String| pb::IssueCertificateRequest {
        certificate: Some(pb::Certificate {
            staff_id: staff.into(),
            number: number.into(),
            scope: "交通运输行政执法".into(),
            issue_date: day(-700),
            expiry_date: expiry,
            ..Default::default()
        }),
    };
    admin
        .issue_certificate(issue(&people[0], "C-EXPIRING", day(10)))
        .await
        .unwrap();
    admin
        .issue_certificate(issue(&people[1], "C-LATER", day(400)))
        .await
        .unwrap();
    let revoked = admin
        .issue_certificate(issue(&people[2], "C-REVOKED", day(300)))
        .await
        .unwrap()
        .into_inner();
    let revoked_id = revoked.certificate.unwrap().id;
    admin
        .revoke_certificate(pb::RevokeCertificateRequest {
            id: revoked_id.clone(),
            reason: "调离执法岗位".into(),
        })
        .await
        .unwrap();
    let again = admin
        .revoke_certificate(pb::RevokeCertificateRequest {
            id: revoked_id,
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);

    let notices = public
        .list_certificate_notices(pb::ListCertificateNoticesRequest {
            region_code: "410702".into(),
            expiring_within_days: 30,
        })
        .await
        .unwrap()
        .into_inner();
    let expiring: Vec<_> = notices.expiring.iter().map(|c| c.number.as_str()).collect();
    let revoked: Vec<_> = notices
        .revoked
        .iter()
        .map(|c| (c.number.as_str(), c.revoke_reason.as_str()))
        .collect();
    assert_eq!(expiring, ["C-EXPIRING"]);
    assert_eq!(revoked, [("C-REVOKED", "调离执法岗位")]);

    // An enforcement matter needs a valid certificate.
    let mut penalty = terms(&dept, "410702-JT-004", 20);
    penalty.name = "对道路运输违法行为的行政处罚".into();
    penalty.matter_type = pb::MatterType::Penalty as i32;
    let m = admin
        .create_matter_draft(pb::CreateMatterDraftRequest {
            region_code: "410702".into(),
            terms: Some(penalty),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .matter
        .unwrap();
    let assign = |staff: &str| pb::AssignMatterToStaffRequest {
        staff_id: staff.into(),
        matter_id: m.matter_id.clone(),
    };
    let err = admin
        .assign_matter_to_staff(assign(&people[2]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.get_error_details().error_info().unwrap().reason,
        "NO_VALID_CERTIFICATE"
    );
    let staff = admin
        .assign_matter_to_staff(assign(&people[1]))
        .await
        .unwrap()
        .into_inner()
        .staff
        .unwrap();
    assert_eq!(staff.assigned_matter_ids, [m.matter_id.clone()]);
    let badge = public
        .get_staff(pb::GetStaffRequest {
            id: people[2].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let badge = badge.staff.unwrap();
    assert_eq!(
        badge.certificates[0].status,
        pb::CertificateStatus::Revoked as i32
    );
    assert!(badge.assigned_matter_ids.is_empty());

    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE event_type = 'xiaoneng.catalog.events.v1.CertificateChanged'",
    )
    .fetch_one(&catalog.db().await)
    .await
    .unwrap();
    assert_eq!(events, 4, "three issued, one revoked");
}
