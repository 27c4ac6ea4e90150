//! The protobuf contract lints clean under buf's STANDARD rules (formerly DEFAULT).

use std::path::Path;
use std::process::Command;

#[test]
fn buf_lint_is_clean() {
    let buf = std::env::var("XIAONENG_BUF").ok().filter(|b| !b.is_empty()).unwrap_or_else(|| "buf".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(&buf)
        .arg("lint")
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {buf} ({e}); ./scripts/test installs it"));
    assert!(
        out.status.success(),
        "buf lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
