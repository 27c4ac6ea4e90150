//! The pages. Each handler calls the services as the person signed in (the desk) or as the web
//! face's own `system` caller (the public screen, the pad, the rating page), renders Chinese
//! HTML with every text escaped, and says in plain words when a service does not answer.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use futures::Stream;
use xiaoneng_kit::auth::roles;
use xiaoneng_proto::evaluation::v1 as epb;
use xiaoneng_proto::evaluation::v1::evaluation_service_client::EvaluationServiceClient;
use xiaoneng_proto::queue::v1 as qpb;
use xiaoneng_proto::queue::v1::queue_service_client::QueueServiceClient;

use crate::html::{e, page, refreshing};
use crate::session::{self, Session};
use crate::signin::cookie_header;
use crate::App;

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(crate) fn cookies(h: &HeaderMap) -> Option<&str> {
    h.get(header::COOKIE).and_then(|v| v.to_str().ok())
}

pub(crate) fn session_of(app: &App, h: &HeaderMap) -> Option<Session> {
    session::from_cookies(&app.key, cookies(h), now())
}

/// A service's refusal or absence, in plain Chinese.
pub(crate) fn said(s: &tonic::Status) -> String {
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown => {
            "排队叫号服务暂时无法连接, 请稍后再试。".into()
        }
        tonic::Code::PermissionDenied => "您的岗位无权进行此操作。".into(),
        tonic::Code::NotFound => "未找到。".into(),
        tonic::Code::FailedPrecondition => format!("当前状态下不能这样操作: {}", s.message()),
        _ => format!("操作未完成: {}", s.message()),
    }
}

pub async fn home() -> Html<String> {
    Html(page(
        "效能 · 政务服务大厅",
        "home",
        "<main><h1>政务服务大厅</h1><ul>\
         <li><a href=\"/desk\">窗口工作台</a></li></ul>\
         <p>叫号屏: /halls/&lt;大厅编号&gt;/screen; 评价器: /pads/&lt;大厅编号&gt;/&lt;窗口号&gt;</p></main>",
        None,
    ))
}

// ---------------------------------------------------------------- the calling screen

async fn hall_name(app: &App, hall: &str) -> Result<String, tonic::Status> {
    let token = app.system_token("screen");
    let mut q = QueueServiceClient::new(app.queue.clone());
    let h = q
        .get_hall(app.request(
            qpb::GetHallRequest {
                hall_id: hall.into(),
            },
            &token,
        ))
        .await?
        .into_inner()
        .hall
        .unwrap_or_default();
    Ok(h.name)
}

pub async fn screen(State(app): State<App>, Path(hall): Path<String>) -> Response {
    let name = match hall_name(&app, &hall).await {
        Ok(n) => n,
        Err(s) if s.code() == tonic::Code::NotFound || s.code() == tonic::Code::InvalidArgument => {
            return (
                StatusCode::NOT_FOUND,
                Html(page(
                    "未找到大厅",
                    "screen",
                    "<main><h1>未找到该大厅</h1></main>",
                    None,
                )),
            )
                .into_response()
        }
        Err(_) => "政务服务大厅".into(),
    };
    let hub = app.boards.hub(&hall, &app);
    let state = hub.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let body = format!(
        "<main class=\"board\" data-hall=\"{hall}\">\
         <header><h1>{name}</h1><p class=\"clock\" id=\"clock\"></p>\
         <button type=\"button\" id=\"sound\">启用声音</button></header>\
         <p id=\"status\" class=\"status\" role=\"status\">{status}</p>\
         <section class=\"now\" aria-labelledby=\"now-h\"><h2 id=\"now-h\">正在呼叫</h2>\
         <div id=\"now\" aria-live=\"assertive\" aria-atomic=\"true\">{now}</div></section>\
         <section class=\"recent\" aria-labelledby=\"recent-h\"><h2 id=\"recent-h\">最近叫号</h2>\
         <ol id=\"recent\">{recent}</ol></section>\
         <section class=\"missed\" aria-labelledby=\"missed-h\"><h2 id=\"missed-h\">过号</h2>\
         <p id=\"missed\">{missed}</p></section>\
         <section class=\"waits\" aria-labelledby=\"waits-h\"><h2 id=\"waits-h\">等候</h2>\
         <table><thead><tr><th scope=\"col\">类别</th><th scope=\"col\">等候人数</th>\
         <th scope=\"col\">预计等候</th></tr></thead><tbody id=\"waits\">{waits}</tbody></table>\
         </section></main>",
        hall = e(&hall),
        name = e(&name),
        status = if state.connected {
            ""
        } else {
            "正在连接…"
        },
        now = state
            .recent
            .first()
            .map(|c| format!(
                "<p class=\"call newest\">请 <b>{}</b> 号到 <b>{}</b> 窗口办理</p>",
                e(&c.number),
                e(&c.window)
            ))
            .unwrap_or_default(),
        recent = state
            .recent
            .iter()
            .map(|c| format!(
                "<li><b>{}</b> → {} <small>{}</small></li>",
                e(&c.number),
                e(&c.window),
                e(&c.time)
            ))
            .collect::<String>(),
        missed = e(&state.missed.join("、")),
        waits = state
            .waiting
            .iter()
            .map(|(k, n)| {
                let m = state.wait_minutes.get(k).copied().unwrap_or(0);
                format!(
                    "<tr><th scope=\"row\">{}</th><td>{n}</td><td>{m} 分钟</td></tr>",
                    e(k)
                )
            })
            .collect::<String>(),
    );
    Html(page(
        &format!("{name} · 叫号屏"),
        "screen",
        &body,
        Some("screen.js"),
    ))
    .into_response()
}

