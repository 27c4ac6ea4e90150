//! Open311 GeoReport v2 over the same use cases as the gRPC API (no copy of the domain or the
//! store): `GET services`, `GET services/{code}` (the definition with its attributes), `POST
//! requests` (form-encoded, with `api_key`), `GET requests` (filters `service_request_id`,
//! `service_code`, `start_date`, `end_date`, `status`) and `GET requests/{id}`, each as `.json`
//! or `.xml`, under `/open311/v2/`. `jurisdiction_id` names the deployment's city or one of its
//! counties. Errors are shaped as the spec shapes them: a list of `{code, description}`.
//! Reads are public and show the substance only, masked; never an identity, never a
//! discipline report, nothing of a region that withholds its complaints.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use xiaoneng_kit::auth::{roles, Caller};
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::AppError;

use crate::domain::sight::{Facts, Reader};
use crate::domain::{
    ComplaintRow, Filing, Finding, Identity, Kind, Location, State, TargetKind, View,
};
use crate::service::{Complaints, Scope};
use crate::Open311Settings;

#[derive(Clone)]
struct App {
    complaints: Complaints,
    settings: Open311Settings,
}

pub fn router(complaints: Complaints, settings: Open311Settings) -> Router {
    Router::new()
        .route("/open311/v2/{file}", get(root_get).post(root_post))
        .route("/open311/v2/services/{file}", get(service_definition))
        .route("/open311/v2/requests/{file}", get(one_request))
        .with_state(App {
            complaints,
            settings,
        })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Xml,
}

/// `name.json` / `name.xml` → (name, format).
fn split(file: &str) -> Option<(&str, Format)> {
    let (name, ext) = file.rsplit_once('.')?;
    match ext {
        "json" => Some((name, Format::Json)),
        "xml" => Some((name, Format::Xml)),
        _ => None,
    }
}

/// A value of the spec's documents: what renders to JSON and to XML alike.
#[derive(Debug, Clone)]
enum V {
    S(String),
    B(bool),
    N(i64),
    F(f64),
    Null,
    /// An object: ordered fields.
    O(Vec<(&'static str, V)>),
    /// A list whose XML elements are named by the given tag.
    L(&'static str, Vec<V>),
}

fn s(x: impl Into<String>) -> V {
    V::S(x.into())
}

fn json(v: &V) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        V::S(x) => J::String(x.clone()),
        V::B(b) => J::Bool(*b),
        V::N(n) => J::from(*n),
        V::F(x) => J::from(*x),
        V::Null => J::Null,
        V::O(fields) => J::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), json(v)))
                .collect(),
        ),
        V::L(_, items) => J::Array(items.iter().map(json).collect()),
    }
}

