//! The DTLS certificate the test participants use. GStreamer 1.22's DTLS
//! generates RSA certificates; str0m's DTLS (like other modern stacks)
//! accepts ECDSA only, so the participants bring a P-256 one.

use anyhow::Result;

/// A self-signed P-256 certificate and its key (PEM, certificate first)
/// and its SHA-256 fingerprint, made once per process with openssl.
pub fn ecdsa() -> Result<(String, String)> {
    static PEM: std::sync::OnceLock<std::result::Result<(String, String), String>> =
        std::sync::OnceLock::new();
    PEM.get_or_init(|| {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ])
            .args(["-days", "30", "-subj", "/CN=webrtc-test"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("openssl: {e}"))?;
        if !status.success() {
            return Err(format!("openssl failed: {status}"));
        }
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(&cert)
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let fingerprint = text
            .trim()
            .rsplit('=')
            .next()
            .unwrap_or_default()
            .to_owned();
        let cert = std::fs::read_to_string(cert).map_err(|e| e.to_string())?;
        let key = std::fs::read_to_string(key).map_err(|e| e.to_string())?;
        Ok((format!("{cert}{key}"), fingerprint))
    })
    .clone()
    .map_err(|e| anyhow::anyhow!(e))
}