/// The hall's board as JSON (what the screen renders).
pub async fn state(State(app): State<App>, Path(hall): Path<String>) -> Response {
    let hub = app.boards.hub(&hall, &app);
    let s = hub.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
    axum::Json(s).into_response()
}

/// Server-sent events of one hall: the current state first, then every change.
pub async fn events(
    State(app): State<App>,
    Path(hall): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let hub = app.boards.hub(&hall, &app);
    // Subscribe before reading the state: nothing between the two is missed.
    let rx = hub.tx.subscribe();
    let first = {
        let s = hub.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
        crate::board::Update {
            kind: "state",
            announcement: String::new(),
            state: s,
        }
    };
    use tokio_stream::StreamExt;
    let updates = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(|u| u.ok());
    let stream = tokio_stream::once(first).chain(updates).map(|u| {
        Ok(Event::default()
            .event("board")
            .data(serde_json::to_string(&u).unwrap_or_default()))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(10)))
}

// ---------------------------------------------------------------- signing in

// ---------------------------------------------------------------- the pad and the QR page

/// The rating options of an occurrence, from the evaluation service.
async fn options(
    app: &App,
    occurrence: i32,
) -> Result<epb::ListRatingOptionsResponse, tonic::Status> {
    let mut ev = EvaluationServiceClient::new(app.evaluation.clone());
    Ok(ev
        .list_rating_options(app.request(epb::ListRatingOptionsRequest { occurrence }, ""))
        .await?
        .into_inner())
}

async fn invitation(app: &App, id: &str) -> Result<epb::Invitation, tonic::Status> {
    let mut ev = EvaluationServiceClient::new(app.evaluation.clone());
    let token = app.system_token("rating");
    ev.get_invitation(app.request(epb::GetInvitationRequest { id: id.into() }, &token))
        .await?
        .into_inner()
        .invitation
        .ok_or_else(|| tonic::Status::not_found("invitation"))
}

/// The rating form of one invitation; `error` beside the field it is about.
/// What a refused form keeps: the level chosen and the comment typed.
#[derive(Default)]
struct Given<'a> {
    level: &'a str,
    comment: &'a str,
}

