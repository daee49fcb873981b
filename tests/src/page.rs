//! The meeting page (`web/`) for browser tests: [`ensure_built`] builds it
//! with `npm run build` when `web/dist/index.html` is missing or older than
//! a file under `web/src/`; `scripts/setup` installs its npm packages.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

/// One build at a time in this process.
static BUILD: Mutex<()> = Mutex::new(());

/// The built page's folder (`web/dist`), built first if needed.
pub fn ensure_built() -> Result<PathBuf> {
    let _one = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let web = crate::workspace_root().join("web");
    let dist = web.join("dist");
    let index = dist.join("index.html");
    if index.is_file() && !stale(&index, &web.join("src"))? {
        return Ok(dist);
    }
    if !web.join("node_modules/esbuild").is_dir() || !web.join("node_modules/strophe.js").is_dir() {
        bail!("web/node_modules is missing (the meeting page cannot be built): run scripts/setup");
    }
    let out = Command::new("npm")
        .args(["run", "build", "--silent"])
        .current_dir(&web)
        .output()
        .context("running npm (is it installed? run scripts/setup)")?;
    if !out.status.success() || !index.is_file() {
        bail!(
            "npm run build in web/ failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(dist)
}

/// Whether a file under `src` is newer than `built`.
fn stale(built: &Path, src: &Path) -> Result<bool> {
    let built_at = modified(built)?;
    for entry in std::fs::read_dir(src).with_context(|| format!("{}", src.display()))? {
        let path = entry?.path();
        if path.is_file() && modified(&path)? > built_at {
            return Ok(true);
        }
    }
    Ok(false)
}

fn modified(path: &Path) -> Result<SystemTime> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("{}", path.display()))
}
