//! Plumbing every binary shares: the config file (TOML, unknown keys
//! rejected, defaults from `Default`, then [`Validate`]), logging with
//! `tracing`, the shutdown signal, and [`local_ip_towards`].
//!
//! Each binary's `main` does only this: parse flags, [`load`] its config,
//! [`init_logging`], and call its crate's `run(config, shutdown)`.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a config could not be used. Each variant names the file or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    /// A validation error for `key`.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Cross-key checks after parsing.
pub trait Validate {
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Reads `path` (or takes the defaults when `None`) and validates it.
pub fn load<T: DeserializeOwned + Default + Validate>(
    path: Option<&Path>,
) -> Result<T, ConfigError> {
    let config: T = read(path)?;
    config.validate()?;
    Ok(config)
}

/// Reads `path`, or takes the defaults when `None`, without validating.
pub fn read<T: DeserializeOwned + Default>(path: Option<&Path>) -> Result<T, ConfigError> {
    match path {
        None => Ok(T::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            parse(&text).map_err(|message| ConfigError::Parse {
                path: path.to_owned(),
                message,
            })
        }
    }
}

/// Replaces every non-empty `password` or `secret` value with `"(set)"`, so
/// `--print-config` shows which are set without showing them.
fn hide_secrets(v: &mut toml::Value) {
    match v {
        toml::Value::Table(t) => {
            for (key, value) in t.iter_mut() {
                let secret = key.contains("password") || key.contains("secret");
                match value {
                    toml::Value::String(s) if secret && !s.is_empty() => *s = "(set)".into(),
                    other => hide_secrets(other),
                }
            }
        }
        toml::Value::Array(a) => a.iter_mut().for_each(hide_secrets),
        _ => {}
    }
}

/// The local address the system would send from to reach `remote`.
/// Connecting a UDP socket sends nothing; it only picks the route.
pub fn local_ip_towards(remote: std::net::SocketAddr) -> std::io::Result<std::net::IpAddr> {
    let any: std::net::SocketAddr = if remote.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(any)?;
    socket.connect(remote)?;
    Ok(socket.local_addr()?.ip())
}

/// What every binary's `main` does before running: read the config file (or
/// the defaults), apply environment overrides, and either print the result
/// (`--print-config`, returns `None`) or validate it and start logging.
pub fn prepare<T, F>(
    path: Option<&Path>,
    print: bool,
    env: F,
    log: fn(&T) -> &LogConfig,
) -> Result<Option<T>, ConfigError>
where
    T: DeserializeOwned + Default + Serialize + Validate,
    F: FnOnce(&mut T),
{
    let mut config: T = read(path)?;
    env(&mut config);
    if print {
        let printed = toml::Value::try_from(&config)
            .map(|mut v| {
                hide_secrets(&mut v);
                v
            })
            .and_then(|v| toml::to_string(&v));
        match printed {
            Ok(text) => print!("{text}"),
            Err(e) => return Err(ConfigError::invalid("(all)", e.to_string())),
        }
        return Ok(None);
    }
    config.validate()?;
    init_logging(log(&config));
    Ok(Some(config))
}

/// The whole of a binary's `main` after parsing its flags: [`prepare`] the
/// config, run until Ctrl-C/SIGTERM, and turn the outcome into an exit code.
pub async fn main<T, F, Fut>(
    path: Option<&Path>,
    print: bool,
    env: fn(&mut T),
    log: fn(&T) -> &LogConfig,
    run: F,
) -> std::process::ExitCode
where
    T: DeserializeOwned + Default + Serialize + Validate,
    F: FnOnce(T, std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let result = match prepare(path, print, env, log) {
        Err(e) => Err(e.into()),
        Ok(None) => Ok(()),
        Ok(Some(config)) => run(config, Box::pin(shutdown_signal())).await,
    };
    exit_code(result)
}

/// Turns `main`'s result into an exit code, printing the error chain
/// (no backtrace) on failure.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Parses TOML text; the error text names the line and the key.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
}

/// `[log]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `info,xmpp_session=debug`.
    /// `RUST_LOG` overrides it.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Validate for LogConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        tracing_subscriber::EnvFilter::try_new(&self.level)
            .map(|_| ())
            .map_err(|e| ConfigError::invalid("log.level", e.to_string()))
    }
}

/// Installs the global `tracing` subscriber (stderr).
pub fn init_logging(config: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn printed_configs_hide_set_secrets_only() {
        let mut v: toml::Value = toml::from_str(
            "[xmpp]\npassword = \"hunter2\"\njid = \"a@b\"\n[sip.register]\npassword = \"\"\n[jwt]\nsecret = \"s\"\n",
        )
        .unwrap();
        hide_secrets(&mut v);
        let text = toml::to_string(&v).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("\"s\""),
            "{text}"
        );
        assert!(text.contains("jid = \"a@b\""), "{text}");
        assert_eq!(
            v["sip"]["register"]["password"].as_str(),
            Some(""),
            "empty stays empty"
        );
    }

    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Demo {
        log: LogConfig,
    }

    impl Validate for Demo {
        fn validate(&self) -> Result<(), ConfigError> {
            self.log.validate()
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse::<Demo>("[log]\nlevl = 'debug'\n").unwrap_err();
        assert!(e.contains("unknown field `levl`"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn bad_value_is_named_by_validate() {
        let d: Demo = parse("[log]\nlevel = 'info,=x=y'\n").unwrap();
        let e = d.validate().unwrap_err().to_string();
        assert!(e.starts_with("config key `log.level`"), "{e}");
    }

    #[test]
    fn missing_file_is_named() {
        let e = load::<Demo>(Some(Path::new("/nonexistent/x.toml")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/x.toml"), "{e}");
    }
}

/// Checks a binary's command line as a user meets it; shared by the
/// binaries' `tests/cli.rs`. Panics (test failures) with what went wrong.
#[doc(hidden)]
pub mod cli_check {
    use std::process::Command;

    fn run(bin: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(bin)
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap_or_else(|e| panic!("{bin}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// `--help` works and names `--config`; an unknown key in the config
    /// file fails with a message naming it; `--print-config` prints TOML
    /// that the binary accepts back.
    pub fn check(bin: &str) {
        let (ok, help) = run(bin, &["--help"]);
        assert!(ok && help.contains("--config"), "--help: {help}");

        let dir = std::env::temp_dir().join(format!("cli-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[xmpp]\nservr = \"127.0.0.1:5222\"\n").unwrap();
        let (ok, err) = run(bin, &["--config", bad.to_str().unwrap()]);
        assert!(!ok, "an unknown key must fail");
        assert!(
            err.contains("unknown field `servr`") && err.contains("line 2"),
            "{err}"
        );
        assert!(
            !err.contains("Stack backtrace"),
            "errors are for users: {err}"
        );

        let (ok, printed) = run(bin, &["--print-config"]);
        assert!(ok, "--print-config: {printed}");
        let good = dir.join("good.toml");
        std::fs::write(&good, &printed).unwrap();
        let (ok, again) = run(bin, &["--config", good.to_str().unwrap(), "--print-config"]);
        assert!(
            ok && again == printed,
            "printed config does not read back: {again}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
