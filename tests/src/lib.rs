//! The end-to-end harness: real service binaries as child processes, a private tansu broker
//! when a test needs to stop and restart one, fresh databases, tokens and clients.
//! Used by the tests in `tests/` and by the demo that `./scripts/up` runs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use xiaoneng_kit::auth::TokenMinter;
use xiaoneng_kit::config::{NoDomain, Settings};
use xiaoneng_kit::telemetry::ClientInterceptor;
use xiaoneng_kit::ServiceKind;

pub use xiaoneng_proto as proto;

pub type Intercepted = tonic::service::interceptor::InterceptedService<Channel, ClientInterceptor>;

/// Where the built binaries are: `XIAONENG_BIN_DIR`, else beside the running test.
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("XIAONENG_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    if dir.ends_with("deps") {
        dir.parent().expect("target dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

fn binary(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} is not built; run ./scripts/test (it builds every binary first)", p.display());
    p
}

/// A free loopback port (bound and released; the OS does not hand it out again at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200)).is_ok()
}

/// The brokers shared tests use: `XIAONENG_TEST_BROKERS` (set by ./scripts/test) or 127.0.0.1:9092.
pub fn shared_brokers() -> String {
    std::env::var("XIAONENG_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A private tansu broker with durable sqlite storage, for tests that stop and restart it.
pub struct Broker {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Broker {
    pub fn start() -> Self {
        let mut b = Broker { port: free_port(), dir: tempfile::tempdir().expect("tempdir"), child: None };
        b.restart();
        b
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and storage.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let tansu = which("tansu");
        let log = std::fs::File::create(self.dir.path().join("broker.log")).expect("log");
        let child = Command::new(tansu)
            .current_dir(self.dir.path())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !port_open(self.port) {
            assert!(Instant::now() < deadline, "tansu did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it hard, as a crash or an outage would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn which(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let home = std::env::var("HOME").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from(format!("{home}/.cargo/bin"))])
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} not found; ./scripts/test installs it"))
}

/// One service binary running as a child process with its own database.
pub struct ServiceProc {
    pub kind: ServiceKind,
    pub port: u16,
    pub database: String,
    env: HashMap<String, String>,
    child: Option<Child>,
    log: PathBuf,
}

impl ServiceProc {
    /// Starts `kind` on a free port with a fresh database, using `brokers`.
    pub async fn start(kind: ServiceKind, brokers: &str) -> Self {
        Self::start_with(kind, brokers, &[]).await
    }

    pub async fn start_with(kind: ServiceKind, brokers: &str, extra: &[(&str, &str)]) -> Self {
        let mut me = Self::configure(kind, brokers, extra);
        me.spawn();
        me.wait_serving().await;
        me
    }

    /// A service configured and not started: [`ServiceProc::start_detached`] or
    /// [`ServiceProc::restart`] starts it.
    pub fn configure(kind: ServiceKind, brokers: &str, extra: &[(&str, &str)]) -> Self {
        let port = free_port();
        let database = format!("xn_test_{}_{}", kind.name(), &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut env: HashMap<String, String> = [
            ("XIAONENG__SERVICE__GRPC_ADDR", format!("127.0.0.1:{port}")),
            ("XIAONENG__SERVICE__METRICS_ADDR", format!("127.0.0.1:{}", free_port())),
            ("XIAONENG__SERVICE__SHUTDOWN_GRACE_SECS", "3".into()),
            ("XIAONENG__DATABASE__NAME", database.clone()),
            ("XIAONENG__KAFKA__BROKERS", brokers.to_string()),
            ("XIAONENG__KAFKA__MESSAGE_TIMEOUT_MS", "5000".into()),
            ("XIAONENG__CONSUMER__GROUP_ID", format!("{database}-group")),
            ("XIAONENG__TELEMETRY__LOG_LEVEL", "info,librdkafka=off,rdkafka=off".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if kind == ServiceKind::Complaint {
            // Its Open311 HTTP endpoint: a free port too, so tests run side by side.
            env.insert("XIAONENG__DOMAIN__OPEN311__ADDR".into(), format!("127.0.0.1:{}", free_port()));
            // Targets are checked only against the services a test starts (and names).
            for k in ["CATALOG_ADDR", "CASE_ADDR", "QUEUE_ADDR"] {
                env.insert(format!("XIAONENG__DOMAIN__{k}"), String::new());
            }
        }
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let log = std::env::temp_dir().join(format!("{database}.log"));
        ServiceProc { kind, port, database, env, child: None, log }
    }

    /// Another replica of this service, started: the same settings, database and consumer
    /// group, on ports of its own.
    pub async fn replica(&self) -> ServiceProc {
        let brokers = self.env.get("XIAONENG__KAFKA__BROKERS").cloned().unwrap_or_default();
        let mut r = ServiceProc::configure(self.kind, &brokers, &[]);
        let own =
            ["XIAONENG__SERVICE__GRPC_ADDR", "XIAONENG__SERVICE__METRICS_ADDR", "XIAONENG__DOMAIN__OPEN311__ADDR"];
        for (k, v) in &self.env {
            if !own.contains(&k.as_str()) {
                r.env.insert(k.clone(), v.clone());
            }
        }
        r.database = self.database.clone();
        r.spawn();
        r.wait_serving().await;
        r
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log");
        let child = Command::new(binary(&format!("xiaoneng-{}", self.kind.name())))
            .envs(&self.env)
            .env_remove("XIAONENG_CONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start service");
        self.child = Some(child);
    }

    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Peak resident memory of the process (VmHWM), in KiB, where /proc tells it.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
    }

    /// The last lines of the service's log, for failure messages.
    /// The sum of a Prometheus series' samples (every label set) on the service's metrics
    /// endpoint; 0 when the series has no sample yet. `name` may carry a label filter, e.g.
    /// `background_passes_total{loop="queue_tidal"}`.
    pub async fn metric(&self, name: &str) -> f64 {
        let addr = &self.env["XIAONENG__SERVICE__METRICS_ADDR"];
        let body = http_get(addr, "/metrics").await;
        let (base, filter) = match name.split_once('{') {
            Some((b, f)) => (b, Some(f.trim_end_matches('}'))),
            None => (name, None),
        };
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(series, _)| {
                let (n, labels) = series.split_once('{').unwrap_or((series, ""));
                n == base && filter.is_none_or(|f| labels.contains(f))
            })
            .filter_map(|(_, v)| v.parse::<f64>().ok())
            .sum()
    }

    /// The whole log of the service (every start).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of a setting the process was started with.
    pub fn env_of(&self, key: &str) -> Option<String> {
        self.env.get(key).cloned()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub async fn wait_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{} exited with {status}:\n{}", self.kind.name(), self.log_tail());
            }
            if health(&self.addr(), self.kind.grpc_service()).await.as_deref() == Ok("Serving") {
                return;
            }
            assert!(Instant::now() < deadline, "{} not serving:\n{}", self.kind.name(), self.log_tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no graceful anything, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the process again without waiting for it to serve: for a start that is meant
    /// to die at a crash point.
    pub fn start_detached(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }

    /// Waits (at most `secs`) for the process to end by itself, e.g. at a crash point.
    pub async fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {secs}s:\n{}",
                self.kind.name(),
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM and wait: the graceful path.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        c.wait().expect("wait")
    }

    /// Changes an environment variable for the next [`ServiceProc::restart`].
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.insert(key.to_string(), value.to_string());
    }

    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
        self.wait_serving().await;
    }

    /// A pool on the service's own database, to check what it stored.
    pub async fn db(&self) -> sqlx::PgPool {
        let s = settings();
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&format!("{}/{}", s.database.url, self.database))
            .await
            .expect("connect to service database")
    }
}

impl Drop for ServiceProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The development settings (signing key, database server) the services default to.
pub fn settings() -> Settings<NoDomain> {
    Settings::defaults(ServiceKind::Catalog)
}

/// A catalog service on `brokers` with the starter catalog of 红旗区 (410702) loaded; the ids
/// of its first `n` matters.
pub async fn starter_catalog(brokers: &str, n: i32) -> anyhow::Result<(ServiceProc, Vec<String>)> {
    use crate::proto::catalog::v1 as cpb;
    use crate::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
    let catalog = ServiceProc::start(ServiceKind::Catalog, brokers).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root");
    let out = Command::new(bin_dir().join("xiaoneng-catalog-load"))
        .arg("--file")
        .arg(root.join("services/catalog/data/starter/410702.toml"))
        .env("XIAONENG__DATABASE__NAME", &catalog.database)
        .output()?;
    anyhow::ensure!(out.status.success(), "loader: {}", String::from_utf8_lossy(&out.stderr));
    let matters = CatalogServiceClient::new(channel(&catalog.addr(), None).await)
        .list_matters(cpb::ListMattersRequest { region_code: "410702".into(), page_size: n, ..Default::default() })
        .await?
        .into_inner()
        .matters
        .into_iter()
        .map(|m| m.matter_id)
        .collect();
    Ok((catalog, matters))
}

/// Opens a comprehensive window (a department window when `matters` names any) for each of
/// `codes` in `hall`, staffed by `<staff_prefix><i>`; their ids.
pub async fn open_windows(
    m: &mut crate::proto::queue::v1::queue_service_client::QueueServiceClient<Intercepted>,
    hall: &str,
    codes: &[String],
    matters: impl Fn(usize) -> Vec<String>,
    staff_prefix: &str,
) -> anyhow::Result<Vec<String>> {
    use crate::proto::queue::v1 as pb;
    let mut ids = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let matter_ids = matters(i);
        let kind = if matter_ids.is_empty() { pb::WindowKind::Comprehensive } else { pb::WindowKind::Department };
        let w = m
            .upsert_window(pb::UpsertWindowRequest {
                window: Some(pb::Window {
                    hall_id: hall.to_string(),
                    code: code.clone(),
                    kind: kind as i32,
                    matter_ids,
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .window
            .unwrap_or_default();
        m.set_window_state(pb::SetWindowStateRequest {
            window_id: w.id.clone(),
            state: pb::WindowState::Open as i32,
            staff_id: format!("{staff_prefix}{i}"),
        })
        .await?;
        ids.push(w.id);
    }
    Ok(ids)
}

/// A token signed with the development key.
pub fn token(sub: &str, roles: &[&str], region: &str) -> String {
    TokenMinter::new(&settings().auth).mint(sub, roles, region, None, 3600)
}

/// A token of a staff member of department `dept`, signed with the development key.
pub fn token_in(sub: &str, roles: &[&str], region: &str, dept: &str) -> String {
    TokenMinter::new(&settings().auth).mint(sub, roles, region, Some(dept), 3600)
}

/// A channel to `addr` whose calls carry `token` (if any) and the trace context.
pub async fn channel(addr: &str, token: Option<&str>) -> Intercepted {
    let ch = Channel::from_shared(addr.to_string()).expect("uri").connect().await.expect("connect");
    tonic::service::interceptor::InterceptedService::new(ch, ClientInterceptor::new(token))
}

/// Health status of `service` at `addr` (`Serving`, `NotServing`, …) or the error.
pub async fn health(addr: &str, service: &str) -> Result<String, String> {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let ch = Channel::from_shared(addr.to_string()).map_err(|e| e.to_string())?;
    let ch = ch.connect_timeout(Duration::from_secs(1)).connect().await.map_err(|e| e.to_string())?;
    let r = HealthClient::new(ch)
        .check(HealthCheckRequest { service: service.to_string() })
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("{:?}", r.into_inner().status()))
}

/// Polls `f` until it returns `Some`, or panics with `what` after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Latency figures of one benchmark phase.
pub struct Figures {
    pub requests: usize,
    pub errors: usize,
    pub seconds: f64,
    pub micros: Vec<u64>,
}

impl Figures {
    pub fn print(&mut self, name: &str) {
        self.micros.sort_unstable();
        let pct = |p: f64| {
            if self.micros.is_empty() {
                0.0
            } else {
                self.micros[((self.micros.len() - 1) as f64 * p) as usize] as f64 / 1000.0
            }
        };
        println!(
            "{name:<34} {:>8} req {:>6} err {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            self.requests,
            self.errors,
            self.requests as f64 / self.seconds,
            pct(0.50),
            pct(0.99),
            pct(1.0)
        );
    }
}

/// Runs `op` from `concurrency` tasks for `seconds`, timing each call.
pub async fn load_phase<F, Fut>(concurrency: usize, seconds: u64, op: F) -> Figures
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let op = op.clone();
        tasks.spawn(async move {
            let mut micros = Vec::new();
            let mut errors = 0;
            let mut i = 0u64;
            while Instant::now() < until {
                let t = Instant::now();
                if !op(worker, i).await {
                    errors += 1;
                }
                micros.push(t.elapsed().as_micros() as u64);
                i += 1;
            }
            (micros, errors)
        });
    }
    let mut all = Figures { requests: 0, errors: 0, seconds: 0.0, micros: Vec::new() };
    while let Some(r) = tasks.join_next().await {
        let (m, e) = r.expect("bench task");
        all.requests += m.len();
        all.errors += e;
        all.micros.extend(m);
    }
    all.seconds = start.elapsed().as_secs_f64();
    all
}

/// A plain HTTP/1.1 GET on loopback (the metrics endpoint); the whole response, headers included.
pub async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect metrics");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("response");
    out
}

/// A plain HTTP/1.1 request on loopback: (status, body). `form` is sent form-encoded.
pub async fn http_request(addr: &str, method: &str, path: &str, form: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = form.unwrap_or("");
    let head = if form.is_some() {
        format!("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n", body.len())
    } else {
        String::new()
    };
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{head}\r\n{body}");
    s.write_all(req.as_bytes()).await.expect("request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("response");
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if headers.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Every record of `topic` from the beginning (payload, then each header's key and value), once
/// at least `at_least` arrived (60 s at most).
pub async fn read_topic(brokers: &str, topic: &str, at_least: usize) -> Vec<Vec<u8>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    use rdkafka::{Message, Offset, TopicPartitionList};
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let timeout = Duration::from_secs(10);
        let meta = c.fetch_metadata(Some(&topic), timeout).expect("metadata");
        let mut tpl = TopicPartitionList::new();
        for p in meta.topics().iter().flat_map(|t| t.partitions()) {
            tpl.add_partition_offset(&topic, p.id(), Offset::Beginning).expect("partition");
        }
        c.assign(&tpl).expect("assign");
        let (mut out, deadline) = (Vec::new(), Instant::now() + Duration::from_secs(60));
        while out.len() < at_least && Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                let mut bytes = m.payload().unwrap_or_default().to_vec();
                if let Some(h) = m.headers() {
                    for x in h.iter() {
                        bytes.extend_from_slice(x.key.as_bytes());
                        bytes.extend_from_slice(x.value.unwrap_or_default());
                    }
                }
                out.push(bytes);
            }
        }
        out
    })
    .await
    .expect("reader")
}