fn rating_form(
    token: &str,
    csrf: &str,
    o: &epb::ListRatingOptionsResponse,
    error: Option<(&str, &str)>,
    from_pad: &str,
    given: Given<'_>,
) -> String {
    let err = |field: &str| match error {
        Some((f, m)) if f == field => {
            format!("<p class=\"error\" id=\"{field}-error\">{}</p>", e(m))
        }
        _ => String::new(),
    };
    let described = |field: &str| match error {
        Some((f, _)) if f == field => {
            format!(" aria-describedby=\"{field}-error\" aria-invalid=\"true\"")
        }
        _ => String::new(),
    };
    let mut levels = String::new();
    for (i, l) in o.levels.iter().enumerate() {
        levels.push_str(&format!(
            "<label class=\"level\"><input type=\"radio\" name=\"level\" value=\"{}\"{}{}{}> {}</label>",
            e(&l.code),
            if i == 0 { " required" } else { "" },
            if l.code == given.level { " checked" } else { "" },
            described("level"),
            e(&l.name)
        ));
    }
    let mut indicators = String::new();
    for i in o.indicators.iter().filter(|i| i.code != "overall") {
        let mut opts = String::from("<option value=\"\">—</option>");
        for l in &o.levels {
            opts.push_str(&format!(
                "<option value=\"{}\">{}</option>",
                e(&l.code),
                e(&l.name)
            ));
        }
        indicators.push_str(&format!(
            "<p><label for=\"ind-{c}\">{n}</label> <select id=\"ind-{c}\" name=\"ind_{c}\">{opts}</select></p>",
            c = e(&i.code),
            n = e(&i.name)
        ));
    }
    format!(
        "<form method=\"post\" action=\"/rate/{token}\" class=\"rating\" novalidate>\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"pad\" value=\"{pad}\">\
         <fieldset><legend>总体评价</legend>{levels}</fieldset>{lerr}\
         <fieldset><legend>分项评价 (可选)</legend>{indicators}</fieldset>\
         <p><label for=\"comment\">意见或理由 (差评必填)</label><br>\
         <textarea id=\"comment\" name=\"comment\" rows=\"3\" maxlength=\"500\"{cdesc}>{comment}</textarea></p>{cerr}\
         <p><button type=\"submit\">提交评价</button></p></form>",
        token = e(token),
        csrf = e(csrf),
        pad = e(from_pad),
        lerr = err("level"),
        cdesc = described("comment"),
        cerr = err("comment"),
        comment = e(given.comment),
    )
}

fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build()
            .replacen("<svg ", "<svg role=\"img\" aria-label=\"评价二维码\" ", 1)
            .replacen("<?xml version=\"1.0\" standalone=\"yes\"?>", "", 1),
        Err(_) => String::new(),
    }
}

/// The signed value a registered pad carries (its hall and window).
fn pad_value(app: &App, hall: &str, window: &str) -> String {
    session::sign(&app.key, "pad", format!("{hall}/{window}").as_bytes())
}

/// Whether this browser is registered as the pad of `hall`/`window`.
fn is_pad(app: &App, headers: &HeaderMap, hall: &str, window: &str) -> bool {
    session::cookie(cookies(headers), "xn_pad")
        .and_then(|v| session::verify(&app.key, "pad", &v))
        .is_some_and(|v| v == format!("{hall}/{window}").as_bytes())
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)])
        .unwrap_or_default()
        .trim_start_matches("x=")
        .to_string()
}

/// A hall manager registers this browser as a window's pad (a signed cookie naming the hall
/// and window); a pad that is not registered shows nothing to rate.
pub async fn register_pad(
    State(app): State<App>,
    Path((hall, window)): Path<(String, String)>,
    headers: HeaderMap,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let csrf = f
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    match session_of(&app, &headers) {
        Some(s) if s.has_role(roles::HALL_MANAGER) && !csrf.is_empty() && csrf == s.csrf => {}
        _ => return (StatusCode::FORBIDDEN, "只有大厅管理人员可以登记评价器").into_response(),
    }
    let value = pad_value(&app, &hall, &window);
    (
        [(
            header::SET_COOKIE,
            cookie_header(&app, "xn_pad", &value, 180 * 24 * 3600),
        )],
        Redirect::to(&format!(
            "/pads/{}/{}",
            urlencode(&hall),
            urlencode(&window)
        )),
    )
        .into_response()
}

