//! Running sipp for many calls (`-r`, `-rp`, `-m`, `-l`) and reading back
//! how each message of the scenario fared.
//!
//! Contract: [`run_calls`] starts one sipp like `sipp::run` does (fresh
//! temporary folder, tied to the test process, sipp's SIP port a free one,
//! `-i` the target's IP, `-timeout DEADLINE -timeout_error`, `-trace_err`,
//! `-nostdin`), but with the [`Load`]'s rate and call counts and with
//! `-trace_counts -trace_stat -trace_screen`; `-trace_msg` only on request
//! (thousands of calls make it huge). After sipp exits, it parses the last
//! line of `<scenario>_<pid>_counts.csv` into [`Counts`] and of
//! `<scenario>_<pid>_.csv` into [`Stats`]; sipp writes both once more as it
//! exits. The temporary folder goes away before it returns.
//!
//! Both [`run_calls`] and [`run_call`] (`sipp::run` for one call) start sipp
//! again, up to 3 times, when it exits because its SIP port was taken (exit
//! status 254, "Unable to bind main socket"): the harness's free ports are
//! free over TCP in this process, while sipp binds UDP, which another test
//! process's socket may hold.

use std::io;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::spawn_tied;
use crate::sipp::{Outcome, Scenario};

/// How many calls, how fast.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// New calls per `rate_period` (`-r`); default 10.
    pub rate: f64,
    /// `-rp`; default 1 s.
    pub rate_period: Duration,
    /// Calls in all (`-m`); default 1.
    pub calls: u64,
    /// At most this many calls at once (`-l`); default sipp's (3 × rate).
    pub limit: Option<u32>,
    /// sipp's `-timeout` (it then exits with an error); a backstop kills it
    /// 5 s later. Default 30 s.
    pub deadline: Duration,
    /// Log every message (`-trace_msg`); default off.
    pub trace_msg: bool,
    /// Further sipp arguments, after ours.
    pub extra: Vec<String>,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            rate: 10.0,
            rate_period: Duration::from_secs(1),
            calls: 1,
            limit: None,
            deadline: Duration::from_secs(30),
            trace_msg: false,
            extra: Vec::new(),
        }
    }
}

/// A finished load run.
#[derive(Debug)]
pub struct LoadOutcome {
    /// Exit status, output, and every `*.log` (errors, screen).
    pub outcome: Outcome,
    pub counts: Counts,
    pub stats: Stats,
}

/// Per-message counters of the scenario (`-trace_counts`), final values.
///
/// Columns are `INDEX_WHAT_COUNTER`: `0_INVITE_Sent`, `4_503_Recv`,
/// `8_BYE_Recv`, `6_Pause_Sessions`, ... where INDEX is the element's place
/// in the scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub columns: Vec<(String, u64)>,
}

impl Counts {
    /// The value of one column.
    pub fn get(&self, column: &str) -> Option<u64> {
        self.columns
            .iter()
            .find(|(name, _)| name == column)
            .map(|&(_, value)| value)
    }

    /// `WHAT` (`503`, `INVITE`, `BYE`) with `COUNTER` (`Recv`, `Sent`,
    /// `Timeout`, `Unexp`, ...), one value per scenario element, in order.
    pub fn each(&self, what: &str, counter: &str) -> Vec<u64> {
        self.columns
            .iter()
            .filter(|(name, _)| {
                let mut parts = name.splitn(3, '_');
                let _index = parts.next();
                parts.next() == Some(what) && parts.next() == Some(counter)
            })
            .map(|&(_, value)| value)
            .collect()
    }

    /// Responses `code` received, per `<recv response=CODE>` in order.
    pub fn responses(&self, code: u16) -> Vec<u64> {
        self.each(&code.to_string(), "Recv")
    }

    /// Responses `code` received, all elements together.
    pub fn received(&self, code: u16) -> u64 {
        self.responses(code).iter().sum()
    }

    /// Requests `method` sent (first transmissions), all elements together.
    pub fn sent(&self, method: &str) -> u64 {
        self.each(method, "Sent").iter().sum()
    }

    /// Messages that arrived when another was expected, all elements.
    pub fn unexpected(&self) -> u64 {
        self.counter_total("Unexp")
    }

    /// Receptions and retransmissions that timed out, all elements.
    pub fn timeouts(&self) -> u64 {
        self.counter_total("Timeout")
    }

