//! Signing in and out. Either way the person ends as a staff account of the catalog: their
//! roles, region and department come from their staff record, never from what the browser
//! sent, and the web face calls the services with short-lived tokens carrying them.
//!
//! - OpenID Connect (`/signin/oidc` → the provider → `/signin/callback`, see [`crate::oidc`]):
//!   the province's identity provider says who the person is (their 工号).
//! - The development sign-in (`POST /signin`, only with `domain.dev_signin`): a list of the
//!   region's staff accounts to pick from; the chart refuses to turn it on.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use xiaoneng_kit::auth::roles;
use xiaoneng_proto::catalog::v1 as cpb;
use xiaoneng_proto::catalog::v1::catalog_service_client::CatalogServiceClient;

use crate::html::{e, page};
use crate::oidc::{Pending, Refused, PENDING_COOKIE, PENDING_SECONDS};
use crate::pages::{cookies, now, session_of};
use crate::session::{self, Session};
use crate::App;

/// How long a sign-in lasts: a working day.
const SESSION_SECONDS: i64 = 10 * 3600;

#[derive(Deserialize)]
pub struct Next {
    #[serde(default)]
    pub next: String,
}

/// Only a path of ours: never another site (an open redirect).
pub fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next.to_string()
    } else {
        "/desk".into()
    }
}

