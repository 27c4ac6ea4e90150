//! The chart cannot drift from the code: rendered by Helm's own engine (scripts/chart.py, the
//! PyPI helm-python-sdk that ./scripts/test installs) for each example values file, it must run
//! every workspace service with its own command, on the port the code gives it, expose that port
//! and the metrics port, give each service's peer address settings (`*_addr`) a component that
//! exists on the right port with a NetworkPolicy allowing the call, set no `domain` key the
//! service does not have, and create the topics with the operator tool.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use xiaoneng_kit::ServiceKind;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

fn python() -> String {
    std::env::var("XIAONENG_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/xiaoneng/venv/bin/python")
    })
}

/// The rendered objects of the chart with `values` (a file under charts/xiaoneng).
pub fn render(values: &str) -> Vec<Value> {
    let py = python();
    let out = Command::new(&py)
        .arg("scripts/chart.py")
        .arg("json")
        .arg("charts/xiaoneng")
        .arg(format!("charts/xiaoneng/{values}"))
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {py} ({e}); ./scripts/test installs helm-python-sdk"));
    assert!(out.status.success(), "render {values}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("rendered objects as JSON")
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

/// The fields a service's `[domain]` settings declare, from its lib.rs (`pub name: Type,` inside
/// the `…Settings` structs).
fn domain_fields(service: &str) -> Vec<String> {
    let src = std::fs::read_to_string(root().join(format!("services/{service}/src/lib.rs"))).unwrap_or_default();
    let mut fields = Vec::new();
    let mut inside = false;
    for line in src.lines() {
        let t = line.trim();
        if t.starts_with("pub struct ") && t.contains("Settings") {
            inside = true;
        } else if inside && t == "}" {
            inside = false;
        } else if inside {
            if let Some(rest) = t.strip_prefix("pub ") {
                if let Some((name, _)) = rest.split_once(':') {
                    fields.push(name.trim().to_string());
                }
            }
        }
    }
    fields
}

/// What the chart gets wrong for `values`, one line each.
pub fn drift(objects: &[Value]) -> Vec<String> {
    let mut wrong = Vec::new();
    let ports: BTreeMap<&str, u16> = ServiceKind::ALL.iter().map(|k| (k.name(), k.default_port())).collect();
    for kind in ServiceKind::ALL {
        let (name, port) = (kind.name(), kind.default_port());
        let Some(d) = find(objects, "Deployment", name) else {
            wrong.push(format!("{name}: no Deployment"));
            continue;
        };
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        if c["command"][0] != format!("/usr/local/bin/xiaoneng-{name}") {
            wrong.push(format!("{name}: runs {}", c["command"]));
        }
        let container_ports: Vec<i64> =
            c["ports"].as_array().into_iter().flatten().filter_map(|p| p["containerPort"].as_i64()).collect();
        for p in [port as i64, port as i64 + 1000] {
            if !container_ports.contains(&p) {
                wrong.push(format!("{name}: container port {p} missing ({container_ports:?})"));
            }
        }
        if c["readinessProbe"]["grpc"]["port"] != port as i64 {
            wrong.push(format!("{name}: readiness probe not gRPC on {port}"));
        }
        let service_ports: Vec<i64> = find(objects, "Service", name)
            .map(|s| s["spec"]["ports"].as_array().into_iter().flatten().filter_map(|p| p["port"].as_i64()).collect())
            .unwrap_or_default();
        if !service_ports.contains(&(port as i64)) {
            wrong.push(format!("{name}: Service does not expose {port}"));
        }
        let settings = find(objects, "ConfigMap", &format!("{name}-settings")).map(|m| &m["data"]);
        let Some(settings) = settings else {
            wrong.push(format!("{name}: no settings ConfigMap"));
            continue;
        };
        if settings["XIAONENG__SERVICE__GRPC_ADDR"] != format!("0.0.0.0:{port}") {
            wrong.push(format!("{name}: listens on {}", settings["XIAONENG__SERVICE__GRPC_ADDR"]));
        }
        let fields = domain_fields(name);
        let set: BTreeMap<String, String> = settings
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                k.strip_prefix("XIAONENG__DOMAIN__").map(|f| (f.to_lowercase(), v.as_str().unwrap_or("").to_string()))
            })
            .collect();
        for key in set.keys() {
            let top = key.split("__").next().unwrap_or("");
            if !fields.iter().any(|f| f == top) {
                wrong.push(format!("{name}: domain.{key} is not a setting of the service"));
            }
        }
        // Every peer the service calls: set, pointing at a component on its port, and allowed.
        for field in fields.iter().filter(|f| f.ends_with("_addr") && f.as_str() != "business_addr") {
            let peer = field.trim_end_matches("_addr");
            let Some(peer_port) = ports.get(peer) else { continue };
            let want = format!("http://{peer}:{peer_port}");
            if set.get(field.as_str()) != Some(&want) {
                wrong.push(format!("{name}: domain.{field} is {:?}, not {want}", set.get(field.as_str())));
            }
            let allowed = find(objects, "NetworkPolicy", &format!("{peer}-allow")).is_some_and(|np| {
                np["spec"]["ingress"].as_array().into_iter().flatten().any(|rule| {
                    rule["from"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|f| f["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == name)
                        && rule["ports"].as_array().into_iter().flatten().any(|p| p["port"] == *peer_port as i64)
                })
            });
            if !allowed {
                wrong.push(format!("{name} → {peer}: no NetworkPolicy allows the call"));
            }
        }
    }
    let topics = find(objects, "Job", "create-topics");
    if topics.map(|j| &j["spec"]["template"]["spec"]["containers"][0]["command"]).map(|c| c[1] == "create-topics")
        != Some(true)
    {
        wrong.push("no hook Job creates the topics (xiaoneng-admin create-topics)".into());
    }
    wrong
}

#[test]
fn the_chart_runs_every_service_as_the_code_does() {
    for values in ["examples/city.yaml", "examples/county.yaml", "values.yaml"] {
        let objects = render(values);
        let wrong = drift(&objects);
        assert!(wrong.is_empty(), "{values}:\n{}", wrong.join("\n"));
    }
}

/// The drift check itself fails on a chart that lost a service, a port or a call.
#[test]
fn a_chart_without_a_service_or_with_a_wrong_port_is_caught() {
    let objects = render("examples/county.yaml");
    let without: Vec<Value> = objects
        .iter()
        .filter(|o| !(o["kind"] == "Deployment" && o["metadata"]["name"] == "evaluation"))
        .cloned()
        .collect();
    assert_eq!(drift(&without), ["evaluation: no Deployment"]);
    let mut moved = objects.clone();
    for o in moved.iter_mut().filter(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "complaint-settings") {
        o["data"]["XIAONENG__DOMAIN__CASE_ADDR"] = "http://case:50099".into();
        o["data"]["XIAONENG__DOMAIN__CASE_ADRR"] = "http://case:50053".into();
    }
    let mut got = drift(&moved);
    got.sort();
    assert_eq!(
        got,
        [
            "complaint: domain.case_addr is Some(\"http://case:50099\"), not http://case:50053",
            "complaint: domain.case_adrr is not a setting of the service",
        ]
    );
}

/// The metric names the workspace's code exports: `counter!`, `gauge!`, `histogram!` calls and
/// the services' gauge queries (`metric: "…"`).
fn exported_metrics() -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::from(["up".to_string()]);
    let mut stack = vec![root().join("crates"), root().join("services")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let src = std::fs::read_to_string(&path).unwrap_or_default();
                for marker in ["counter!(\"", "gauge!(\"", "histogram!(\"", "metric: \""] {
                    for part in src.split(marker).skip(1) {
                        if let Some(name) = part.split('"').next() {
                            names.insert(name.to_string());
                        }
                    }
                }
            }
        }
    }
    names
}

