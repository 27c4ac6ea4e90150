//! The hall in a real browser: the catalog, queue and evaluation services and the web face
//! (`xiaoneng-web`) on a broker of their own, and `tests/browser/hall.py` driving Debian's
//! Chromium through Playwright — the calling screen, the desk by keyboard, the pad, the QR
//! rating page on a phone, axe-core on every page; the queue service and the web face each
//! restarted under the open screen. Then the evaluation service holds exactly the one 差评
//! the phone gave, with its loop opened.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use xiaoneng_e2e::proto::queue::v1 as qpb;
use xiaoneng_e2e::{bin_dir, eventually, free_port, http_get, Broker, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

/// The web face on `port`, talking to the given services, with the development sign-in and
/// `extra` settings.
fn spawn_web(port: u16, services: [&ServiceProc; 3], extra: &[(&str, String)]) -> Child {
    let [catalog, queue, eval] = services;
    let log = std::env::temp_dir().join(format!("xn-web-{port}.log"));
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log");
    Command::new(bin_dir().join("xiaoneng-web"))
        .env("XIAONENG__DOMAIN__ADDR", format!("127.0.0.1:{port}"))
        .env("XIAONENG__DOMAIN__PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("XIAONENG__DOMAIN__CATALOG_ADDR", catalog.addr())
        .env("XIAONENG__DOMAIN__QUEUE_ADDR", queue.addr())
        .env("XIAONENG__DOMAIN__EVALUATION_ADDR", eval.addr())
        .env("XIAONENG__DOMAIN__DEV_SIGNIN", "true")
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("XIAONENG_CONFIG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start xiaoneng-web")
}

async fn web_ready(port: u16) {
    eventually(30, "the web face serving", || async move { xiaoneng_e2e::port_open(port).then_some(()) }).await;
    assert!(http_get(&format!("127.0.0.1:{port}"), "/healthz").await.ends_with("ok"));
}

pub(crate) fn axe() -> std::path::PathBuf {
    let cache = std::env::var("XIAONENG_CACHE").map(std::path::PathBuf::from).unwrap_or_else(|_| {
        std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/xiaoneng")
    });
    cache.join("npm/node_modules/axe-core/axe.min.js")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_is_seen_and_heard_and_the_citizen_rates_from_the_pad_and_the_phone() {
    use crate::queue::{category, client, hall, issue, load_starter_into, open, window};
    let broker = Broker::start();
    let b = broker.brokers();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &b).await;
    let matters = load_starter_into(&catalog).await;
    let mut queue =
        ServiceProc::start_with(ServiceKind::Queue, &b, &[("XIAONENG__DOMAIN__CATALOG_ADDR", &catalog.addr())]).await;
    let eval = ServiceProc::start(ServiceKind::Evaluation, &b).await;
    let mut m = client(&queue, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "浏览器大厅", vec![category("A", &[])]).await;
    let w = window(&mut m, &h.id, "ZH01", qpb::WindowKind::Comprehensive, &[], false).await;
    open(&mut m, &w, "s1").await;
    let w2 = window(&mut m, &h.id, "ZH02", qpb::WindowKind::Comprehensive, &[], false).await;
    open(&mut m, &w2, "s2").await;
    let mut kiosk = client(&queue, "kiosk", &[roles::SYSTEM]).await;
    let mut numbers = Vec::new();
    for _ in 0..5 {
        numbers.push(issue(&mut kiosk, &h.id, &matters[0], qpb::Priority::Normal).await.number);
    }
    let port = free_port();
    let pad = [("XIAONENG__DOMAIN__PAD_TIMEOUT_SECONDS", "25".to_string())];
    let mut web = spawn_web(port, [&catalog, &queue, &eval], &pad);
    web_ready(port).await;

    let python = std::env::var("XIAONENG_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/hall.py");
    let mut py = Command::new(python)
        .arg(script)
        .args([
            format!("http://127.0.0.1:{port}"),
            h.id.clone(),
            w.id.clone(),
            axe().display().to_string(),
            w2.id.clone(),
            numbers[2].clone(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python with playwright");
    let mut to_py = py.stdin.take().expect("stdin");
    let from_py = BufReader::new(py.stdout.take().expect("stdout"));
    let mut out = Vec::new();
    for line in from_py.lines() {
        let line = line.expect("a line from the browser test");
        match line.strip_prefix("restart ") {
            Some("queue") => {
                queue.kill();
                queue.restart().await;
            }
            Some("web") => {
                let _ = web.kill();
                let _ = web.wait();
                web = spawn_web(port, [&catalog, &queue, &eval], &pad);
                web_ready(port).await;
            }
            Some(other) => panic!("the browser test asked to restart {other}"),
            None => {
                out.push(line);
                continue;
            }
        }
        writeln!(to_py, "ok").expect("answer the browser test");
    }
    let status = py.wait().expect("python");
    let _ = web.kill();
    assert!(status.success(), "the browser test failed:\n{}", out.join("\n"));
    let last: serde_json::Value = serde_json::from_str(out.last().expect("a result line")).expect("json");
    let token = last["rated"].as_str().expect("the rating token");
    assert!(!token.is_empty());
    let rows: Vec<(i32, Option<String>)> =
        sqlx::query_as("SELECT level, loop_state FROM ratings").fetch_all(&eval.db().await).await.unwrap();
    assert_eq!(rows.len(), 1, "one rating, however often the phone came back: {rows:?}");
    assert_eq!(rows[0].0, 2, "不满意");
    assert!(rows[0].1.is_some(), "its 差评 loop opened");
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets WHERE state = 'waiting'")
        .fetch_one(&queue.db().await)
        .await
        .unwrap();
    assert_eq!(waiting, 1, "the double click called one ticket: the fifth still waits");
}

/// A real OpenID Provider (npm's oidc-provider, `tests/browser/op.mjs`) on `port` for the web
/// face on `web_port`, once it serves; `mode` "wrong-audience" makes it issue ID tokens for
/// another client.
fn spawn_provider(port: u16, web_port: u16, mode: &str) -> Child {
    let op = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/op.mjs");
    let npm = axe().parent().and_then(|p| p.parent()).expect("node_modules").to_path_buf();
    let log = std::fs::File::create(std::env::temp_dir().join(format!("xn-op-{port}.log"))).expect("log");
    let mut child = Command::new("node")
        .arg(op)
        .args([port.to_string(), "xiaoneng-web".into(), OP_SECRET.into()])
        .arg(format!("http://127.0.0.1:{web_port}/signin/callback"))
        .arg(mode)
        .env("OIDC_PROVIDER_DIR", npm)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("node with oidc-provider");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut ready = String::new();
    out.read_line(&mut ready).expect("ready");
    assert_eq!(ready.trim(), "ready", "the OpenID Provider did not start");
    // The provider logs to stdout too: kept open, or its next line kills it (EPIPE).
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    child
}

const OP_SECRET: &str = "a-client-secret-of-the-web-face-0123456789";

/// Staff sign in at a real OpenID Provider (authorization code with PKCE) and get the roles
/// their staff record in the catalog gives; a replayed callback, a person the catalog does
/// not know, and an ID token for another audience are refused (`tests/browser/signin.py`).
#[tokio::test(flavor = "multi_thread")]
async fn staff_sign_in_by_openid_connect_and_a_token_for_another_audience_is_refused() {
    let broker = Broker::start();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    crate::queue::load_starter_into(&catalog).await;
    let secret = std::env::temp_dir().join(format!("xn-op-secret-{}", std::process::id()));
    std::fs::write(&secret, OP_SECRET).expect("secret file");
    let (web_port, bad_port) = (free_port(), free_port());
    let mut ops = Vec::new();
    let mut webs = Vec::new();
    for (port, mode) in [(web_port, "right"), (bad_port, "wrong-audience")] {
        let op_port = free_port();
        ops.push(spawn_provider(op_port, port, mode));
        let oidc = [
            ("XIAONENG__DOMAIN__OIDC_ISSUER", format!("http://127.0.0.1:{op_port}")),
            ("XIAONENG__DOMAIN__OIDC_CLIENT_ID", "xiaoneng-web".into()),
            ("XIAONENG__DOMAIN__OIDC_CLIENT_SECRET_FILE", secret.display().to_string()),
        ];
        // The sign-in needs the catalog only: the queue and evaluation addresses are unused.
        webs.push(spawn_web(port, [&catalog, &catalog, &catalog], &oidc));
        web_ready(port).await;
    }
    let python = std::env::var("XIAONENG_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/signin.py");
    let out = Command::new(python)
        .arg(script)
        .arg(format!("http://127.0.0.1:{web_port}"))
        .arg(format!("http://127.0.0.1:{bad_port}"))
        .arg(axe())
        .stderr(Stdio::inherit())
        .output()
        .expect("python with playwright");
    for mut c in ops.into_iter().chain(webs) {
        let _ = c.kill();
        let _ = c.wait();
    }
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the sign-in test failed:\n{said}");
    assert!(said.contains("signed in and refused as expected"), "{said}");
}