    fn counter_total(&self, counter: &str) -> u64 {
        self.columns
            .iter()
            .filter(|(name, _)| name.rsplit('_').next() == Some(counter))
            .map(|&(_, value)| value)
            .sum()
    }
}

/// sipp's statistics (`-trace_stat`), final line: `TotalCallCreated`,
/// `SuccessfulCall(C)`, `FailedCall(C)`, `FailedUnexpectedMessage(C)`, ...
/// (`(C)` cumulative, `(P)` the last period). See `sipp -h stat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub columns: Vec<(String, String)>,
}

impl Stats {
    /// One column's text.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, value)| value.as_str())
    }

    /// One column as a number.
    pub fn count(&self, column: &str) -> Option<u64> {
        self.get(column)?.trim().parse().ok()
    }

    pub fn calls_created(&self) -> Option<u64> {
        self.count("TotalCallCreated")
    }

    pub fn successful_calls(&self) -> Option<u64> {
        self.count("SuccessfulCall(C)")
    }

    pub fn failed_calls(&self) -> Option<u64> {
        self.count("FailedCall(C)")
    }
}

/// The header and last data line of one of sipp's `;`-separated files.
fn last_row(text: &str) -> Vec<(String, String)> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let Some(last) = lines.next_back() else {
        return Vec::new();
    };
    header
        .split(';')
        .zip(last.split(';'))
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn parse_counts(text: &str) -> Counts {
    Counts {
        columns: last_row(text)
            .into_iter()
            .filter_map(|(name, value)| Some((name, value.trim().parse().ok()?)))
            .collect(),
    }
}

/// sipp's exit status when it could not bind a socket (`EXIT_BIND_ERROR`, -2).
const EXIT_BIND_ERROR: i32 = 254;
/// How many SIP ports a run tries before it gives up.
const BIND_ATTEMPTS: usize = 3;

/// sipp ended before any call because its SIP port was taken: another
/// process's UDP socket can hold a port the harness found free over TCP.
fn could_not_bind(outcome: &Outcome) -> bool {
    outcome.status == Some(EXIT_BIND_ERROR) && outcome.stderr.contains("Unable to bind main socket")
}

/// `sipp::run` (one call, `-m 1`), run again with a new SIP port when sipp
/// could not bind its own (up to 3 attempts); any other outcome is returned
/// as it is.
pub async fn run_call(
    scenario: Scenario<'_>,
    target: SocketAddr,
    extra: &[&str],
    deadline: Duration,
) -> io::Result<Outcome> {
    let mut attempt = 1;
    loop {
        let outcome = crate::sipp::run(scenario, target, extra, deadline).await?;
        if attempt == BIND_ATTEMPTS || !could_not_bind(&outcome) {
            return Ok(outcome);
        }
        attempt += 1;
    }
}

/// Runs `scenario` against `target` for `load.calls` calls (see the module
/// contract); like [`run_call`], tries another SIP port when sipp could not
/// bind its own.
pub async fn run_calls(
    scenario: Scenario<'_>,
    target: SocketAddr,
    load: &Load,
) -> io::Result<LoadOutcome> {
    let mut attempt = 1;
    loop {
        let run = run_calls_once(scenario, target, load).await?;
        if attempt == BIND_ATTEMPTS || !could_not_bind(&run.outcome) {
            return Ok(run);
        }
        attempt += 1;
    }
}

