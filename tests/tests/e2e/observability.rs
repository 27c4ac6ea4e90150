//! What the dashboards and alerts read, from the real services' /metrics: every service's
//! domain gauge queries run against its real schema; the queue's gauges count what waits in a
//! hall; requests are counted per method with latency buckets; the outbox backlog and relay lag,
//! and the consumers' lag, are exported.

use xiaoneng_e2e::proto::queue::v1 as qpb;
use xiaoneng_e2e::{eventually, http_get, shared_brokers, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

/// Each of the six services passes its gauge loop without an error (its SQL runs on its own
/// migrated database).
#[tokio::test(flavor = "multi_thread")]
async fn every_service_reads_its_gauges_from_its_own_schema() {
    let brokers = shared_brokers();
    let mut procs = Vec::new();
    for kind in ServiceKind::ALL {
        procs.push(ServiceProc::start(kind, &brokers).await);
    }
    for p in &procs {
        let passes = "background_passes_total{loop=\"gauges\"}";
        eventually(30, &format!("{:?}: a gauge pass", p.kind), || async {
            (p.metric(passes).await >= 1.0).then_some(())
        })
        .await;
        assert!(!p.log_text().contains("domain gauges not read"), "{:?}:\n{}", p.kind, p.log_tail());
    }
}

/// Two tickets waiting in a hall with one open window: the waiting count, the longest wait and
/// the estimate (two ahead over one window × 300 s before any service finished) per hall and
/// category; the calls counted by method with their latency buckets; the relay's backlog and lag.
#[tokio::test(flavor = "multi_thread")]
async fn the_queue_reports_what_waits_in_each_hall() {
    use crate::queue::{category, client, hall, issue, load_starter_into, open, window};
    // A broker of its own: the relay's figures do not wait on a broker busy with other tests.
    let broker = xiaoneng_e2e::Broker::start();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    let matters = load_starter_into(&catalog).await;
    let addr = catalog.addr();
    let queue =
        ServiceProc::start_with(ServiceKind::Queue, &broker.brokers(), &[("XIAONENG__DOMAIN__CATALOG_ADDR", &addr)])
            .await;
    let mut m = client(&queue, "manager", &[roles::HALL_MANAGER]).await;
    let name = format!("指标大厅-{}", uuid::Uuid::new_v4().simple());
    let h = hall(&mut m, &name, vec![category("A", &[])]).await;
    let w = window(&mut m, &h.id, "ZH01", qpb::WindowKind::Comprehensive, &[], false).await;
    open(&mut m, &w, "s1").await;
    let mut kiosk = client(&queue, "kiosk", &[roles::SYSTEM]).await;
    let first_issued = std::time::Instant::now();
    for _ in 0..2 {
        issue(&mut kiosk, &h.id, &matters[0], qpb::Priority::Normal).await;
    }
    let series = |metric: &str| format!("{metric}{{region=\"410702\",hall=\"{name}\",category=\"A\"}}");
    let waiting = series("queue_waiting_tickets");
    eventually(40, "two tickets waiting in the gauge", || async {
        (queue.metric(&waiting).await == 2.0).then_some(())
    })
    .await;
    assert_eq!(queue.metric(&series("queue_estimated_wait_seconds")).await, 600.0);
    // The longest wait grows with the first ticket's wait: at least a second once a second
    // has passed, never more than the time since it was issued (an absent series reads 0).
    let longest = series("queue_longest_wait_seconds");
    let waited = eventually(30, "the longest wait past a second", || async {
        let v = queue.metric(&longest).await;
        (v >= 1.0).then_some(v)
    })
    .await;
    assert!(waited <= first_issued.elapsed().as_secs_f64() + 1.0, "{waited} s");

    let body = http_get(&queue.env_of("XIAONENG__SERVICE__METRICS_ADDR").unwrap(), "/metrics").await;
    let issue_method = "method=\"/xiaoneng.queue.v1.QueueService/IssueTicket\"";
    assert!(
        body.lines().any(|l| l.starts_with("grpc_server_request_duration_seconds_bucket") && l.contains(issue_method)),
        "latency buckets per method"
    );
    assert!(queue.metric(&format!("grpc_server_requests_total{{{issue_method}")).await >= 2.0);
    eventually(30, "the relay published everything", || async {
        (queue.metric("outbox_backlog").await == 0.0 && queue.metric("outbox_relay_lag_seconds_count").await >= 2.0)
            .then_some(())
    })
    .await;
}

/// The metric names of the README's table (its first column's backticked names).
fn readme_metrics() -> Vec<String> {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let table = readme.split("| metric | what |").nth(1).expect("the README's metrics table");
    let mut names = Vec::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let first = row.split('|').nth(1).unwrap_or_default();
        for (i, part) in first.split('`').enumerate() {
            if i % 2 == 1 && !part.starts_with('{') {
                names.push(part.split('{').next().unwrap().to_string());
            }
        }
    }
    names
}

