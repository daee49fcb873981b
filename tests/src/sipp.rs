//! sipp (Debian `sip-tester`) as a real SIP user agent for tests.
//!
//! Contract: [`run`] starts one sipp in a fresh temporary folder (its scenario
//! file and logs live there), tied to the test process, with `-m 1 -timeout`,
//! `-trace_err` and `-trace_msg`, and waits for it; past the deadline it is
//! killed. sipp's own port is a free one (not its default 5060). The [`Outcome`] carries the exit status, the output and every log
//! sipp wrote, so a failing assertion can show what sipp saw.

use std::io;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::spawn_tied;

/// Which scenario sipp plays.
#[derive(Debug, Clone, Copy)]
pub enum Scenario<'a> {
    /// One embedded in sipp (`-sn uac`, ...).
    BuiltIn(&'a str),
    /// XML text, written to `scenario.xml` in the temporary folder.
    Xml(&'a str),
}

/// How a sipp run ended.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code; `None` when killed (deadline) or ended by a signal.
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// (file name, contents) of every `*.log` sipp wrote.
    pub logs: Vec<(String, String)>,
    pub elapsed: Duration,
}

impl Outcome {
    /// Exit status 0: every call of the scenario completed.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Everything sipp said, for assertion messages.
    pub fn report(&self) -> String {
        let mut out = format!(
            "sipp exit status {:?} after {:?}\n--- stderr ---\n{}\n",
            self.status, self.elapsed, self.stderr
        );
        for (name, text) in &self.logs {
            out.push_str(&format!("--- {name} ---\n{text}\n"));
        }
        // The screen dump is long; its tail holds the statistics.
        let tail: Vec<&str> = self.stdout.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        out.push_str(&format!("--- stdout (tail) ---\n{}\n", tail.join("\n")));
        out
    }
}

/// Runs sipp once against `target` (UDP unless `extra` says otherwise).
pub async fn run(
    scenario: Scenario<'_>,
    target: SocketAddr,
    extra: &[&str],
    deadline: Duration,
) -> io::Result<Outcome> {
    let dir = tempfile::tempdir()?;
    let mut cmd = Command::new("sipp");
    cmd.current_dir(dir.path())
        .arg(target.to_string())
        .args(["-i", &target.ip().to_string()])
        // sipp would take 5060 when free: keep to the harness's free ports.
        .args(["-p", &crate::free_port()?.to_string()]);
    match scenario {
        Scenario::BuiltIn(name) => cmd.args(["-sn", name]),
        Scenario::Xml(xml) => {
            std::fs::write(dir.path().join("scenario.xml"), xml)?;
            cmd.args(["-sf", "scenario.xml"])
        }
    };
    let timeout = format!("{}s", deadline.as_secs().max(1));
    cmd.args(["-m", "1", "-timeout", &timeout, "-timeout_error"])
        .args(["-trace_err", "-trace_msg", "-nostdin"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let child = spawn_tied(cmd)?;
    let pid = child.id();
    let waiting = tokio::task::spawn_blocking(move || child.wait_with_output());
    // sipp's own -timeout should end it; this is the backstop.
    let output = match tokio::time::timeout(deadline + Duration::from_secs(5), waiting).await {
        Ok(joined) => joined.map_err(io::Error::other)??,
        Err(_) => {
            // The waiting thread returns once sipp is gone.
            let _ = crate::process::sigterm(pid);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "sipp outlived its own -timeout",
            ));
        }
    };
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir.path())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "log") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            logs.push((name, std::fs::read_to_string(&path).unwrap_or_default()));
        }
    }
    logs.sort();
    Ok(Outcome {
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        logs,
        elapsed: started.elapsed(),
    })
}
