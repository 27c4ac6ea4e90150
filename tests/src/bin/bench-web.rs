//! Web face benchmark (run by ./scripts/bench), release binaries against the real stack:
//! 500 browsers on one hall's calling screen (server-sent events) — the time from `CallNext`
//! returning to every client having the call; the desk's call through the web face with 50
//! windows calling at once (10 calls each after a warm-up one, the screens gone); a server-rendered page at a steady 200 requests/s. The web
//! process's peak RSS and CPU time are printed with them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use xiaoneng_e2e::proto::queue::v1 as pb;
use xiaoneng_e2e::proto::queue::v1::queue_service_client::QueueServiceClient;
use xiaoneng_e2e::{bin_dir, channel, free_port, shared_brokers, token, Figures, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One HTTP/1.1 request; (status, headers, body).
async fn http(addr: &str, method: &str, path: &str, cookie: &str, form: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let body = form.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !cookie.is_empty() {
        req.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    if form.is_some() {
        req.push_str(&format!("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn peak_rss_and_cpu(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (rss, ticks / 100.0)
}

/// A dev sign-in as the starter catalog's clerk `badge` (of 410702): the session cookie and
/// the desk's CSRF token.
async fn sign_in(web: &str, badge: &str, hall: &str, window: &str) -> (String, String) {
    let (_, head, _) = http(web, "POST", "/signin", "", Some(&format!("badge={badge}&next=%2Fdesk"))).await;
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let (_, _, body) = http(web, "GET", &format!("/desk?hall={hall}&window={window}"), &cookie, None).await;
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a CSRF token")
        .to_string();
    (cookie, csrf)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients: usize = env_or("BENCH_SSE_CLIENTS", 500);
    let windows: usize = env_or("BENCH_WEB_WINDOWS", 50);
    let calls: usize = env_or("BENCH_SSE_CALLS", 20);
    // Calls per window in each desk run (the first of each window is a warm-up, not counted).
    let rounds: usize = env_or("BENCH_DESK_ROUNDS", 10);
    let brokers = shared_brokers();
    let (catalog, matters) = xiaoneng_e2e::starter_catalog(&brokers, 1).await?;
    let matter = matters[0].clone();
    let q = ServiceProc::start_with(
        ServiceKind::Queue,
        &brokers,
        &[("XIAONENG__DOMAIN__CATALOG_ADDR", catalog.addr().as_str()), ("XIAONENG__DATABASE__MAX_CONNECTIONS", "40")],
    )
    .await;
    let eval = ServiceProc::start(ServiceKind::Evaluation, &brokers).await;
    let manager = token("manager", &[roles::HALL_MANAGER], "410702");
    let mut m = QueueServiceClient::new(channel(&q.addr(), Some(&manager)).await);
    let hall = m
        .create_hall(pb::CreateHallRequest {
            region_code: "410702".into(),
            name: "压测大厅".into(),
            categories: vec![pb::Category { code: "A".into(), name: "综合".into(), matter_ids: vec![] }],
            weekend_service: false,
        })
        .await?
        .into_inner()
        .hall
        .unwrap_or_default();
    let codes: Vec<String> = (1..=windows).map(|i| format!("ZH{i:02}")).collect();
    let ids = xiaoneng_e2e::open_windows(&mut m, &hall.id, &codes, |_| vec![], "w").await?;
    let kiosk = token("kiosk", &[roles::SYSTEM], "410702");
    let mut k = QueueServiceClient::new(channel(&q.addr(), Some(&kiosk)).await);
    let tickets = calls + windows * (3 * (rounds + 1) + 2);
    for _ in 0..tickets {
        k.issue_ticket(pb::IssueTicketRequest {
            hall_id: hall.id.clone(),
            matter_id: matter.clone(),
            priority: pb::Priority::Normal as i32,
            ..Default::default()
        })
        .await?;
    }

    let port = free_port();
    let web_addr = format!("127.0.0.1:{port}");
    let mut web = std::process::Command::new(bin_dir().join("xiaoneng-web"))
        .env("XIAONENG__DOMAIN__ADDR", &web_addr)
        .env("XIAONENG__DOMAIN__CATALOG_ADDR", catalog.addr())
        .env("XIAONENG__DOMAIN__QUEUE_ADDR", q.addr())
        .env("XIAONENG__DOMAIN__EVALUATION_ADDR", eval.addr())
        .env("XIAONENG__DOMAIN__DEV_SIGNIN", "true")
        .env("XIAONENG__TELEMETRY__LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let pid = web.id();
    while TcpStream::connect(&web_addr).await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 1. The screen: `clients` browsers; each call timed from CallNext's return until the
    //    last client has it.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let ready = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut screens = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (addr, path, tx, ready) =
            (web_addr.clone(), format!("/halls/{}/events", hall.id), seen_tx.clone(), ready.clone());
        screens.spawn(async move {
            let mut s = TcpStream::connect(&addr).await.expect("connect");
            let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
            s.write_all(req.as_bytes()).await.expect("send");
            let mut lines = BufReader::new(s).lines();
            let mut first = true;
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(data) = line.strip_prefix("data: ") {
                    if first {
                        first = false;
                        ready.wait().await;
                        continue;
                    }
                    if data.contains("\"kind\":\"called\"") {
                        let number = data.split("\"recent\":[{\"number\":\"").nth(1).and_then(|r| r.split('"').next());
                        let _ = tx.send((number.unwrap_or_default().to_string(), Instant::now()));
                    }
                }
            }
        });
    }
    ready.wait().await;
    let clerk = token("w0", &[roles::CLERK], "410702");
    let mut c = QueueServiceClient::new(channel(&q.addr(), Some(&clerk)).await);
    let mut fan = Figures { requests: 0, errors: 0, seconds: 0.0, micros: Vec::new() };
    let started = Instant::now();
    for _ in 0..calls {
        let t = c
            .call_next(pb::CallNextRequest { window_id: ids[0].clone() })
            .await?
            .into_inner()
            .ticket
            .unwrap_or_default();
        let returned = Instant::now();
        let mut got = 0;
        while got < clients {
            let Ok(Some((number, at))) = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv()).await else {
                fan.errors += clients - got;
                break;
            };
            if number == t.number {
                got += 1;
                fan.micros.push(at.saturating_duration_since(returned).as_micros() as u64);
            }
        }
        fan.requests += got;
        c.finish_service(pb::FinishServiceRequest { window_id: ids[0].clone() }).await.ok();
    }
    fan.seconds = started.elapsed().as_secs_f64();
    fan.print(&format!("screen: call → {clients} SSE clients"));
    // The 500 screens go: a hall has a few, and the desk's figures are the desk's.
    screens.abort_all();
    while screens.join_next().await.is_some() {}

    // 2. The desk through the web face, 50 windows at once: as fast as each can (saturated);
    //    paced, each window calling once a second, all in the same instant (a burst of 50);
    //    and paced as a hall works, the windows' seconds not in step (spread over the second).
    let runs = [
        ("saturated", Duration::ZERO, false),
        ("one call per window per second, in step", Duration::from_secs(1), false),
        ("one call per window per second, spread", Duration::from_secs(1), true),
    ];
    for (label, pace, spread) in runs {
        let mut tasks = tokio::task::JoinSet::new();
        let started = Instant::now();
        for (i, w) in ids.iter().enumerate() {
            let (addr, hall_id, w) = (web_addr.clone(), hall.id.clone(), w.clone());
            let offset = if spread { pace * i as u32 / ids.len() as u32 } else { Duration::ZERO };
            tasks.spawn(async move {
                let (cookie, csrf) = sign_in(&addr, "HQ-SCJ-002", &hall_id, &w).await;
                let mut micros = Vec::new();
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + offset, pace.max(Duration::from_millis(1)));
                for round in 0..=rounds {
                    tick.tick().await;
                    let form = format!("csrf={csrf}&hall={hall_id}&window={w}&action=call_next");
                    let t = Instant::now();
                    let (status, _, _) = http(&addr, "POST", "/desk/act", &cookie, Some(&form)).await;
                    if round > 0 {
                        micros.push((t.elapsed().as_micros() as u64, status == 303));
                    }
                    let form = format!("csrf={csrf}&hall={hall_id}&window={w}&action=finish");
                    http(&addr, "POST", "/desk/act", &cookie, Some(&form)).await;
                }
                micros
            });
        }
        let mut desk = Figures { requests: 0, errors: 0, seconds: 0.0, micros: Vec::new() };
        while let Some(r) = tasks.join_next().await {
            for (us, ok) in r? {
                desk.requests += 1;
                desk.errors += (!ok) as usize;
                desk.micros.push(us);
            }
        }
        desk.seconds = started.elapsed().as_secs_f64();
        desk.print(&format!("desk: {windows} windows, {label}"));
    }

    // 3. A server-rendered page at a steady 200 requests/s for 10 s.
    let mut page = Figures { requests: 0, errors: 0, seconds: 0.0, micros: Vec::new() };
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    for _ in 0..2000 {
        tick.tick().await;
        let (addr, path) = (web_addr.clone(), format!("/halls/{}/screen", hall.id));
        tasks.spawn(async move {
            let t = Instant::now();
            let (status, _, _) = http(&addr, "GET", &path, "", None).await;
            (t.elapsed().as_micros() as u64, status == 200)
        });
    }
    while let Some(r) = tasks.join_next().await {
        let (us, ok) = r?;
        page.requests += 1;
        page.errors += (!ok) as usize;
        page.micros.push(us);
    }
    page.seconds = started.elapsed().as_secs_f64();
    page.print("screen page at 200 req/s");
    let (rss, cpu) = peak_rss_and_cpu(pid);
    println!("web process: peak RSS {} MiB, CPU {cpu:.1} s over the run", rss / 1024);
    let _ = web.kill();
    Ok(())
}