async fn run_calls_once(
    scenario: Scenario<'_>,
    target: SocketAddr,
    load: &Load,
) -> io::Result<LoadOutcome> {
    let dir = tempfile::tempdir()?;
    let mut cmd = Command::new("sipp");
    cmd.current_dir(dir.path())
        .arg(target.to_string())
        .args(["-i", &target.ip().to_string()])
        .args(["-p", &crate::free_port()?.to_string()]);
    match scenario {
        Scenario::BuiltIn(name) => cmd.args(["-sn", name]),
        Scenario::Xml(xml) => {
            std::fs::write(dir.path().join("scenario.xml"), xml)?;
            cmd.args(["-sf", "scenario.xml"])
        }
    };
    let period_ms = load.rate_period.as_millis().max(1).to_string();
    cmd.args(["-r", &load.rate.to_string(), "-rp", &period_ms])
        .args(["-m", &load.calls.to_string()]);
    if let Some(limit) = load.limit {
        cmd.args(["-l", &limit.to_string()]);
    }
    let timeout = format!("{}s", load.deadline.as_secs().max(1));
    cmd.args(["-timeout", &timeout, "-timeout_error"])
        .args([
            "-trace_err",
            "-trace_counts",
            "-trace_stat",
            "-trace_screen",
        ])
        .arg("-nostdin");
    if load.trace_msg {
        cmd.arg("-trace_msg");
    }
    cmd.args(&load.extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let started = Instant::now();
    let child = spawn_tied(cmd)?;
    let pid = child.id();
    let waiting = tokio::task::spawn_blocking(move || child.wait_with_output());
    let output = match tokio::time::timeout(load.deadline + Duration::from_secs(5), waiting).await {
        Ok(joined) => joined.map_err(io::Error::other)??,
        Err(_) => {
            let _ = crate::process::sigterm(pid);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "sipp outlived its own -timeout",
            ));
        }
    };

    let (mut logs, mut counts, mut stats) = (Vec::new(), Counts::default(), Stats::default());
    for entry in std::fs::read_dir(dir.path())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = || std::fs::read_to_string(&path).unwrap_or_default();
        if name.ends_with(".log") {
            logs.push((name, text()));
        } else if name.ends_with("_counts.csv") {
            counts = parse_counts(&text());
        } else if name.ends_with("_.csv") {
            stats = Stats {
                columns: last_row(&text()),
            };
        }
    }
    logs.sort();
    Ok(LoadOutcome {
        outcome: Outcome {
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            logs,
            elapsed: started.elapsed(),
        },
        counts,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like sipp 3.6.1's files (times hold tabs; a trailing `;`).
    const COUNTS: &str = "CurrentTime;ElapsedTime;0_INVITE_Sent;0_INVITE_Retrans;0_INVITE_Timeout;\
1_100_Recv;1_100_Retrans;1_100_Timeout;1_100_Unexp;2_503_Recv;2_503_Retrans;2_503_Timeout;2_503_Unexp;\
3_200_Recv;3_200_Retrans;3_200_Timeout;3_200_Unexp;4_ACK_Sent;4_ACK_Retrans;5_BYE_Sent;5_BYE_Retrans;\
5_BYE_Timeout;6_200_Recv;6_200_Retrans;6_200_Timeout;6_200_Unexp;\n\
2026-11-24\t12:56:56.009651\t1795525016.009651;00:00:00:003000;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;\n\
2026-11-24\t12:56:56.318456\t1795525016.318456;00:00:00:312000;10;1;0;10;0;0;0;4;0;0;0;6;0;0;1;10;0;6;0;0;5;0;0;0;\n";

    #[test]
    fn counts_come_from_the_last_line_per_element() {
        let counts = parse_counts(COUNTS);
        assert_eq!(counts.get("0_INVITE_Sent"), Some(10));
        assert_eq!(counts.responses(200), vec![6, 5]);
        assert_eq!(counts.received(200), 11);
        assert_eq!(counts.received(503), 4);
        assert_eq!(counts.sent("ACK"), 10);
        assert_eq!(counts.sent("BYE"), 6);
        assert_eq!(counts.unexpected(), 1);
        assert_eq!(counts.timeouts(), 0);
        // Time columns are not numbers and are left out.
        assert_eq!(counts.get("CurrentTime"), None);
    }

    #[test]
    fn only_a_taken_sip_port_counts_as_a_bind_failure() {
        let outcome = |status, stderr: &str| Outcome {
            status,
            stdout: String::new(),
            stderr: stderr.to_string(),
            logs: Vec::new(),
            elapsed: Duration::ZERO,
        };
        let taken = "Unable to bind main socket, errno = 98 (Address already in use)";
        assert!(could_not_bind(&outcome(Some(254), taken)));
        assert!(!could_not_bind(&outcome(Some(1), taken)));
        assert!(!could_not_bind(&outcome(
            Some(254),
            "Can't create raw IPv4 socket"
        )));
    }

    #[test]
    fn stats_name_their_columns() {
        let text =
            "StartTime;TotalCallCreated;SuccessfulCall(P);SuccessfulCall(C);FailedCall(C);\n\
                    a\tb;0;0;0;0;\n\
                    a\tb;20;3;19;1;\n";
        let stats = Stats {
            columns: last_row(text),
        };
        assert_eq!(stats.calls_created(), Some(20));
        assert_eq!(stats.successful_calls(), Some(19));
        assert_eq!(stats.failed_calls(), Some(1));
        assert_eq!(stats.get("StartTime"), Some("a\tb"));
        assert_eq!(last_row(""), Vec::new());
    }
}