/// The metric names an expression reads (identifiers with an underscore, functions apart).
pub(crate) fn metrics_in(expr: &str) -> Vec<String> {
    let functions = ["histogram_quantile", "label_values", "label_replace"];
    let mut out = Vec::new();
    let mut in_quotes = false;
    let mut word = String::new();
    for ch in expr.chars().chain([' ']) {
        if ch == '"' {
            in_quotes = !in_quotes;
            word.clear();
            continue;
        }
        if !in_quotes && (ch.is_ascii_alphanumeric() || ch == '_') {
            word.push(ch);
            continue;
        }
        if (word.contains('_') || word == "up") && !functions.contains(&word.as_str()) && !in_quotes {
            let base =
                ["_bucket", "_count", "_sum"].iter().fold(word.clone(), |w, s| w.trim_end_matches(s).to_string());
            out.push(base);
        }
        word.clear();
    }
    out
}

/// Every PromQL expression of the chart's dashboards and alert rules, with its file's name.
pub(crate) fn dashboard_and_alert_exprs() -> Vec<(String, String)> {
    let chart = root().join("charts/xiaoneng");
    let mut exprs = Vec::new();
    for entry in std::fs::read_dir(chart.join("dashboards")).unwrap().flatten() {
        let board: Value = serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap();
        for p in board["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                exprs.push((entry.file_name().to_string_lossy().to_string(), t["expr"].as_str().unwrap().to_string()));
            }
        }
        for v in board["templating"]["list"].as_array().unwrap() {
            if let Some(q) = v["query"].as_str().filter(|q| q.starts_with("label_values")) {
                exprs.push((entry.file_name().to_string_lossy().to_string(), q.to_string()));
            }
        }
    }
    for entry in std::fs::read_dir(chart.join("alerts")).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        if !entry.file_name().to_string_lossy().ends_with(".rules.yaml") {
            continue;
        }
        // The rule files are simple YAML: `expr:` on one line or folded below it.
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if let Some(e) = l.trim().strip_prefix("expr:") {
                let mut e = e.trim().trim_start_matches(">-").to_string();
                for next in &lines[i + 1..] {
                    if next.trim_start().starts_with(|c: char| c.is_ascii_lowercase()) && next.contains(':') {
                        break;
                    }
                    e.push(' ');
                    e.push_str(next.trim());
                }
                exprs.push((entry.file_name().to_string_lossy().to_string(), e));
            }
        }
    }
    exprs
}

