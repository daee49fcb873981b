//! `[storage]`: where recordings go, and how their object keys are named.
//!
//! Contract: [`Destination`] is plain serde data (unknown keys rejected,
//! defaults from `Default`); [`Validate`] names the first bad key as
//! `storage.KEY`. [`Destination::render_key`] turns the `key_template` and a
//! recording's [`RecordingNames`] into an object key (or a path below
//! `folder`): placeholder values are sanitised so that a room name can never
//! climb out of the folder or bucket prefix. Credentials are never part of
//! this config: S3 takes them from the standard AWS chain.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use service::{ConfigError, Validate};

/// The section name the keys in validation errors start with.
pub const SECTION: &str = "storage";
/// The placeholders a `key_template` may use.
pub const PLACEHOLDERS: [&str; 4] = ["room", "session", "start", "ext"];
/// S3's limit on the length of an object key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// `kind`: which backend stores the recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Files below `folder` on this machine.
    #[default]
    Local,
    /// An S3 bucket (AWS or an S3-compatible server).
    S3,
}

/// `[storage]`: the destination of recordings.
///
/// ```toml
/// [storage]
/// kind = "s3"
/// endpoint = "https://minio.example.net"   # leave out for AWS
/// region = "us-east-1"
/// bucket = "recordings"
/// path_style = true                         # most S3-compatible servers
/// key_template = "{room}/{start}-{session}.{ext}"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Destination {
    /// `local` or `s3`.
    pub kind: StorageKind,
    /// local: the folder recordings are written below (created if missing).
    pub folder: PathBuf,
    /// s3: the endpoint URL of an S3-compatible server; leave out for AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// s3: the bucket's region (`us-east-1` suits most S3-compatible servers).
    pub region: String,
    /// s3: the bucket.
    pub bucket: String,
    /// s3: path-style addressing (`ENDPOINT/BUCKET/KEY`) instead of a
    /// bucket subdomain; most S3-compatible servers need it.
    pub path_style: bool,
    /// The object key (s3) or path below `folder` (local) of a recording,
    /// with placeholders `{room}`, `{session}`, `{start}` (UTC,
    /// `20261124T101500Z`) and `{ext}` (the container, e.g. `mp4`). The
    /// metadata JSON goes beside it, the extension replaced by `.json`.
    pub key_template: String,
}

impl Default for Destination {
    fn default() -> Self {
        Destination {
            kind: StorageKind::Local,
            folder: PathBuf::from("recordings"),
            endpoint: None,
            region: String::new(),
            bucket: String::new(),
            path_style: false,
            key_template: "{room}/{start}-{session}.{ext}".into(),
        }
    }
}

impl Destination {
    /// A local destination below `folder`, default template.
    pub fn local(folder: impl Into<PathBuf>) -> Self {
        Destination {
            folder: folder.into(),
            ..Destination::default()
        }
    }

    /// An S3 destination, default template, virtual-host addressing.
    pub fn s3(region: impl Into<String>, bucket: impl Into<String>) -> Self {
        Destination {
            kind: StorageKind::S3,
            region: region.into(),
            bucket: bucket.into(),
            ..Destination::default()
        }
    }

    /// The key of the recording called `names`: the template with each
    /// placeholder replaced by its sanitised value. Fails only if the key
    /// would be longer than S3 allows (the template itself is checked by
    /// [`Validate`]).
    pub fn render_key(&self, names: &RecordingNames) -> Result<String, KeyError> {
        let start = utc_stamp(names.start);
        let mut key = String::new();
        for piece in parse_template(&self.key_template).map_err(KeyError::Template)? {
            match piece {
                Piece::Text(text) => key.push_str(text),
                Piece::Placeholder("room") => key.push_str(&sanitize(&names.room)),
                Piece::Placeholder("session") => key.push_str(&sanitize(&names.session)),
                Piece::Placeholder("start") => key.push_str(&start),
                Piece::Placeholder("ext") => key.push_str(&sanitize(&names.ext)),
                Piece::Placeholder(other) => {
                    return Err(KeyError::Template(format!(
                        "unknown placeholder {{{other}}}"
                    )))
                }
            }
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLong(key.len()));
        }
        Ok(key)
    }
}

