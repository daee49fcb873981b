//! A bare HTTP/1.1 GET over TCP for tests: enough to read what the sfu's
//! HTTP routes answer (status, headers, body) without an HTTP client crate.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One answer: the status code, the head (status line and headers) as
/// text, and the body's bytes.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("the body is not JSON")
    }
}

/// `GET path` on `addr` (`Connection: close`), read to the end within 10 s.
pub async fn get(addr: SocketAddr, path: &str) -> Result<Answer> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .context("no answer within 10 s")??;
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("an incomplete answer: {}", String::from_utf8_lossy(&raw));
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(Answer {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    })
}
