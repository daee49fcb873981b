//! A bare XMPP client over plain TCP, for probing a server in tests.
//!
//! Contract: [`RawXmpp`] writes the XML it is given and reads text until a
//! substring shows up; it does not parse XML. It knows just enough to open a
//! stream, log in with SASL ANONYMOUS or PLAIN (no TLS: loopback only) and
//! bind a resource. Use it to check what the server does (stream features,
//! MUC access rules), not as an application client: that is the
//! `xmpp-session` crate's job. Prosody quotes attributes with `'`, so
//! matching on `type='error'` and the like is reliable against it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long each step of a login may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// A client stream; see the module documentation.
#[derive(Debug)]
pub struct RawXmpp {
    tcp: TcpStream,
    /// Received and not yet consumed by [`RawXmpp::read_until`].
    pending: String,
    domain: String,
    jid: Option<String>,
}

impl RawXmpp {
    /// Connects to `addr` and opens a stream to `domain`; returns the client
    /// and the stream features the server offered (raw XML text).
    pub async fn connect(addr: SocketAddr, domain: &str) -> Result<(RawXmpp, String)> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let mut client = RawXmpp {
            tcp,
            pending: String::new(),
            domain: domain.into(),
            jid: None,
        };
        let features = client.open_stream().await?;
        Ok((client, features))
    }

    /// Logs in anonymously on `domain` and binds a resource.
    pub async fn login_anonymous(addr: SocketAddr, domain: &str) -> Result<RawXmpp> {
        let (mut client, features) = RawXmpp::connect(addr, domain).await?;
        if !features.contains("<mechanism>ANONYMOUS</mechanism>") {
            bail!("{domain} does not offer SASL ANONYMOUS: {features}");
        }
        client
            .send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
            .await?;
        client.finish_login().await?;
        Ok(client)
    }

    /// Logs in as `user@host` with SASL PLAIN and binds a resource.
    pub async fn login_plain(
        addr: SocketAddr,
        host: &str,
        user: &str,
        password: &str,
    ) -> Result<RawXmpp> {
        let (mut client, features) = RawXmpp::connect(addr, host).await?;
        if !features.contains("<mechanism>PLAIN</mechanism>") {
            bail!("{host} does not offer SASL PLAIN: {features}");
        }
        let creds = base64(format!("\0{user}\0{password}").as_bytes());
        client
            .send(&format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
            ))
            .await?;
        client.finish_login().await?;
        Ok(client)
    }

    /// The full JID the server bound, once logged in.
    pub fn jid(&self) -> Option<&str> {
        self.jid.as_deref()
    }

    /// Sends a stream header and returns the `<stream:features>` that answer it.
    pub async fn open_stream(&mut self) -> Result<String> {
        let header = format!(
            "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams'>",
            self.domain
        );
        self.send(&header).await?;
        let text = self.read_until("</stream:features>", STEP_TIMEOUT).await?;
        let start = text
            .find("<stream:features")
            .context("stream features without a start tag")?;
        Ok(text[start..].to_owned())
    }

    /// Writes raw XML.
    pub async fn send(&mut self, xml: &str) -> Result<()> {
        self.tcp
            .write_all(xml.as_bytes())
            .await
            .context("writing to the server")
    }

    /// Reads until `needle` has been received; returns everything received
    /// up to and including it (later text stays for the next call). Fails on
    /// timeout or when the server closes the connection.
    pub async fn read_until(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 8192];
        loop {
            if let Some(at) = self.pending.find(needle) {
                let rest = self.pending.split_off(at + needle.len());
                return Ok(std::mem::replace(&mut self.pending, rest));
            }
            let read = tokio::time::timeout_at(deadline, self.tcp.read(&mut buf)).await;
            match read {
                Err(_) => bail!(
                    "no {needle:?} within {timeout:?}; received: {}",
                    self.pending
                ),
                Ok(Ok(0)) => bail!(
                    "server closed the stream before {needle:?}; received: {}",
                    self.pending
                ),
                Ok(Ok(n)) => self.pending.push_str(&String::from_utf8_lossy(&buf[..n])),
                Ok(Err(e)) => return Err(e).context("reading from the server"),
            }
        }
    }

    /// Closes the stream politely.
    pub async fn close(mut self) -> Result<()> {
        self.send("</stream:stream>").await?;
        let _ = self
            .read_until("</stream:stream>", Duration::from_secs(2))
            .await;
        Ok(())
    }

    /// After `<auth>`: waits for success, restarts the stream, binds.
    async fn finish_login(&mut self) -> Result<()> {
        let answer = self.read_until("/>", STEP_TIMEOUT).await?;
        if !answer.contains("<success") {
            // The whole <failure> (condition and text), or what arrives soon.
            let more = match answer.contains("<failure") && !answer.contains("</failure>") {
                true => self.read_until("</failure>", Duration::from_secs(1)).await,
                false => self.read_until(">", Duration::from_millis(200)).await,
            };
            bail!("SASL failed: {answer}{}", more.unwrap_or_default());
        }
        self.open_stream().await?;
        self.send(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
        )
        .await?;
        let result = self.read_until("</iq>", STEP_TIMEOUT).await?;
        let jid = between(&result, "<jid>", "</jid>")
            .with_context(|| format!("bind failed: {result}"))?;
        self.jid = Some(jid.to_owned());
        Ok(())
    }
}

/// The text between the first `open` and the following `close`.
pub fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(&text[start..start + len])
}

/// Standard base64 with padding (SASL PLAIN needs nothing more).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
        assert_eq!(base64(b"\0focus\0secret"), "AGZvY3VzAHNlY3JldA==");
    }

    #[test]
    fn between_finds_the_first_pair() {
        assert_eq!(
            between("<jid>a@b/c</jid><jid>x</jid>", "<jid>", "</jid>"),
            Some("a@b/c")
        );
        assert_eq!(between("<jid>open", "<jid>", "</jid>"), None);
    }
}
