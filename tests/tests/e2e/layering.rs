//! The one service shape, held by a test: inside each service, imports run one way,
//! api → service → {domain, store, events}, and nothing imports api (ARCHITECTURE.md).
//! Background loops (timers, tidal, reconcile, overdue) use the service, never the API. The module a
//! file belongs to is its first path segment under `src/` (`store/matters.rs` is `store`).
//!
//! `KNOWN` lists the imports the reshape has not removed yet: a new forbidden import fails,
//! and so does a listed one that is gone (the list only shrinks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What each layer may import from its own service.
fn allowed(layer: &str) -> Option<&'static [&'static str]> {
    Some(match layer {
        // Adapters: gRPC, and the complaint service's Open311 HTTP face.
        "api" | "open311" => &["service", "domain"],
        "service" => &["domain", "store", "events", "hot", "cache", "vault"],
        "loops" => &["service", "domain"],
        "domain" => &[],
        // The complaint service's sealing of identities.
        "store" | "hot" | "cache" | "vault" => &["domain"],
        "events" => &["domain"],
        // Wiring and tools see everything.
        "lib" | "main" | "bin" | "starter" => return None,
        _ => &[],
    })
}

fn layer_of(module: &str) -> &str {
    match module {
        "timers" | "tidal" | "reconcile" | "overdue" => "loops",
        m => m,
    }
}

/// Forbidden imports not removed yet: (service, from module, to module).
const KNOWN: &[(&str, &str, &str)] = &[];

/// The `crate::<module>` paths a source file names in code (doc comments ignored).
fn imports(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in src.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let tail = &rest[i + "crate::".len()..];
            let name: String = tail.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                out.insert(name);
            }
            rest = tail;
        }
        // `use crate::{a, b}` lists several.
        if let Some(i) = code.find("crate::{") {
            let list = &code[i + "crate::{".len()..];
            for part in list.split(|c| c == ',' || c == '}') {
                let name = part.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    out.insert(name.to_string());
                }
            }
        }
    }
    out
}

/// Every (from, to) import of a service whose source tree is `src`.
fn edges(src: &Path) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let module = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .map(|s| s.trim_end_matches(".rs").to_string())
                .expect("module");
            let text = std::fs::read_to_string(&path).expect("read");
            for to in imports(&text) {
                if to != module {
                    out.insert((module.clone(), to));
                }
            }
        }
    }
    out
}

/// The forbidden edges among `edges`.
fn violations(edges: &BTreeSet<(String, String)>) -> BTreeSet<(String, String)> {
    edges
        .iter()
        .filter(|(from, to)| {
            let Some(ok) = allowed(layer_of(from)) else {
                return false;
            };
            to == "api" || !ok.contains(&layer_of(to))
        })
        .cloned()
        .collect()
}

#[test]
fn every_service_imports_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("root");
    let mut found: BTreeMap<(String, String, String), ()> = BTreeMap::new();
    for svc in ["catalog", "queue", "case", "evaluation", "complaint", "accountability"] {
        let src = root.join("services").join(svc).join("src");
        for (from, to) in violations(&edges(&src)) {
            found.insert((svc.to_string(), from, to), ());
        }
    }
    let known: BTreeSet<(String, String, String)> =
        KNOWN.iter().map(|(s, f, t)| (s.to_string(), f.to_string(), t.to_string())).collect();
    let new: Vec<_> = found.keys().filter(|k| !known.contains(*k)).collect();
    assert!(new.is_empty(), "forbidden imports (service, from, to): {new:?}");
    let gone: Vec<_> = known.iter().filter(|k| !found.contains_key(*k)).collect();
    assert!(gone.is_empty(), "no longer imported, remove from KNOWN: {gone:?}");
}

#[test]
fn a_store_that_imports_events_is_caught() {
    let src = tempfile::tempdir().expect("tempdir");
    std::fs::write(src.path().join("store.rs"), "use crate::events;\nuse crate::domain::X;\n").unwrap();
    std::fs::write(src.path().join("api.rs"), "use crate::{service, domain::Y};\n").unwrap();
    std::fs::write(src.path().join("domain.rs"), "/// see [`crate::store`]\n").unwrap();
    let v = violations(&edges(src.path()));
    assert_eq!(v.into_iter().collect::<Vec<_>>(), [("store".to_string(), "events".to_string())]);
}

/// The web face is a client of the services, never of their stores: no database, cache or
/// broker library among its dependencies, and no SQL in its sources.
#[test]
fn the_web_face_touches_no_store() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").join("services/web");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("the web face's manifest");
    for lib in ["sqlx", "redis", "rdkafka"] {
        assert!(!manifest.lines().any(|l| l.trim_start().starts_with(lib)), "services/web depends on {lib}");
    }
    for entry in std::fs::read_dir(root.join("src")).expect("src") {
        let path = entry.expect("entry").path();
        let src = std::fs::read_to_string(&path).expect("source");
        for sql in ["SELECT ", "INSERT ", "UPDATE ", "sqlx::"] {
            assert!(!src.contains(sql), "{} holds {sql:?}", path.display());
        }
    }
}
