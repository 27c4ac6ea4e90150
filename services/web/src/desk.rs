//! The window desk (`/desk`): signed-in window staff, keyboard first. One form per action
//! group, each with the session's CSRF token; every action is one queue call made as the
//! signed-in person, so the queue service decides what they may do (an action their role may
//! not take is not offered). The queue allows one called ticket per window, so a double
//! press or a second browser on the same window never calls two.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use xiaoneng_kit::auth::roles;
use xiaoneng_proto::catalog::v1 as cpb;
use xiaoneng_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use xiaoneng_proto::queue::v1 as qpb;
use xiaoneng_proto::queue::v1::queue_service_client::QueueServiceClient;

use crate::html::{e, page};
use crate::pages::{said, session_of};
use crate::session::Session;
use crate::App;

#[derive(Deserialize, Default)]
pub struct DeskQuery {
    #[serde(default)]
    pub hall: String,
    #[serde(default)]
    pub window: String,
    #[serde(default)]
    pub ticket: String,
    #[serde(default)]
    pub msg: String,
}

/// A ticket's priority class as the desk shows it.
fn priority_name(p: i32) -> &'static str {
    match qpb::Priority::try_from(p) {
        Ok(qpb::Priority::Urgent) => "绿色通道",
        Ok(qpb::Priority::Appointment) => "预约",
        Ok(qpb::Priority::Elderly) => "老年人、残疾人优先",
        Ok(qpb::Priority::Normal) => "普通",
        _ => "—",
    }
}

/// A ticket's state as the desk shows it.
fn state_name(s: i32) -> &'static str {
    match qpb::TicketState::try_from(s) {
        Ok(qpb::TicketState::Waiting) => "等候中",
        Ok(qpb::TicketState::Called) => "已呼叫",
        Ok(qpb::TicketState::Serving) => "办理中",
        Ok(qpb::TicketState::Finished) => "已办结",
        Ok(qpb::TicketState::Held) => "暂缓",
        Ok(qpb::TicketState::Dropped) => "已过号",
        _ => "—",
    }
}

/// The roles that work a window.
fn works_a_window(s: &Session) -> bool {
    s.has_role(roles::CLERK) || s.has_role(roles::HALL_MANAGER)
}

fn person_token(app: &App, s: &Session) -> String {
    let roles: Vec<&str> = s.roles.iter().map(String::as_str).collect();
    app.minter
        .mint(&s.sub, &roles, &s.region, s.dept.as_deref(), 300)
}