pub async fn pad(
    State(app): State<App>,
    headers: HeaderMap,
    Path((hall, window)): Path<(String, String)>,
) -> Response {
    if !is_pad(&app, &headers, &hall, &window) {
        let form = match session_of(&app, &headers) {
            Some(s) if s.has_role(roles::HALL_MANAGER) => format!(
                "<form method=\"post\" action=\"/pads/{h}/{w}/register\"><input type=\"hidden\" name=\"csrf\" value=\"{c}\">\
                 <button type=\"submit\">登记为本窗口评价器</button></form>",
                h = e(&urlencode(&hall)),
                w = e(&urlencode(&window)),
                c = e(&s.csrf)
            ),
            _ => format!(
                "<p><a href=\"/signin?next={}\">大厅管理人员登录后登记</a></p>",
                e(&urlencode(&format!("/pads/{hall}/{window}")))
            ),
        };
        let body = format!(
            "<main class=\"pad\"><h1>评价器未登记</h1><p>本设备尚未登记为 {} 窗口的评价器。</p>{form}</main>",
            e(&window)
        );
        return Html(page("评价器", "pad", &body, None)).into_response();
    }
    let idle = || {
        Html(refreshing(
            "评价器",
            "pad",
            &format!("<main class=\"pad idle\"><h1>{} 窗口</h1><p>欢迎办事, 办结后请对本次服务进行评价。</p></main>", e(&window)),
            2,
        ))
        .into_response()
    };
    // The window's newest unrated invitation, from the evaluation service (so any replica of
    // the web face shows the same): on the pad while the service just ended.
    let mut ev = EvaluationServiceClient::new(app.evaluation.clone());
    let token = app.system_token("pad");
    let found = ev
        .list_invitations(app.request(
            epb::ListInvitationsRequest {
                hall_id: hall.clone(),
                window_code: window.clone(),
                unrated_only: true,
                page_size: 1,
                ..Default::default()
            },
            &token,
        ))
        .await
        .map(|r| r.into_inner().invitations.into_iter().next());
    let timeout = app.settings.pad_timeout_seconds as i64;
    let (inv, left) = match found {
        Ok(Some(i)) if !i.expired => {
            let age = now() - i.open_time.as_ref().map_or(0, |t| t.seconds);
            if age >= timeout {
                return idle();
            }
            (i, timeout - age)
        }
        // Nothing to rate, or the finish is still on its way to the evaluation service.
        Ok(_) => return idle(),
        Err(_) => {
            return Html(refreshing(
                "评价器",
                "pad",
                "<main class=\"pad\"><p>评价服务暂时无法连接, 请稍候。</p></main>",
                3,
            ))
            .into_response()
        }
    };
    let rate_token = session::rating_token(&app.key, &inv.id);
    let link = format!(
        "{}/rate/{rate_token}",
        app.settings.public_url.trim_end_matches('/')
    );
    let opts = match options(&app, inv.occurrence).await {
        Ok(o) => o,
        Err(_) => return idle(),
    };
    let csrf = session::random_token();
    let body = format!(
        "<main class=\"pad\" data-idle-after=\"{}\"><h1>请对本次服务评价</h1><p>{} 窗口 · {}</p>{}\
         <aside class=\"qr\"><p>也可用手机扫码评价</p>{}<p class=\"link\"><a href=\"{}\">{}</a></p></aside></main>",
        left.clamp(1, 3600),
        e(&window),
        e(&inv.matter_name),
        rating_form(&rate_token, &csrf, &opts, None, &format!("{hall}/{window}"), Given::default()),
        qr_svg(&link),
        e(&link),
        e(&link),
    );
    (
        [(
            header::SET_COOKIE,
            cookie_header(&app, "xn_csrf", &csrf, 3600),
        )],
        // Back to idle once the pad's time for this service is up (pad.js).
        Html(page("评价器", "pad", &body, Some("pad.js"))),
    )
        .into_response()
}

