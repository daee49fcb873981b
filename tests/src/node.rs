//! A node script under `tests/web/` that drives Chromium with playwright-core:
//! the test writes commands to its stdin and reads reports from its stdout,
//! one JSON object per line. Its stderr is kept for the error when it ends.
//! The child is killed when the [`NodeScript`] is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A running node script whose reports parse as `R`.
pub struct NodeScript<R> {
    child: Child,
    stdin: ChildStdin,
    reports: mpsc::UnboundedReceiver<R>,
    stderr: Arc<Mutex<String>>,
}

impl<R: DeserializeOwned + Send + 'static> NodeScript<R> {
    /// Starts `node <script> <args..>` in `tests/web`; a stdout line that is
    /// not a report becomes `unparsed(line)`. Fails, naming scripts/setup,
    /// when playwright-core or Chromium (`$CHROMIUM`, else
    /// /usr/bin/chromium) is missing.
    pub fn start(script: &str, args: &[&str], unparsed: fn(String) -> R) -> Result<Self> {
        let dir = crate::workspace_root().join("tests/web");
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        anyhow::ensure!(
            dir.join("node_modules/playwright-core").is_dir(),
            "tests/web/node_modules is missing: run scripts/setup"
        );
        anyhow::ensure!(
            std::path::Path::new(&chromium).is_file(),
            "{chromium} is missing: run scripts/setup"
        );
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .args(args)
            .current_dir(&dir)
            .env("CHROMIUM", &chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = crate::process::spawn_tied(cmd)
            .context("starting node (is it installed? run scripts/setup)")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut err_pipe = child.stderr.take().context("stderr")?;
        let (tx, reports) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let report = serde_json::from_str(&line).unwrap_or_else(|_| unparsed(line));
                if tx.send(report).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err_pipe.read(&mut buf) {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Ok(NodeScript {
            child,
            stdin,
            reports,
            stderr,
        })
    }

    /// Writes one command line.
    pub fn send(&mut self, command: &serde_json::Value) -> Result<()> {
        writeln!(self.stdin, "{command}").context("writing to the node script")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// The next report; fails at `deadline` or when the script has ended
    /// (with its stderr).
    pub async fn recv(&mut self, deadline: Instant) -> Result<R> {
        match tokio::time::timeout_at(deadline, self.reports.recv()).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => bail!(
                "the node script ended; stderr:\n{}",
                self.stderr.lock().unwrap_or_else(|e| e.into_inner())
            ),
            Err(_) => bail!("timed out waiting for the node script"),
        }
    }

    /// Asks the script to quit (`{"type":"quit"}`) and gives it 5 s.
    pub fn quit(mut self) {
        let _ = self.send(&serde_json::json!({"type": "quit"}));
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl<R> Drop for NodeScript<R> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