pub fn cookie_header(app: &App, name: &str, value: &str, max_age: i64) -> String {
    let secure = if app.settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// A role as people in a hall name it.
pub fn role_name(role: &str) -> &str {
    match role {
        roles::CLERK => "窗口工作人员",
        roles::REVIEWER => "审批人员",
        roles::HALL_MANAGER => "中心管理",
        roles::SUPERVISOR => "效能办",
        roles::INSPECTOR => "纪检监察",
        roles::CATALOG_ADMIN => "事项管理",
        other => other,
    }
}

fn refused(status: StatusCode, why: &str) -> Response {
    let body = format!(
        "<main><h1>登录未成功</h1><p class=\"msg\" role=\"alert\">{}</p>\
         <p><a href=\"/signin\">重新登录</a></p></main>",
        e(why)
    );
    (status, Html(page("登录未成功", "signin", &body, None))).into_response()
}

pub async fn signin_page(State(app): State<App>, Query(q): Query<Next>) -> Response {
    let next = safe_next(&q.next);
    let mut body = String::from("<main><h1>工作人员登录</h1>");
    if app.oidc.is_some() {
        body.push_str(&format!(
            "<p><a class=\"button\" href=\"/signin/oidc?{}\">统一身份认证登录</a></p>",
            e(&serde_urlencoded::to_string([("next", &next)]).unwrap_or_default())
        ));
    }
    if app.settings.dev_signin {
        body.push_str(&dev_form(&app, &next).await);
    }
    if app.oidc.is_none() && !app.settings.dev_signin {
        body.push_str("<p>本部署尚未配置统一身份认证 (OpenID Connect), 暂不能登录。</p>");
    }
    body.push_str("</main>");
    Html(page("登录", "signin", &body, None)).into_response()
}

/// The development sign-in: pick one of the region's staff accounts.
async fn dev_form(app: &App, next: &str) -> String {
    let mut catalog = CatalogServiceClient::new(app.catalog.clone());
    let req = cpb::ListStaffAccountsRequest {
        region_code: String::new(),
        page_size: 200,
        page_token: String::new(),
    };
    let token = app.system_token("signin");
    let accounts = match catalog.list_staff_accounts(app.request(req, &token)).await {
        Ok(r) => r.into_inner().accounts,
        Err(_) => return "<p class=\"msg\" role=\"alert\">事项目录服务暂时无法连接, 开发环境登录不可用。</p>".into(),
    };
    let options: String = accounts
        .iter()
        .filter_map(|a| a.staff.as_ref().map(|s| (s, &a.roles)))
        .map(|(s, r)| {
            let roles: Vec<&str> = r.iter().map(|r| role_name(r)).collect();
            format!(
                "<option value=\"{}\">{} {} ({})</option>",
                e(&s.badge_number),
                e(&s.badge_number),
                e(&s.name),
                e(&roles.join("、"))
            )
        })
        .collect();
    format!(
        "<h2>开发环境登录</h2><p class=\"warn\">仅用于本地演示, 部署中不可用。</p>\
         <form method=\"post\" action=\"/signin\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
         <p><label for=\"badge\">工作人员</label> <select id=\"badge\" name=\"badge\">{options}</select></p>\
         <p><button type=\"submit\">登录</button></p></form>",
        e(next)
    )
}

#[derive(Deserialize)]
pub struct DevSignIn {
    pub badge: String,
    #[serde(default)]
    pub next: String,
}

pub async fn signin(State(app): State<App>, Form(f): Form<DevSignIn>) -> Response {
    if !app.settings.dev_signin {
        return refused(StatusCode::FORBIDDEN, "开发环境登录未开启");
    }
    open_session(&app, f.badge.trim(), &safe_next(&f.next), &[]).await
}

/// The staff account `badge` names becomes the session; the person goes on to `next`.
async fn open_session(app: &App, badge: &str, next: &str, clear: &[&str]) -> Response {
    let mut catalog = CatalogServiceClient::new(app.catalog.clone());
    let req = cpb::FindStaffAccountRequest {
        badge_number: badge.to_string(),
    };
    let token = app.system_token("signin");
    let account = match catalog.find_staff_account(app.request(req, &token)).await {
        Ok(r) => r.into_inner().account.unwrap_or_default(),
        Err(s) if s.code() == tonic::Code::NotFound || s.code() == tonic::Code::InvalidArgument => {
            return refused(
                StatusCode::FORBIDDEN,
                &format!("工号 {badge} 不是本平台登记的工作人员"),
            )
        }
        Err(_) => {
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "事项目录服务暂时无法连接, 请稍后再试",
            )
        }
    };
    let staff = account.staff.unwrap_or_default();
    if account.roles.is_empty() || staff.id.is_empty() {
        return refused(StatusCode::FORBIDDEN, "您的工作人员记录没有本平台的岗位");
    }
    let s = Session {
        sub: staff.id,
        name: staff.name,
        roles: account.roles,
        region: staff.region_code,
        dept: Some(account.department_code).filter(|d| !d.is_empty()),
        csrf: session::random_token(),
        exp: now() + SESSION_SECONDS,
    };
    let value = session::encode(&app.key, &s);
    let mut r = Redirect::to(next).into_response();
    let h = r.headers_mut();
    if let Ok(v) = cookie_header(app, session::COOKIE, &value, SESSION_SECONDS).parse() {
        h.append(header::SET_COOKIE, v);
    }
    for name in clear {
        if let Ok(v) = cookie_header(app, name, "", 0).parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    r
}

#[derive(Deserialize)]
pub struct SignOut {
    #[serde(default)]
    pub csrf: String,
}

pub async fn signout(
    State(app): State<App>,
    headers: HeaderMap,
    Form(f): Form<SignOut>,
) -> Response {
    if session_of(&app, &headers).is_some_and(|s| s.csrf != f.csrf) {
        return (StatusCode::FORBIDDEN, "表单已失效, 请刷新页面后重试").into_response();
    }
    (
        [(
            header::SET_COOKIE,
            cookie_header(&app, session::COOKIE, "", 0),
        )],
        Redirect::to("/signin"),
    )
        .into_response()
}

fn redirect_uri(app: &App) -> String {
    format!(
        "{}/signin/callback",
        app.settings.public_url.trim_end_matches('/')
    )
}

/// Leaves for the identity provider, remembering the sign-in in a sealed cookie.
pub async fn oidc_begin(State(app): State<App>, Query(q): Query<Next>) -> Response {
    let Some(oidc) = app.oidc.clone() else {
        return refused(StatusCode::NOT_FOUND, "本部署未配置统一身份认证");
    };
    let p = Pending::new(&safe_next(&q.next), now());
    match oidc.authorize_url(&p, &redirect_uri(&app)).await {
        Ok(url) => (
            [(
                header::SET_COOKIE,
                cookie_header(&app, PENDING_COOKIE, &p.seal(&app.key), PENDING_SECONDS),
            )],
            Redirect::to(&url),
        )
            .into_response(),
        Err(r) => {
            tracing::warn!(?r, "the identity provider's discovery failed");
            refused(StatusCode::SERVICE_UNAVAILABLE, &r.said())
        }
    }
}

#[derive(Deserialize)]
pub struct Callback {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub error: String,
}

/// Back from the identity provider: the checks of [`crate::oidc::Oidc::finish`], then the
/// staff account of the badge it names.
pub async fn oidc_callback(
    State(app): State<App>,
    headers: HeaderMap,
    Query(c): Query<Callback>,
) -> Response {
    let Some(oidc) = app.oidc.clone() else {
        return refused(StatusCode::NOT_FOUND, "本部署未配置统一身份认证");
    };
    let pending = session::cookie(cookies(&headers), PENDING_COOKIE)
        .and_then(|v| Pending::open(&app.key, &v, now()));
    let result = match (&pending, c.error.is_empty()) {
        (None, _) => Err(Refused::Stale),
        (Some(_), false) => Err(Refused::Provider(c.error.clone())),
        (Some(p), true) => oidc
            .finish(p, &c.state, &c.code, &redirect_uri(&app))
            .await
            .map(|badge| (badge, p.next.clone())),
    };
    match result {
        Ok((badge, next)) => open_session(&app, &badge, &next, &[PENDING_COOKIE]).await,
        Err(r) => {
            tracing::warn!(?r, "an OpenID Connect sign-in was refused");
            refused(StatusCode::FORBIDDEN, &r.said())
        }
    }
}