impl Validate for Destination {
    fn validate(&self) -> Result<(), ConfigError> {
        let key = |name: &str| format!("{SECTION}.{name}");
        check_template(&self.key_template)
            .map_err(|r| ConfigError::invalid(key("key_template"), r))?;
        match self.kind {
            StorageKind::Local => {
                if self.folder.as_os_str().is_empty() {
                    return Err(ConfigError::invalid(key("folder"), "required for local"));
                }
                let s3_only = [
                    ("endpoint", self.endpoint.is_some()),
                    ("region", !self.region.is_empty()),
                    ("bucket", !self.bucket.is_empty()),
                    ("path_style", self.path_style),
                ];
                if let Some((name, _)) = s3_only.iter().find(|(_, set)| *set) {
                    return Err(ConfigError::invalid(
                        key(name),
                        "only used when kind = \"s3\" (kind is \"local\")",
                    ));
                }
            }
            StorageKind::S3 => {
                if self.bucket.is_empty() {
                    return Err(ConfigError::invalid(key("bucket"), "required for s3"));
                }
                if self.bucket.contains(['/', ' ']) {
                    return Err(ConfigError::invalid(
                        key("bucket"),
                        "a bucket name has no '/' or spaces (put prefixes in key_template)",
                    ));
                }
                if self.region.is_empty() {
                    return Err(ConfigError::invalid(
                        key("region"),
                        "required for s3 (S3-compatible servers mostly accept \"us-east-1\")",
                    ));
                }
                if let Some(endpoint) = &self.endpoint {
                    let host = endpoint
                        .strip_prefix("http://")
                        .or_else(|| endpoint.strip_prefix("https://"));
                    if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
                        return Err(ConfigError::invalid(
                            key("endpoint"),
                            format!(
                                "{endpoint:?} is not an http:// or https:// URL (leave it out for AWS)"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// What a recording is called: the values of the key placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingNames {
    /// `{room}`: the meeting's room (its name or JID).
    pub room: String,
    /// `{session}`: the recording session's id.
    pub session: String,
    /// `{start}`: when the recording started.
    pub start: SystemTime,
    /// `{ext}`: the container's file extension, without the dot.
    pub ext: String,
}

impl RecordingNames {
    /// Names for an MP4 recording.
    pub fn new(room: impl Into<String>, session: impl Into<String>, start: SystemTime) -> Self {
        RecordingNames {
            room: room.into(),
            session: session.into(),
            start,
            ext: "mp4".into(),
        }
    }

    /// The same names with another container extension.
    pub fn with_ext(mut self, ext: impl Into<String>) -> Self {
        self.ext = ext.into();
        self
    }
}

/// Why a key could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{SECTION}.key_template: {0}")]
    Template(String),
    #[error("the recording's key is {0} bytes long; S3 allows {MAX_KEY_BYTES}")]
    TooLong(usize),
}

/// The key of the metadata JSON beside the recording `key`: the last
/// extension replaced by `.json` (`a/b.mp4` → `a/b.json`), or `.json`
/// appended when there is none or it already is `.json`.
pub fn metadata_key(key: &str) -> String {
    let name_start = key.rfind('/').map_or(0, |i| i + 1);
    match key[name_start..].rfind('.') {
        Some(dot) if dot > 0 && &key[name_start + dot..] != ".json" => {
            format!("{}.json", &key[..name_start + dot])
        }
        _ => format!("{key}.json"),
    }
}

/// The MIME type of a container extension.
pub fn content_type(ext: &str) -> &'static str {
    match ext.to_ascii_lowercase().as_str() {
        "mp4" | "m4v" => "video/mp4",
        "m4a" => "audio/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "flv" => "video/x-flv",
        "ogg" | "opus" => "audio/ogg",
        "ts" => "video/mp2t",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// `time` in UTC as `20261124T101500Z` (whole seconds; before 1970: 1970).
pub fn utc_stamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// A placeholder value as it may appear in a key: letters, digits and
/// `. _ - @ +` stay, anything else (`/`, spaces, `..` tricks) becomes `_`;
/// a leading dot becomes `_`; an empty value is `_`.
fn sanitize(value: &str) -> String {
    let mut out: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.replace_range(0..out.find(|c| c != '.').unwrap_or(out.len()), "_");
        if out.is_empty() {
            out.push('_');
        }
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

fn parse_template(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                pieces.push(Piece::Text(rest));
                break;
            }
            Some(at) if rest.as_bytes()[at] == b'}' => {
                return Err(format!("unmatched '}}' in {template:?}"));
            }
            Some(at) => {
                if at > 0 {
                    pieces.push(Piece::Text(&rest[..at]));
                }
                let after = &rest[at + 1..];
                let close = after
                    .find(['{', '}'])
                    .filter(|&i| after.as_bytes()[i] == b'}')
                    .ok_or_else(|| format!("unclosed '{{' in {template:?}"))?;
                pieces.push(Piece::Placeholder(&after[..close]));
                rest = &after[close + 1..];
            }
        }
    }
    Ok(pieces)
}

/// Why `template` cannot name recordings, if it cannot.
fn check_template(template: &str) -> Result<(), String> {
    if template.is_empty() {
        return Err("must not be empty".into());
    }
    let pieces = parse_template(template)?;
    let mut placeholders = Vec::new();
    for piece in &pieces {
        match piece {
            Piece::Placeholder(p) if PLACEHOLDERS.contains(p) => placeholders.push(*p),
            Piece::Placeholder(p) => {
                return Err(format!(
                    "unknown placeholder {{{p}}}; known: {{room}} {{session}} {{start}} {{ext}}"
                ))
            }
            Piece::Text(text) if text.contains('\\') || text.chars().any(char::is_control) => {
                return Err("no backslashes or control characters".into());
            }
            Piece::Text(_) => {}
        }
    }
    if !placeholders
        .iter()
        .any(|p| *p == "session" || *p == "start")
    {
        return Err(
            "must contain {session} or {start}, or every recording of a room gets the same key"
                .into(),
        );
    }
    if template.starts_with('/') || template.ends_with('/') || template.contains("//") {
        return Err("no leading, trailing or doubled '/'".into());
    }
    if template.split('/').any(|seg| seg == "." || seg == "..") {
        return Err("no '.' or '..' path segments".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn invalid(dest: &Destination) -> (String, String) {
        match dest.validate().unwrap_err() {
            ConfigError::Invalid { key, reason } => (key, reason),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(at(0)), "19700101T000000Z");
        // 2026-11-24 10:15:00 UTC
        assert_eq!(utc_stamp(at(1_795_515_300)), "20261124T101500Z");
        // Leap day and the last second of a year.
        assert_eq!(utc_stamp(at(951_782_400)), "20000229T000000Z");
        assert_eq!(utc_stamp(at(1_735_689_599)), "20241231T235959Z");
        assert_eq!(
            utc_stamp(UNIX_EPOCH - Duration::from_secs(5)),
            "19700101T000000Z"
        );
    }

    #[test]
    fn default_template_renders() {
        let names = RecordingNames::new("standup", "a1b2", at(1_795_515_300));
        let key = Destination::default().render_key(&names).unwrap();
        assert_eq!(key, "standup/20261124T101500Z-a1b2.mp4");
        assert_eq!(metadata_key(&key), "standup/20261124T101500Z-a1b2.json");
    }

    #[test]
    fn templates_render_every_placeholder() {
        let dest = Destination {
            key_template: "rec/{ext}/{room}-{session}-{start}.{ext}".into(),
            ..Destination::default()
        };
        let names = RecordingNames::new("r", "s", at(0)).with_ext("webm");
        assert_eq!(
            dest.render_key(&names).unwrap(),
            "rec/webm/r-s-19700101T000000Z.webm"
        );
    }

    #[test]
    fn values_cannot_climb_out_of_the_prefix() {
        let table = [
            ("../../etc/passwd", "__.._etc_passwd"),
            ("..", "_"),
            (".hidden", "_hidden"),
            ("", "_"),
            ("a b/c\\d", "a_b_c_d"),
            ("room@conference.meet.test", "room@conference.meet.test"),
            ("Ünïcode", "_n_code"),
        ];
        for (value, want) in table {
            assert_eq!(sanitize(value), want, "{value:?}");
        }
        let names = RecordingNames::new("../x", "../../y", at(0));
        let key = Destination::default().render_key(&names).unwrap();
        assert_eq!(key, "__x/19700101T000000Z-__.._y.mp4");
        assert!(!key.split('/').any(|s| s == ".."), "{key}");
    }

    #[test]
    fn overlong_keys_are_refused() {
        let names = RecordingNames::new("r".repeat(2000), "s", at(0));
        assert_eq!(
            Destination::default().render_key(&names),
            Err(KeyError::TooLong(2023))
        );
    }

    #[test]
    fn metadata_keys() {
        let table = [
            ("a/b.mp4", "a/b.json"),
            ("a/b", "a/b.json"),
            ("a.d/b", "a.d/b.json"),
            ("a/.b", "a/.b.json"),
            ("a/b.tar.gz", "a/b.tar.json"),
            ("a/b.json", "a/b.json.json"),
        ];
        for (key, want) in table {
            assert_eq!(metadata_key(key), want, "{key}");
        }
    }

    #[test]
    fn defaults_are_valid() {
        Destination::default().validate().unwrap();
        Destination::local("/var/lib/recordings")
            .validate()
            .unwrap();
        Destination::s3("us-east-1", "recs").validate().unwrap();
    }

    #[test]
    fn validation_names_the_key() {
        let s3 = Destination::s3("eu-west-1", "recs");
        let table: Vec<(Destination, &str, &str)> = vec![
            (
                Destination {
                    bucket: String::new(),
                    ..s3.clone()
                },
                "storage.bucket",
                "required for s3",
            ),
            (
                Destination {
                    region: String::new(),
                    ..s3.clone()
                },
                "storage.region",
                "required for s3",
            ),
            (
                Destination {
                    bucket: "a/b".into(),
                    ..s3.clone()
                },
                "storage.bucket",
                "no '/'",
            ),
            (
                Destination {
                    endpoint: Some("minio:9000".into()),
                    ..s3.clone()
                },
                "storage.endpoint",
                "not an http:// or https:// URL",
            ),
            (
                Destination {
                    endpoint: Some("http://".into()),
                    ..s3.clone()
                },
                "storage.endpoint",
                "not an http",
            ),
            (
                Destination {
                    folder: PathBuf::new(),
                    ..Destination::default()
                },
                "storage.folder",
                "required for local",
            ),
            (
                Destination {
                    bucket: "recs".into(),
                    ..Destination::default()
                },
                "storage.bucket",
                "only used when kind = \"s3\"",
            ),
            (
                Destination {
                    path_style: true,
                    ..Destination::default()
                },
                "storage.path_style",
                "only used when kind = \"s3\"",
            ),
            (
                Destination {
                    key_template: "{room}.{ext}".into(),
                    ..s3.clone()
                },
                "storage.key_template",
                "must contain {session} or {start}",
            ),
            (
                Destination {
                    key_template: "{room}/{sesion}".into(),
                    ..s3.clone()
                },
                "storage.key_template",
                "unknown placeholder {sesion}",
            ),
            (
                Destination {
                    key_template: "{room/{session}".into(),
                    ..s3.clone()
                },
                "storage.key_template",
                "unclosed '{'",
            ),
            (
                Destination {
                    key_template: "{session}}".into(),
                    ..s3.clone()
                },
                "storage.key_template",
                "unmatched '}'",
            ),
            (
                Destination {
                    key_template: "/abs/{session}".into(),
                    ..s3.clone()
                },
                "storage.key_template",
                "no leading",
            ),
            (
                Destination {
                    key_template: "a/../{session}".into(),
                    ..s3.clone()
                },
                "storage.key_template",
                "no '.' or '..'",
            ),
            (
                Destination {
                    key_template: String::new(),
                    ..s3.clone()
                },
                "storage.key_template",
                "must not be empty",
            ),
        ];
        for (dest, want_key, want_reason) in table {
            let (key, reason) = invalid(&dest);
            assert_eq!(key, want_key, "{dest:?}");
            assert!(
                reason.contains(want_reason),
                "{want_reason:?} not in {reason:?}"
            );
        }
        let err = Destination {
            bucket: String::new(),
            ..s3
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "config key `storage.bucket`: required for s3"
        );
    }

    #[test]
    fn parses_with_defaults_and_rejects_unknown_keys() {
        let dest: Destination = serde_json::from_str(
            r#"{"kind": "s3", "endpoint": "http://127.0.0.1:9000", "region": "us-east-1",
                "bucket": "recs", "path_style": true}"#,
        )
        .unwrap();
        assert_eq!(dest.kind, StorageKind::S3);
        assert_eq!(dest.key_template, Destination::default().key_template);
        dest.validate().unwrap();
        let local: Destination = serde_json::from_str(r#"{"folder": "/srv/rec"}"#).unwrap();
        assert_eq!(local, Destination::local("/srv/rec"));
        let err = serde_json::from_str::<Destination>(r#"{"secret_key": "x"}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `secret_key`"),
            "{err}"
        );
        let err = serde_json::from_str::<Destination>(r#"{"kind": "ftp"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `ftp`"), "{err}");
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("mp4"), "video/mp4");
        assert_eq!(content_type("FLV"), "video/x-flv");
        assert_eq!(content_type("bin"), "application/octet-stream");
    }
}