fn escape(x: &str) -> String {
    x.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn xml(v: &V, out: &mut String) {
    match v {
        V::S(x) => out.push_str(&escape(x)),
        V::B(b) => out.push_str(if *b { "true" } else { "false" }),
        V::N(n) => out.push_str(&n.to_string()),
        V::F(x) => out.push_str(&x.to_string()),
        V::Null => {}
        V::O(fields) => {
            for (k, v) in fields {
                out.push_str(&format!("<{k}>"));
                xml(v, out);
                out.push_str(&format!("</{k}>"));
            }
        }
        V::L(tag, items) => {
            for i in items {
                out.push_str(&format!("<{tag}>"));
                xml(i, out);
                out.push_str(&format!("</{tag}>"));
            }
        }
    }
}

/// Renders `v` (a list) with the XML root `root`.
fn render(status: StatusCode, f: Format, root: &str, v: V) -> Response {
    match f {
        Format::Json => (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            json(&v).to_string(),
        )
            .into_response(),
        Format::Xml => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
            out.push_str(&format!("<{root}>"));
            xml(&v, &mut out);
            out.push_str(&format!("</{root}>"));
            (
                status,
                [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                out,
            )
                .into_response()
        }
    }
}

/// The spec's error document: `[{code, description}]`.
fn error(f: Format, status: StatusCode, description: &str) -> Response {
    let e = V::O(vec![
        ("code", V::N(status.as_u16() as i64)),
        ("description", s(description)),
    ]);
    render(status, f, "errors", V::L("error", vec![e]))
}

fn app_error(f: Format, e: AppError) -> Response {
    let status = match &e {
        AppError::InvalidArgument(_) | AppError::FailedPrecondition { .. } => {
            StatusCode::BAD_REQUEST
        }
        AppError::NotFound { .. } => StatusCode::NOT_FOUND,
        AppError::PermissionDenied(_) | AppError::Unauthenticated(_) => StatusCode::FORBIDDEN,
        AppError::Aborted(_) | AppError::AlreadyExists(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let msg = match &e {
        AppError::Internal(_) => "internal error".to_string(),
        other => other.to_string(),
    };
    error(f, status, &msg)
}

impl App {
    /// The jurisdiction a request names (or the deployment's), checked to lie inside it.
    fn jurisdiction(&self, given: Option<&String>) -> Result<RegionCode, (StatusCode, String)> {
        let home = RegionCode::parse(&self.settings.jurisdiction)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))?;
        match given.map(|g| g.trim()).filter(|g| !g.is_empty()) {
            None => Ok(home),
            Some(g) => match RegionCode::parse(g) {
                Ok(r) if home.contains(&r) => Ok(r),
                _ => Err((StatusCode::NOT_FOUND, "jurisdiction_id not found".into())),
            },
        }
    }

    /// The public's scope: the jurisdiction asked for, read as [`Reader::Public`] (never a
    /// discipline report).
    fn public(&self, region: RegionCode) -> Scope {
        Scope {
            region,
            reader: Reader::Public,
        }
    }

    /// Whether the complaint's region publishes its complaints (its own setting, else its
    /// city's, else yes).
    fn published(&self, c: &ComplaintRow) -> bool {
        let city = c
            .region_code
            .get(..4)
            .map(|x| format!("{x}00"))
            .unwrap_or_default();
        let p = &self.settings.publish;
        p.get(&c.region_code)
            .or_else(|| p.get(&city))
            .copied()
            .unwrap_or(true)
    }

    /// The caller a filing acts as: the `system` role in the jurisdiction.
    fn caller(&self, client: &str, region: RegionCode) -> Caller {
        Caller {
            subject: format!("open311:{client}"),
            roles: vec![roles::SYSTEM.to_string()],
            region,
            department: None,
        }
    }
}

fn service_doc(c: &crate::domain::Category) -> V {
    V::O(vec![
        ("service_code", s(&c.code)),
        ("service_name", s(&c.name)),
        (
            "description",
            s(if c.misconduct {
                format!("{}(转纪检监察)", c.name)
            } else {
                c.name.clone()
            }),
        ),
        ("metadata", V::B(true)),
        ("type", s("realtime")),
        ("keywords", s("投诉,举报,效能")),
        ("group", s("效能投诉")),
    ])
}

async fn root_get(
    AxState(app): AxState<App>,
    Path(file): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let Some((name, f)) = split(&file) else {
        return error(Format::Json, StatusCode::NOT_FOUND, "unknown document");
    };
    let region = match app.jurisdiction(q.get("jurisdiction_id")) {
        Ok(r) => r,
        Err((st, m)) => return error(f, st, &m),
    };
    match name {
        "services" => {
            let list = app.complaints.rules.categories(region.as_str());
            render(
                StatusCode::OK,
                f,
                "services",
                V::L("service", list.iter().map(service_doc).collect()),
            )
        }
        "requests" => list_requests(&app, f, region, &q).await,
        _ => error(f, StatusCode::NOT_FOUND, "unknown document"),
    }
}

async fn service_definition(
    AxState(app): AxState<App>,
    Path(file): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let Some((code, f)) = split(&file) else {
        return error(Format::Json, StatusCode::NOT_FOUND, "unknown document");
    };
    let region = match app.jurisdiction(q.get("jurisdiction_id")) {
        Ok(r) => r,
        Err((st, m)) => return error(f, st, &m),
    };
    let cats = app.complaints.rules.categories(region.as_str());
    if !cats.iter().any(|c| c.code == code) {
        return error(f, StatusCode::NOT_FOUND, "service_code not found");
    }
    let value = |key: &str, name: &str| V::O(vec![("key", s(key)), ("name", s(name))]);
    let attr =
        |order: i64, code: &str, datatype: &str, required: bool, desc: &str, values: Vec<V>| {
            V::O(vec![
                ("variable", V::B(true)),
                ("code", s(code)),
                ("datatype", s(datatype)),
                ("required", V::B(required)),
                ("datatype_description", s("")),
                ("order", V::N(order)),
                ("description", s(desc)),
                ("values", V::L("value", values)),
            ])
        };
    let targets: Vec<V> = TargetKind::ALL
        .iter()
        .map(|t| value(t.name(), t.name()))
        .collect();
    let kinds = vec![
        value("complaint", "投诉"),
        value("consultation", "咨询"),
        value("urgent", "紧急"),
        value("retaliation", "打击报复举报"),
    ];
    let doc = V::O(vec![
        ("service_code", s(code)),
        (
            "attributes",
            V::L(
                "attribute",
                vec![
                    attr(
                        1,
                        "target_kind",
                        "singlevaluelist",
                        true,
                        "被投诉对象类型",
                        targets,
                    ),
                    attr(
                        2,
                        "target_id",
                        "string",
                        true,
                        "被投诉对象编号 (部门、窗口、工号、事项、办件、取号)",
                        vec![],
                    ),
                    attr(
                        3,
                        "kind",
                        "singlevaluelist",
                        false,
                        "类型 (默认投诉)",
                        kinds,
                    ),
                ],
            ),
        ),
    ]);
    match f {
        Format::Json => render(StatusCode::OK, f, "service_definition", doc),
        // XML: the definition is the root element's content.
        Format::Xml => render(StatusCode::OK, f, "service_definition", {
            let V::O(fields) = doc else { unreachable!() };
            V::O(fields)
        }),
    }
}

async fn root_post(
    AxState(app): AxState<App>,
    Path(file): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Some(("requests", f)) = split(&file) else {
        return error(Format::Json, StatusCode::NOT_FOUND, "unknown document");
    };
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(v) => v,
        Err(_) => return error(f, StatusCode::BAD_REQUEST, "the body must be form-encoded"),
    };
    let field = |k: &str| {
        form.iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let key = field("api_key");
    let Some(client) = app.settings.api_keys.get(&key).filter(|_| !key.is_empty()) else {
        return error(f, StatusCode::FORBIDDEN, "api_key is missing or not valid");
    };
    let region = match app.jurisdiction(Some(&field("jurisdiction_id"))) {
        Ok(r) => r,
        Err((st, m)) => return error(f, st, &m),
    };
    let code = field("service_code");
    if code.is_empty() {
        return error(f, StatusCode::BAD_REQUEST, "service_code is required");
    }
    let kind = match field("attribute[kind]").as_str() {
        "" | "complaint" => Some(Kind::Complaint),
        k => Kind::from_name(k),
    };
    let name = format!("{}{}", field("last_name"), field("first_name"));
    let coordinate = |k: &str| -> Result<Option<f64>, Response> {
        let v = field(k);
        if v.trim().is_empty() {
            return Ok(None);
        }
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| error(f, StatusCode::BAD_REQUEST, &format!("{k} must be a number")))
    };
    let (lat, long) = match (coordinate("lat"), coordinate("long")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let filing = Filing {
        region_code: region.as_str().to_string(),
        kind,
        category: code,
        channel: Some(crate::domain::Channel::Open311),
        target_kind: TargetKind::from_name(&field("attribute[target_kind]")),
        target_id: field("attribute[target_id]"),
        target_department: String::new(),
        description: field("description"),
        attachments: form
            .iter()
            .filter(|(k, _)| k == "media_url")
            .map(|(_, v)| v.clone())
            .collect(),
        identity: Identity {
            name,
            phone: field("phone"),
            id_number: String::new(),
            address: String::new(),
            email: field("email"),
            first_name: field("first_name"),
            last_name: field("last_name"),
            device_id: field("device_id"),
            account_id: field("account_id"),
            account: String::new(),
        },
        fast_track: false,
        location: Location {
            address: field("address_string"),
            address_id: field("address_id"),
            lat,
            long,
        },
    };
    let caller = app.caller(client, region);
    match app.complaints.file(&caller, filing).await {
        Ok((row, merged)) => {
            let notice = if merged {
                "已并入同一投诉人对同一对象的在办投诉".to_string()
            } else if Facts::from(&row).discipline_report() {
                format!("已转纪检监察机关办理, 不公开, 办理期限 {}", due(&row))
            } else {
                format!("已受理, 办理期限 {}", due(&row))
            };
            let doc = V::O(vec![
                ("service_request_id", s(row.id.to_string())),
                ("service_notice", s(notice)),
                ("account_id", V::Null),
            ]);
            render(
                StatusCode::CREATED,
                f,
                "service_requests",
                V::L("request", vec![doc]),
            )
        }
        Err(AppError::InvalidArgument(v)) => {
            let list: Vec<V> = v
                .iter()
                .map(|x| {
                    V::O(vec![
                        ("code", V::N(400)),
                        ("description", s(format!("{}: {}", x.field, x.description))),
                    ])
                })
                .collect();
            render(StatusCode::BAD_REQUEST, f, "errors", V::L("error", list))
        }
        Err(e) => app_error(f, e),
    }
}

fn due(c: &ComplaintRow) -> String {
    c.due_on.map(|d| d.to_string()).unwrap_or_default()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.with_timezone(&xiaoneng_kit::clock::cst())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// The human-readable note of where a request stands, in Chinese (the public's words, not
/// the state's name).
fn status_notes(c: &ComplaintRow) -> String {
    let view = View::Substance;
    match c.state {
        State::Registered => "已登记, 待分办".to_string(),
        State::Assigned => format!("已分办至{}, 待调查核实", c.assigned_to),
        State::Investigating if c.reopened > 0 => "投诉人对答复不满意, 已重新调查".to_string(),
        State::Investigating => "正在调查核实".to_string(),
        State::Concluded => match c.finding {
            Some(Finding::Substantiated) => "调查完毕: 反映属实, 待答复".to_string(),
            Some(Finding::PartlySubstantiated) => "调查完毕: 反映部分属实, 待答复".to_string(),
            _ => "调查完毕: 反映不属实, 待答复".to_string(),
        },
        State::Replied => format!("已答复: {}", view.text(&c.reply)),
        State::CalledBack => "已答复并回访".to_string(),
        State::Closed => "已办结".to_string(),
    }
}

/// A request as the public sees it: substance masked, where it happened as sent, the legal
/// clock's deadline (the end of its working day) as `expected_datetime`, the department it
/// is assigned to as `agency_responsible`.
fn request_doc(c: &ComplaintRow, name: &str) -> V {
    let view = View::Substance;
    let open = c.state != State::Closed;
    let coordinate = |x: Option<f64>| x.map(V::F).unwrap_or(V::Null);
    V::O(vec![
        ("service_request_id", s(c.id.to_string())),
        ("status", s(if open { "open" } else { "closed" })),
        ("status_notes", s(status_notes(c))),
        ("service_name", s(name)),
        ("service_code", s(&c.category)),
        ("description", s(view.text(&c.description))),
        ("agency_responsible", s(&c.assigned_to)),
        ("service_notice", s("")),
        ("requested_datetime", s(rfc3339(c.filed_at))),
        ("updated_datetime", s(rfc3339(c.updated_at))),
        (
            "expected_datetime",
            c.due_on
                .map(|d| s(format!("{d}T18:00:00+08:00")))
                .unwrap_or(V::Null),
        ),
        ("address", s(&c.address)),
        ("address_id", s(&c.address_id)),
        ("zipcode", s("")),
        ("lat", coordinate(c.lat)),
        ("long", coordinate(c.long)),
        (
            "media_url",
            s(c.attachments.first().cloned().unwrap_or_default()),
        ),
    ])
}

async fn list_requests(
    app: &App,
    f: Format,
    region: RegionCode,
    q: &BTreeMap<String, String>,
) -> Response {
    let scope = app.public(region.clone());
    let cats = app.complaints.rules.categories(region.as_str());
    let name_of = |code: &str| {
        cats.iter()
            .find(|c| c.code == code)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    let mut rows: Vec<ComplaintRow> = Vec::new();
    if let Some(ids) = q.get("service_request_id").filter(|x| !x.is_empty()) {
        for id in ids.split(',') {
            let Ok(id) = uuid::Uuid::parse_str(id.trim()) else {
                return error(
                    f,
                    StatusCode::BAD_REQUEST,
                    "service_request_id must list ids",
                );
            };
            match app.complaints.get_in(&scope, id).await {
                Ok(r) => rows.push(r),
                Err(AppError::NotFound { .. }) => {}
                Err(e) => return app_error(f, e),
            }
        }
    } else {
        let page = match xiaoneng_kit::paging::PageRequest::parse(1000, "") {
            Ok(p) => p,
            Err(e) => return app_error(f, e),
        };
        match app
            .complaints
            .list_in(&scope, region.as_str(), None, &page)
            .await
        {
            Ok(listed) => rows = listed.rows,
            Err(e) => return app_error(f, e),
        }
    }
    let parse_time = |k: &str| -> Result<Option<DateTime<Utc>>, Response> {
        match q.get(k).filter(|x| !x.is_empty()) {
            None => Ok(None),
            Some(v) => DateTime::parse_from_rfc3339(v)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| {
                    error(
                        f,
                        StatusCode::BAD_REQUEST,
                        &format!("{k} must be W3C (RFC 3339)"),
                    )
                }),
        }
    };
    let (start, end) = match (parse_time("start_date"), parse_time("end_date")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let status = q.get("status").map(|x| x.as_str()).unwrap_or("");
    if !matches!(status, "" | "open" | "closed") {
        return error(f, StatusCode::BAD_REQUEST, "status must be open or closed");
    }
    let codes: Vec<&str> = q
        .get("service_code")
        .map(|x| x.split(',').filter(|c| !c.is_empty()).collect())
        .unwrap_or_default();
    let docs: Vec<V> = rows
        .iter()
        .filter(|c| app.published(c))
        .filter(|c| codes.is_empty() || codes.contains(&c.category.as_str()))
        .filter(|c| start.is_none_or(|t| c.filed_at >= t) && end.is_none_or(|t| c.filed_at <= t))
        .filter(|c| match status {
            "open" => c.state != State::Closed,
            "closed" => c.state == State::Closed,
            _ => true,
        })
        .map(|c| request_doc(c, &name_of(&c.category)))
        .collect();
    render(StatusCode::OK, f, "service_requests", V::L("request", docs))
}

async fn one_request(
    AxState(app): AxState<App>,
    Path(file): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let Some((id, f)) = split(&file) else {
        return error(Format::Json, StatusCode::NOT_FOUND, "unknown document");
    };
    let region = match app.jurisdiction(q.get("jurisdiction_id")) {
        Ok(r) => r,
        Err((st, m)) => return error(f, st, &m),
    };
    let Ok(id) = uuid::Uuid::parse_str(id) else {
        return error(f, StatusCode::NOT_FOUND, "service_request_id not found");
    };
    match app.complaints.get_in(&app.public(region.clone()), id).await {
        Ok(c) if !app.published(&c) => {
            error(f, StatusCode::NOT_FOUND, "service_request_id not found")
        }
        Ok(c) => {
            let cats = app.complaints.rules.categories(region.as_str());
            let name = cats
                .iter()
                .find(|x| x.code == c.category)
                .map(|x| x.name.clone())
                .unwrap_or_default();
            render(
                StatusCode::OK,
                f,
                "service_requests",
                V::L("request", vec![request_doc(&c, &name)]),
            )
        }
        Err(e) => app_error(f, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_render_as_json_and_xml_alike() {
        let v = V::L(
            "request",
            vec![V::O(vec![
                ("service_request_id", s("1")),
                ("status", s("open")),
                ("description", s("<b>&'\"")),
                ("account_id", V::Null),
            ])],
        );
        let want: serde_json::Value = serde_json::from_str(
            r#"[{"service_request_id":"1","status":"open","description":"<b>&'\"","account_id":null}]"#,
        )
        .unwrap();
        assert_eq!(json(&v), want);
        let mut out = String::new();
        xml(&v, &mut out);
        assert_eq!(
            out,
            "<request><service_request_id>1</service_request_id><status>open</status>\
             <description>&lt;b&gt;&amp;&apos;&quot;</description><account_id></account_id></request>"
        );
        assert!(split("requests.json") == Some(("requests", Format::Json)));
        assert!(split("requests.csv").is_none());
    }
}
