//! Crash points for tests that must kill a process at one exact step (between a hot-queue pop
//! and its commit, between a consumer's commit and its offset store). Off unless the process
//! was started with `XIAONENG_FAILPOINTS=name` (abort at the first hit) or `name@N` (at the
//! N-th), comma-separated. An abort is a crash: nothing is flushed, no destructor runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

fn armed() -> &'static HashMap<String, (u64, AtomicU64)> {
    static ARMED: OnceLock<HashMap<String, (u64, AtomicU64)>> = OnceLock::new();
    ARMED.get_or_init(|| {
        std::env::var("XIAONENG_FAILPOINTS")
            .map(|v| parse(&v))
            .unwrap_or_default()
            .into_iter()
            .map(|(name, at)| (name, (at, AtomicU64::new(0))))
            .collect()
    })
}

fn parse(spec: &str) -> Vec<(String, u64)> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.split_once('@') {
            Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1).max(1)),
            None => (s.to_string(), 1),
        })
        .collect()
}

/// Aborts the process when `name` is armed and this is its N-th hit.
pub fn hit(name: &str) {
    let Some((at, hits)) = armed().get(name) else {
        return;
    };
    if hits.fetch_add(1, Ordering::SeqCst) + 1 == *at {
        eprintln!("failpoint {name} reached: aborting");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn names_and_counts() {
        assert_eq!(
            parse("a, b@3,,c@x"),
            [("a".into(), 1), ("b".into(), 3), ("c".into(), 1)]
        );
    }
}