pub async fn desk(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<DeskQuery>,
) -> Response {
    let Some(s) = session_of(&app, &headers) else {
        return Redirect::to("/signin?next=/desk").into_response();
    };
    let token = person_token(&app, &s);
    let mut queue = QueueServiceClient::new(app.queue.clone());
    let mut body = format!(
        "<main class=\"desk\"><header><h1>窗口工作台</h1><p>{} ({})</p>\
         <form method=\"post\" action=\"/signout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\">退出</button></form></header>",
        e(if s.name.is_empty() { &s.sub } else { &s.name }),
        e(&s.roles.iter().map(|r| crate::signin::role_name(r)).collect::<Vec<_>>().join("、")),
        e(&s.csrf),
    );
    if !q.msg.is_empty() {
        body.push_str(&format!(
            "<p class=\"msg\" role=\"alert\">{}</p>",
            e(&q.msg)
        ));
    }
    if q.hall.is_empty() {
        body.push_str(
            "<form method=\"get\" action=\"/desk\"><p><label for=\"hall\">大厅编号</label> \
             <input id=\"hall\" name=\"hall\" required></p><p><button type=\"submit\">进入大厅</button></p></form></main>",
        );
        return Html(page("窗口工作台", "desk", &body, None)).into_response();
    }
    let hall = match queue
        .get_hall(app.request(
            qpb::GetHallRequest {
                hall_id: q.hall.clone(),
            },
            &token,
        ))
        .await
    {
        Ok(h) => h.into_inner().hall.unwrap_or_default(),
        Err(st) => {
            body.push_str(&format!(
                "<p class=\"msg\" role=\"alert\">{}</p></main>",
                e(&said(&st))
            ));
            return Html(page("窗口工作台", "desk", &body, None)).into_response();
        }
    };
    body.push_str(&format!("<h2>{}</h2>", e(&hall.name)));
    let Some(w) = hall.windows.iter().find(|w| w.id == q.window) else {
        body.push_str("<nav aria-label=\"窗口\"><ul class=\"windows\">");
        for w in &hall.windows {
            body.push_str(&format!(
                "<li><a href=\"/desk?hall={}&amp;window={}\">{} 窗口</a></li>",
                e(&hall.id),
                e(&w.id),
                e(&w.code)
            ));
        }
        body.push_str("</ul></nav></main>");
        return Html(page("窗口工作台", "desk", &body, None)).into_response();
    };
    body.push_str(&format!("<p>当前窗口: <b>{}</b></p>", e(&w.code)));
    if !q.ticket.is_empty() {
        match queue
            .get_ticket(app.request(
                qpb::GetTicketRequest {
                    ticket_id: q.ticket.clone(),
                },
                &token,
            ))
            .await
        {
            Ok(t) => {
                let t = t.into_inner().ticket.unwrap_or_default();
                let waited = match (&t.arrival_time, &t.call_time) {
                    (Some(a), Some(c)) => format!("{} 分钟", (c.seconds - a.seconds).max(0) / 60),
                    _ => "—".into(),
                };
                body.push_str(&format!(
                    "<section class=\"ticket\" aria-labelledby=\"t-h\"><h3 id=\"t-h\">当前号 {}</h3><dl>\
                     <dt>类别</dt><dd>{}</dd><dt>事项</dt><dd>{}</dd><dt>优先</dt><dd>{}</dd>\
                     <dt>状态</dt><dd>{}</dd><dt>等候</dt><dd>{}</dd><dt>办件</dt><dd>{}</dd></dl></section>",
                    e(&t.number),
                    e(&t.category),
                    e(&t.matter_name),
                    priority_name(t.priority),
                    state_name(t.state),
                    e(&waited),
                    e(if t.case_id.is_empty() { "—" } else { &t.case_id }),
                ));
            }
            Err(st) => body.push_str(&format!(
                "<p class=\"msg\" role=\"alert\">{}</p>",
                e(&said(&st))
            )),
        }
    }
    if works_a_window(&s) {
        let matters = matter_choices(&app, &hall, &token).await;
        body.push_str(&actions(&s, &hall, w, &q.ticket, &matters));
    } else {
        body.push_str("<p>您的岗位不办理窗口业务。</p>");
    }
    body.push_str("</main>");
    Html(page("窗口工作台", "desk", &body, Some("desk.js"))).into_response()
}