/// Every metric a dashboard panel or an alert reads is one the services export: a renamed
/// metric cannot leave a dashboard empty or an alert silent.
#[test]
fn dashboards_and_alerts_read_only_metrics_the_services_export() {
    let exported = exported_metrics();
    let exprs = dashboard_and_alert_exprs();
    assert!(exprs.len() > 30, "{} expressions found", exprs.len());
    let unknown: Vec<String> = exprs
        .iter()
        .flat_map(|(file, e)| {
            metrics_in(e).into_iter().filter(|m| !exported.contains(m)).map(move |m| format!("{file}: {m}"))
        })
        .collect();
    assert!(unknown.is_empty(), "read but never exported:\n{}", unknown.join("\n"));
}

/// The web face in the chart: its Deployment runs `xiaoneng-web` with HTTP probes, it is
/// reached from the ingress controller's namespace only and reaches the catalog, queue and
/// evaluation services (each of which admits it); staff sign in by OpenID Connect with the
/// client secret mounted as a file; the development sign-in is refused at render time.
#[test]
fn the_web_face_is_a_component_and_its_development_sign_in_is_refused() {
    let objects = render("values.yaml");
    let d = find(&objects, "Deployment", "web").expect("the web Deployment");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["command"][0], "/usr/local/bin/xiaoneng-web");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    let np = find(&objects, "NetworkPolicy", "web-allow").expect("the web NetworkPolicy");
    let from = &np["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"];
    assert_eq!(from["kubernetes.io/metadata.name"], "ingress-nginx");
    let callees: Vec<&str> = np["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"].as_str())
        .collect();
    assert_eq!(callees, ["catalog", "queue", "evaluation"]);
    let settings = find(&objects, "ConfigMap", "web-settings").expect("the web settings");
    let secret_file = settings["data"]["XIAONENG__DOMAIN__OIDC_CLIENT_SECRET_FILE"].as_str().unwrap();
    assert_eq!(settings["data"]["XIAONENG__DOMAIN__OIDC_ISSUER"], "https://sso.example.gov.cn");
    let projected = d["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"].as_array().unwrap();
    let mounted = projected.iter().any(|s| {
        s["secret"]["name"] == "xiaoneng-web-oidc"
            && format!("/var/run/secrets/xiaoneng/{}", s["secret"]["items"][0]["path"].as_str().unwrap()) == secret_file
    });
    assert!(mounted, "the client secret is the file the settings name: {projected:?}");
    for callee in ["catalog", "queue", "evaluation"] {
        let allow = find(&objects, "NetworkPolicy", &format!("{callee}-allow")).unwrap();
        let admits_web = allow["spec"]["ingress"][0]["from"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "web");
        assert!(admits_web, "{callee} admits the web face");
    }
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("dev.yaml");
    for (yaml, refusal) in [
        ("web:\n  env:\n    XIAONENG__DOMAIN__DEV_SIGNIN: \"true\"\n", "development sign-in"),
        ("web:\n  oidc:\n    issuer: \"\"\n", "set web.oidc.issuer"),
    ] {
        std::fs::write(&values, yaml).unwrap();
        let out = Command::new(python())
            .args(["scripts/chart.py", "json", "charts/xiaoneng"])
            .arg(&values)
            .current_dir(root())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{yaml} must not render");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(refusal), "{said}");
    }
}