pub async fn rate_page(State(app): State<App>, Path(token): Path<String>) -> Response {
    let Some(id) = session::rated_invitation(&app.key, &token) else {
        return rate_said(StatusCode::NOT_FOUND, "评价链接无效");
    };
    let inv = match invitation(&app, &id).await {
        Ok(i) => i,
        Err(s) if s.code() == tonic::Code::NotFound => {
            return rate_said(StatusCode::NOT_FOUND, "评价链接无效")
        }
        Err(_) => {
            return rate_said(
                StatusCode::SERVICE_UNAVAILABLE,
                "评价服务暂时无法连接, 请稍后再试",
            )
        }
    };
    if !inv.rating_id.is_empty() {
        let csrf = session::random_token();
        let body = format!(
            "<main class=\"rate\"><h1>您已评价, 感谢您的反馈</h1>\
             <form method=\"post\" action=\"/rate/{t}/follow\"><input type=\"hidden\" name=\"csrf\" value=\"{c}\">\
             <p><label for=\"follow\">追加评价 (可追评一次)</label><br>\
             <textarea id=\"follow\" name=\"comment\" rows=\"3\" maxlength=\"500\" required></textarea></p>\
             <p><button type=\"submit\">提交追评</button></p></form></main>",
            t = e(&token),
            c = e(&csrf)
        );
        return (
            [(
                header::SET_COOKIE,
                cookie_header(&app, "xn_csrf", &csrf, 3600),
            )],
            Html(page("评价", "rate", &body, None)),
        )
            .into_response();
    }
    if inv.expired {
        return rate_said(StatusCode::OK, "本次服务的评价期限已过");
    }
    let opts = match options(&app, inv.occurrence).await {
        Ok(o) => o,
        Err(_) => {
            return rate_said(
                StatusCode::SERVICE_UNAVAILABLE,
                "评价服务暂时无法连接, 请稍后再试",
            )
        }
    };
    let csrf = session::random_token();
    let body = format!(
        "<main class=\"rate\"><h1>服务评价</h1><p>{} · {} 窗口</p>{}</main>",
        e(&inv.matter_name),
        e(&inv.window_code),
        rating_form(&token, &csrf, &opts, None, "", Given::default())
    );
    (
        [(
            header::SET_COOKIE,
            cookie_header(&app, "xn_csrf", &csrf, 3600),
        )],
        Html(page("服务评价", "rate", &body, None)),
    )
        .into_response()
}

/// A rating page that says one thing (an invalid link, a closed window, a service away).
fn rate_said(status: StatusCode, what: &str) -> Response {
    (
        status,
        Html(page(
            "评价",
            "rate",
            &format!("<main><h1>{}</h1></main>", e(what)),
            None,
        )),
    )
        .into_response()
}

/// One field of a posted form, trimmed ('' when absent).
fn form_field(form: &[(String, String)], k: &str) -> String {
    form.iter()
        .find(|(x, _)| x == k)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

/// A rating page's post checked: the token names an invitation (else 404) and the form's CSRF
/// token matches its cookie (else 403). The invitation id and the CSRF token.
fn checked_post(
    app: &App,
    token: &str,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<(String, String), Response> {
    let refuse = |status: StatusCode, what: &str| {
        (
            status,
            Html(page(
                "评价",
                "rate",
                &format!("<main><h1>{}</h1></main>", e(what)),
                None,
            )),
        )
            .into_response()
    };
    let Some(id) = session::rated_invitation(&app.key, token) else {
        return Err(refuse(StatusCode::NOT_FOUND, "评价链接无效"));
    };
    let csrf = form_field(form, "csrf");
    if csrf.is_empty()
        || session::cookie(cookies(headers), "xn_csrf").as_deref() != Some(csrf.as_str())
    {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "表单已失效, 请刷新页面后重试",
        ));
    }
    Ok((id, csrf))
}

