//! The browser toolchain the page tests use is in place: playwright-core
//! (installed by scripts/setup from tests/web) drives Debian's Chromium.

use std::process::Command;

#[test]
fn playwright_drives_chromium() {
    let dir = tests::workspace_root().join("tests/web");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/web/node_modules is missing: run scripts/setup"
    );
    let out = Command::new("node")
        .arg("smoke.mjs")
        .current_dir(&dir)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("chromium ok"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