/// The metric names a service's /metrics has (histograms by their base name).
fn names_in(body: &str) -> std::collections::BTreeSet<String> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| ["_bucket", "_count", "_sum"].iter().fold(n.to_string(), |n, s| n.trim_end_matches(s).to_string()))
        .collect()
}

/// Before any traffic, every series the README's table, the dashboards and the alerts name is
/// on some service's /metrics (counters at 0, gauges at their value: an alert on an overdue
/// 差评 loop reads 0, not "no data"); and the listener serves metrics on `/metrics` only.
#[tokio::test(flavor = "multi_thread")]
async fn every_named_metric_exists_from_the_start_and_only_on_its_path() {
    let brokers = shared_brokers();
    let mut procs = Vec::new();
    for kind in ServiceKind::ALL {
        procs.push(ServiceProc::start(kind, &brokers).await);
    }
    let mut wanted: std::collections::BTreeSet<String> = readme_metrics().into_iter().collect();
    assert!(wanted.len() > 30, "{wanted:?}");
    for (_, e) in crate::chart::dashboard_and_alert_exprs() {
        wanted.extend(crate::chart::metrics_in(&e));
    }
    wanted.remove("up"); // Prometheus's own, per target
    let mut exported = std::collections::BTreeSet::new();
    for p in &procs {
        let passes = "background_passes_total{loop=\"gauges\"}";
        eventually(30, &format!("{:?}: a gauge pass", p.kind), || async {
            (p.metric(passes).await >= 1.0).then_some(())
        })
        .await;
        let addr = p.env_of("XIAONENG__SERVICE__METRICS_ADDR").unwrap();
        let body = http_get(&addr, "/metrics").await;
        assert!(body.starts_with("HTTP/1.1 200"), "{}", &body[..body.len().min(200)]);
        exported.extend(names_in(body.split("\r\n\r\n").nth(1).unwrap_or_default()));
        for other in ["/", "/favicon.ico", "/metricsx", "/healthz"] {
            let resp = http_get(&addr, other).await;
            assert!(resp.starts_with("HTTP/1.1 404"), "{:?} {other}: {}", p.kind, &resp[..resp.len().min(200)]);
        }
    }
    let missing: Vec<&String> = wanted.iter().filter(|m| !exported.contains(*m)).collect();
    assert!(missing.is_empty(), "named but absent before any traffic: {missing:?}");
}

/// One span as the OTLP receiver (`tests/otlp/receiver.py`) wrote it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

/// OTLP span kinds.
const SERVER: i32 = 2;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

