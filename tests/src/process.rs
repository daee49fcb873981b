//! Child processes that cannot outlive the test process (Linux).
//!
//! Contract: [`spawn_tied`] starts a command whose process receives SIGKILL
//! from the kernel when the test process exits, however it exits (a panic
//! that aborts, SIGKILL from a CI timeout, a crash). It uses
//! `PR_SET_PDEATHSIG`, which fires when the *thread* that forked the child
//! ends; so every tied child is forked by one dedicated thread that lives as
//! long as the process. Test threads, tokio workers and the blocking pool
//! come and go without killing the servers they started.
//!
//! [`sigterm`] sends SIGTERM to a process id.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;

use std::ffi::{c_int, c_ulong};

const SIGTERM: c_int = 15;
const SIGKILL: c_ulong = 9;
const PR_SET_PDEATHSIG: c_int = 1;

unsafe extern "C" {
    fn kill(pid: c_int, sig: c_int) -> c_int;
    // Variadic in C; the kernel reads the arguments as unsigned longs.
    fn prctl(option: c_int, ...) -> c_int;
    fn getppid() -> c_int;
}

type Request = (Command, mpsc::Sender<io::Result<Child>>);

/// The long-lived thread that forks every tied child.
fn spawner() -> &'static mpsc::Sender<Request> {
    static SPAWNER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name("tied-child-spawner".into())
            .spawn(move || {
                // Runs until the process exits: the sender is in a static.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the tied-child spawner thread");
        tx
    })
}

/// Spawns `cmd` so that the kernel kills it when this process exits.
pub fn spawn_tied(mut cmd: Command) -> io::Result<Child> {
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, getppid); it allocates nothing.
    let parent = std::process::id() as i32;
    unsafe {
        cmd.pre_exec(move || {
            if prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if getppid() != parent {
                return Err(io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner()
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("tied-child spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("tied-child spawner thread did not answer"))?
}

/// Sends SIGTERM to `pid`.
pub fn sigterm(pid: u32) -> io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    if unsafe { kill(pid, SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tied_children_run_and_stop_on_sigterm() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut child = spawn_tied(cmd).unwrap();
        assert!(child.try_wait().unwrap().is_none());
        sigterm(child.id()).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
    }

    #[test]
    fn a_tied_child_outlives_the_thread_that_asked_for_it() {
        let mut child = thread::spawn(|| {
            let mut cmd = Command::new("sleep");
            cmd.arg("30");
            spawn_tied(cmd).unwrap()
        })
        .join()
        .unwrap();
        thread::sleep(Duration::from_millis(100));
        assert!(
            child.try_wait().unwrap().is_none(),
            "child died with its requesting thread"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