pub async fn rate(
    State(app): State<App>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let field = |k: &str| form_field(&form, k);
    let (id, csrf) = match checked_post(&app, &token, &headers, &form) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let inv = match invitation(&app, &id).await {
        Ok(i) => i,
        Err(_) => {
            return rate_said(
                StatusCode::SERVICE_UNAVAILABLE,
                "评价服务暂时无法连接, 请稍后再试",
            )
        }
    };
    let opts = match options(&app, inv.occurrence).await {
        Ok(o) => o,
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "评价服务暂时无法连接").into_response(),
    };
    let level_text = field("level");
    let level: i32 = level_text.parse().unwrap_or(0);
    let comment = field("comment");
    let pad = field("pad");
    let again = |f: &str, m: &str| {
        let body = format!(
            "<main class=\"rate\"><h1>服务评价</h1><p class=\"msg\" role=\"alert\">{}</p>{}</main>",
            e(m),
            rating_form(
                &token,
                &csrf,
                &opts,
                Some((f, m)),
                &pad,
                Given {
                    level: &level_text,
                    comment: &comment
                }
            )
        );
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(page("服务评价", "rate", &body, None)),
        )
            .into_response()
    };
    if !(1..=5).contains(&level) {
        return again("level", "请选择一项总体评价");
    }
    if level <= 2 && comment.is_empty() {
        return again("comment", "差评请填写理由或意见");
    }
    let scores = opts
        .indicators
        .iter()
        .filter_map(|i| {
            let v: i32 = field(&format!("ind_{}", i.code)).parse().ok()?;
            (1..=5).contains(&v).then(|| epb::Score {
                indicator: i.code.clone(),
                level: v,
            })
        })
        .collect();
    // The window-device channel only from a registered pad; anything else is the QR page.
    let pad = match pad.split_once('/') {
        Some((h, w)) if is_pad(&app, &headers, h, w) => pad.clone(),
        _ => String::new(),
    };
    let channel = if pad.is_empty() {
        epb::Channel::QrCode
    } else {
        epb::Channel::WindowDevice
    };
    let mut ev = EvaluationServiceClient::new(app.evaluation.clone());
    let req = epb::SubmitRatingRequest {
        invitation_id: id.clone(),
        level,
        scores,
        comment: comment.clone(),
        reason: if level <= 2 {
            comment.clone()
        } else {
            String::new()
        },
        channel: channel as i32,
        device: if pad.is_empty() {
            "qr".into()
        } else {
            format!("pad:{pad}")
        },
        ..Default::default()
    };
    let token_sys = app.system_token("rating");
    let done = match ev.submit_rating(app.request(req, &token_sys)).await {
        Ok(_) => "感谢您的评价!".to_string(),
        Err(s) if s.code() == tonic::Code::FailedPrecondition && s.message().contains("closed") => {
            "本次服务的评价期限已过".to_string()
        }
        Err(s) if s.code() == tonic::Code::FailedPrecondition => {
            "您已评价, 感谢您的反馈".to_string()
        }
        Err(s) if s.code() == tonic::Code::InvalidArgument => {
            return again("comment", "评价内容有误, 请检查后重试")
        }
        Err(_) => "评价服务暂时无法连接, 请稍后再试".to_string(),
    };
    if let Some((hall, window)) = pad.split_once('/') {
        return Redirect::to(&format!("/pads/{}/{}", hall, window)).into_response();
    }
    Html(page(
        "服务评价",
        "rate",
        &format!("<main class=\"rate\"><h1>{}</h1></main>", e(&done)),
        None,
    ))
    .into_response()
}

/// The one follow-up comment (追评) of a rated invitation.
pub async fn follow_up(
    State(app): State<App>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let field = |k: &str| form_field(&form, k);
    let (id, _) = match checked_post(&app, &token, &headers, &form) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let comment = field("comment");
    let done = match invitation(&app, &id).await {
        Ok(inv) if !inv.rating_id.is_empty() && !comment.is_empty() => {
            let mut ev = EvaluationServiceClient::new(app.evaluation.clone());
            let token = app.system_token("rating");
            let req = epb::AddFollowUpRequest {
                rating_id: inv.rating_id,
                comment,
            };
            match ev.add_follow_up(app.request(req, &token)).await {
                Ok(_) => "追评已提交, 感谢您的反馈",
                Err(s) if s.code() == tonic::Code::FailedPrecondition => "您已追评过",
                Err(_) => "评价服务暂时无法连接, 请稍后再试",
            }
        }
        Ok(_) => "请填写追评内容",
        Err(_) => "评价服务暂时无法连接, 请稍后再试",
    };
    Html(page(
        "服务评价",
        "rate",
        &format!("<main class=\"rate\"><h1>{}</h1></main>", e(done)),
        None,
    ))
    .into_response()
}