/// A `SubmitCase` carrying a `traceparent` is one trace to a real OTLP receiver (the protocol's
/// own service from PyPI's opentelemetry-proto): the case service's server span continues the
/// caller's, the catalog's `GetMatter` span is its child (the case service's client carries the
/// context), the relay publishes the case's event inside a producer span of the case service,
/// and the accountability consumer that applied it continues the producer's span; a call that
/// fails leaves a log line naming its trace id.
#[tokio::test(flavor = "multi_thread")]
async fn a_submitted_case_is_one_trace_through_the_catalog_the_relay_and_a_consumer() {
    use std::io::BufRead;
    use xiaoneng_e2e::proto::case::v1 as cpb;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let port = xiaoneng_e2e::free_port();
    let file = std::env::temp_dir().join(format!("xn-spans-{}.jsonl", uuid::Uuid::new_v4().simple()));
    let python = std::env::var("XIAONENG_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut receiver = std::process::Command::new(python)
        .arg(root.join("tests/otlp/receiver.py"))
        .arg(port.to_string())
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the OTLP receiver");
    let mut ready = String::new();
    std::io::BufReader::new(receiver.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
        }
    }
    let _receiver = Kill(receiver);

    let broker = xiaoneng_e2e::Broker::start();
    let otlp = format!("http://127.0.0.1:{port}");
    let exported = ("XIAONENG__TELEMETRY__OTLP_ENDPOINT", otlp.as_str());
    let catalog = ServiceProc::start_with(ServiceKind::Catalog, &broker.brokers(), &[exported]).await;
    let matter = crate::case::matter(&catalog).await;
    let catalog_addr = catalog.addr();
    let case = ServiceProc::start_with(
        ServiceKind::Case,
        &broker.brokers(),
        &[exported, ("XIAONENG__DOMAIN__CATALOG_ADDR", catalog_addr.as_str())],
    )
    .await;
    let _acc = ServiceProc::start_with(ServiceKind::Accountability, &broker.brokers(), &[exported]).await;

    let (trace, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let mut clerk = crate::case::driver::as_in(&case, "clerk-01", &[roles::CLERK], "410702").await;
    let mut req = tonic::Request::new(cpb::SubmitCaseRequest {
        region_code: "410702".into(),
        matter_id: matter,
        applicant: Some(cpb::Applicant { name: "王小明".into(), phone: "13800000000".into(), ..Default::default() }),
        supplied_materials: vec!["申请书".into()],
        ..Default::default()
    });
    req.metadata_mut().insert("traceparent", format!("00-{trace}-{caller_span}-01").parse().unwrap());
    clerk.submit_case(req).await.unwrap();
    // A call that fails is a log line carrying its trace id.
    let refused_trace = "0af7651916cd43dd8448eb211c80319c";
    let mut bad = tonic::Request::new(cpb::SubmitCaseRequest::default());
    bad.metadata_mut().insert("traceparent", format!("00-{refused_trace}-b7ad6b7169203331-01").parse().unwrap());
    assert_eq!(clerk.submit_case(bad).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    let line =
        case.log_text().lines().find(|l| l.contains("call not ok") && l.contains(refused_trace)).map(str::to_string);
    assert!(line.is_some_and(|l| l.contains("InvalidArgument")), "{}", case.log_tail());

    let read = || -> Vec<Span> {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                Span {
                    service: text("service"),
                    name: text("name"),
                    kind: v["kind"].as_i64().unwrap_or(0) as i32,
                    trace_id: text("trace_id"),
                    span_id: text("span_id"),
                    parent_span_id: text("parent_span_id"),
                }
            })
            .filter(|s| s.trace_id == trace)
            .collect()
    };
    let find = |spans: &[Span], service: &str, kind: i32, name: &str| {
        spans.iter().find(|s| s.service == service && s.kind == kind && s.name.contains(name)).cloned()
    };
    let spans = eventually(90, "the trace's spans from the case, catalog and accountability services", || {
        let spans = read();
        async move {
            let complete = find(&spans, "xiaoneng-case", SERVER, "CaseService/SubmitCase").is_some()
                && find(&spans, "xiaoneng-catalog", SERVER, "CatalogService/GetMatter").is_some()
                && find(&spans, "xiaoneng-case", PRODUCER, "publish").is_some()
                && find(&spans, "xiaoneng-accountability", CONSUMER, "consume").is_some();
            complete.then_some(spans)
        }
    })
    .await;
    let submit = find(&spans, "xiaoneng-case", SERVER, "CaseService/SubmitCase").unwrap();
    assert_eq!(submit.parent_span_id, caller_span, "the server span continues the caller's");
    let case_spans: Vec<&str> =
        spans.iter().filter(|s| s.service == "xiaoneng-case").map(|s| s.span_id.as_str()).collect();
    let get_matter = find(&spans, "xiaoneng-catalog", SERVER, "CatalogService/GetMatter").unwrap();
    assert!(case_spans.contains(&get_matter.parent_span_id.as_str()), "{get_matter:?} under {spans:#?}");
    let publish = find(&spans, "xiaoneng-case", PRODUCER, "publish").unwrap();
    assert!(case_spans.contains(&publish.parent_span_id.as_str()), "{publish:?} under {spans:#?}");
    let consume = spans
        .iter()
        .find(|s| s.service == "xiaoneng-accountability" && s.kind == CONSUMER && s.parent_span_id == publish.span_id);
    assert!(consume.is_some(), "the consumer continues the producer's span: {spans:#?}");
}
