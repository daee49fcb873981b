//! Harness for the end-to-end tests: starts real components on loopback.
//!
//! Contract: everything a test starts here runs on free loopback ports, in a
//! temporary folder, as a child process that dies with the test (on drop,
//! and by the kernel if the test process itself dies). Nothing is left
//! behind: no processes, no folders, no fixed ports.
//!
//! - [`prosody`]: a private Prosody configured from the deployment template.
//! - [`ports`]: free loopback ports.
//! - [`process`]: child processes tied to the test process.
//! - [`raw_xmpp`]: a bare XMPP-over-TCP client for probing servers.
//! - [`meeting`]: the in-process sfu with a private Prosody; [`page`]: the
//!   built meeting page.

use std::path::{Path, PathBuf};

pub mod browsers;
pub mod gateway;
pub mod http;
pub mod meeting;
pub mod moto;
pub mod node;
pub mod page;
pub mod phone;
pub mod plane;
pub mod ports;
pub mod process;
pub mod prosody;
pub mod raw_xmpp;
pub mod recording;
pub mod rtmp;
pub mod sipp;
pub mod standins;
pub mod webrtc;

pub use ports::{free_port, free_ports};
pub use prosody::{Account, JwtOptions, Prosody, ProsodyOptions};
pub use raw_xmpp::RawXmpp;

/// The workspace root (the folder holding the workspace `Cargo.toml`,
/// `deploy/`, ...), found from this crate's manifest location at build time.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives one level below the workspace root")
        .to_path_buf()
}

/// Sends `tracing` output to the test's captured output (`RUST_LOG`
/// filters, `info` by default). Safe to call from every test.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Waits until `GET /health` on `addr` answers 200 (the sfu is logged in).
pub async fn wait_healthy(addr: std::net::SocketAddr, timeout: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(answer) = http::get(addr, "/health").await {
            if answer.status == 200 {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} never became healthy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn workspace_root_holds_the_deploy_folder() {
        let root = super::workspace_root();
        assert!(root.join("Cargo.toml").is_file());
        assert!(root.join("deploy/prosody").is_dir());
    }
}