/// The desk's forms: the actions on the window's ticket (with the transfer), and calling a
/// ticket by the number the citizen holds (a form of its own, so Enter in its field never
/// presses another button).
fn actions(
    s: &Session,
    hall: &qpb::Hall,
    w: &qpb::Window,
    ticket: &str,
    matters: &[(String, String)],
) -> String {
    let hidden = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"hall\" value=\"{}\">\
         <input type=\"hidden\" name=\"window\" value=\"{}\"><input type=\"hidden\" name=\"ticket\" value=\"{}\">",
        e(&s.csrf),
        e(&hall.id),
        e(&w.id),
        e(ticket)
    );
    let windows: String = hall
        .windows
        .iter()
        .filter(|o| o.id != w.id)
        .map(|o| {
            format!(
                "<option value=\"{}\">{} 窗口</option>",
                e(&o.id),
                e(&o.code)
            )
        })
        .collect();
    let matters: String = matters
        .iter()
        .map(|(id, name)| format!("<option value=\"{}\">{}</option>", e(id), e(name)))
        .collect();
    format!(
        "<form method=\"post\" action=\"/desk/act\" class=\"actions\" id=\"actions\">{hidden}\
         <button name=\"action\" value=\"call_next\" accesskey=\"n\">叫号 (N)</button>\
         <button name=\"action\" value=\"recall\" accesskey=\"r\">重呼 (R)</button>\
         <button name=\"action\" value=\"no_show\" accesskey=\"x\">过号 (X)</button>\
         <button name=\"action\" value=\"hold\" accesskey=\"h\">暂缓 (H)</button>\
         <button name=\"action\" value=\"resume\" accesskey=\"u\">恢复 (U)</button>\
         <button name=\"action\" value=\"start\" accesskey=\"s\">开始办理 (S)</button>\
         <button name=\"action\" value=\"finish\" accesskey=\"f\">办结 (F)</button>\
         <fieldset class=\"transfer\"><legend>转办</legend>\
         <p><label for=\"to\">转至窗口</label> <select id=\"to\" name=\"to_window\">\
         <option value=\"\">任一可办窗口</option>{windows}</select></p>\
         <p><label for=\"to-matter\">转至事项</label> <select id=\"to-matter\" name=\"to_matter\">\
         <option value=\"\">原事项</option>{matters}</select></p>\
         <button name=\"action\" value=\"transfer\">转办 (T)</button></fieldset></form>\
         <form method=\"post\" action=\"/desk/act\" class=\"call-number\" id=\"call-number\">{hidden}\
         <input type=\"hidden\" name=\"action\" value=\"call_number\">\
         <p><label for=\"number\">按号呼叫</label> <input id=\"number\" name=\"number\" required maxlength=\"16\" \
         autocomplete=\"off\" placeholder=\"如 A012\"> <button type=\"submit\">呼叫此号 (C)</button></p></form>"
    )
}

/// How long the desk's list of matters is kept before the catalog is asked again.
const MATTERS_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// The matters a ticket may be transferred to: the hall's categories' matters, or every
/// published matter of the hall's region when its categories list none; names from the
/// catalog, kept a few minutes. Empty when the catalog does not answer (the desk still works).
async fn matter_choices(app: &App, hall: &qpb::Hall, token: &str) -> Vec<(String, String)> {
    let cached = {
        let m = app.matters.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&hall.region_code)
            .filter(|(at, _)| at.elapsed() < MATTERS_FOR)
            .map(|(_, v)| v.clone())
    };
    let all = match cached {
        Some(v) => v,
        None => {
            let mut catalog = CatalogServiceClient::new(app.catalog.clone());
            let req = cpb::ListMattersRequest {
                region_code: hall.region_code.clone(),
                page_size: 500,
                ..Default::default()
            };
            let Ok(r) = catalog.list_matters(app.request(req, token)).await else {
                return vec![];
            };
            let v: Vec<(String, String)> = r
                .into_inner()
                .matters
                .into_iter()
                .map(|m| (m.matter_id, m.terms.map(|t| t.name).unwrap_or_default()))
                .collect();
            let v = std::sync::Arc::new(v);
            let mut m = app.matters.lock().unwrap_or_else(|e| e.into_inner());
            m.insert(
                hall.region_code.clone(),
                (std::time::Instant::now(), v.clone()),
            );
            v
        }
    };
    let listed: std::collections::HashSet<&str> = hall
        .categories
        .iter()
        .flat_map(|c| c.matter_ids.iter().map(String::as_str))
        .collect();
    all.iter()
        .filter(|(id, _)| listed.is_empty() || listed.contains(id.as_str()))
        .cloned()
        .collect()
}

#[derive(Deserialize)]
pub struct DeskAct {
    #[serde(default)]
    pub csrf: String,
    pub hall: String,
    pub window: String,
    #[serde(default)]
    pub ticket: String,
    pub action: String,
    /// For a transfer: the window to send it to (empty: any that may serve it).
    #[serde(default)]
    pub to_window: String,
    /// For a transfer: the matter it is for now (empty: the same).
    #[serde(default)]
    pub to_matter: String,
    /// For calling by number: the number the citizen holds.
    #[serde(default)]
    pub number: String,
}

pub async fn desk_act(
    State(app): State<App>,
    headers: HeaderMap,
    Form(f): Form<DeskAct>,
) -> Response {
    let Some(s) = session_of(&app, &headers) else {
        return (StatusCode::FORBIDDEN, "请先登录").into_response();
    };
    if f.csrf.is_empty() || f.csrf != s.csrf {
        return (StatusCode::FORBIDDEN, "表单已失效, 请刷新页面后重试").into_response();
    }
    if !works_a_window(&s) {
        return (StatusCode::FORBIDDEN, "您的岗位无权进行此操作").into_response();
    }
    let token = person_token(&app, &s);
    let mut q = QueueServiceClient::new(app.queue.clone());
    let w = f.window.clone();
    // One queue call per action, as the signed-in person; its ticket.
    macro_rules! queue {
        ($method:ident, $req:expr) => {
            q.$method(app.request($req, &token))
                .await
                .map(|x| x.into_inner().ticket)
        };
    }
    let ticket_id = f.ticket.clone();
    let to_window_id = f.to_window.clone();
    let number = f.number.trim().to_string();
    let result: Result<Option<qpb::Ticket>, tonic::Status> = match f.action.as_str() {
        "call_next" => queue!(call_next, qpb::CallNextRequest { window_id: w }),
        "call_number" if number.is_empty() => {
            return desk_said(&f, &f.ticket, "请输入要呼叫的号码");
        }
        "call_number" => queue!(
            call_ticket,
            qpb::CallTicketRequest {
                window_id: w,
                ticket_id: String::new(),
                number
            }
        ),
        "recall" => queue!(recall, qpb::RecallRequest { window_id: w }),
        "no_show" => queue!(mark_no_show, qpb::MarkNoShowRequest { window_id: w }),
        "hold" => queue!(hold_ticket, qpb::HoldTicketRequest { window_id: w }),
        "resume" => queue!(resume_ticket, qpb::ResumeTicketRequest { ticket_id }),
        "start" => queue!(start_service, qpb::StartServiceRequest { window_id: w }),
        "finish" => queue!(finish_service, qpb::FinishServiceRequest { window_id: w }),
        "transfer" => queue!(
            transfer_ticket,
            qpb::TransferTicketRequest {
                window_id: w,
                matter_id: f.to_matter.clone(),
                to_window_id
            }
        ),
        _ => return (StatusCode::BAD_REQUEST, "未知操作").into_response(),
    };
    let (ticket, msg) = match result {
        Ok(Some(t)) => {
            let msg = match f.action.as_str() {
                "call_next" | "call_number" | "recall" => {
                    format!("请 {} 号到 {} 窗口办理", t.number, t.window_code)
                }
                "finish" => format!("{} 号已办结", t.number),
                "transfer" => format!("{} 号已转办", t.number),
                _ => format!("{} 号: 已完成", t.number),
            };
            let keep = if f.action == "finish" || f.action == "transfer" {
                String::new()
            } else {
                t.id.clone()
            };
            (keep, msg)
        }
        Ok(None) => (String::new(), "当前没有可呼叫的号".to_string()),
        Err(st) => (f.ticket.clone(), said(&st)),
    };
    desk_said(&f, &ticket, &msg)
}

/// Back to the desk of the window acted on, keeping `ticket` and saying `msg`.
fn desk_said(f: &DeskAct, ticket: &str, msg: &str) -> Response {
    let to = format!(
        "/desk?{}",
        serde_urlencoded::to_string([
            ("hall", f.hall.as_str()),
            ("window", f.window.as_str()),
            ("ticket", ticket),
            ("msg", msg)
        ])
        .unwrap_or_default()
    );
    Redirect::to(&to).into_response()
}
