//! What can go wrong while storing a recording, classified.
//!
//! Contract: every S3 SDK error is turned into one [`UploadError`] variant
//! by [`from_sdk`], so callers match on meaning (unreachable, access denied,
//! no such bucket) rather than on SDK types. [`UploadError::is_retryable`]
//! says whether trying again later may help; [`UploadError::is_destination_fault`]
//! whether the operator's storage settings are to blame (the recorder
//! itself is fine).

use std::path::PathBuf;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use service::ConfigError;

use super::config::KeyError;

/// Why a recording (or its metadata) could not be stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The `[storage]` settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The recording's key could not be made from the template.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// No connection to the S3 endpoint, or no answer in time.
    #[error("storage endpoint {endpoint} is unreachable ({operation}): {detail}")]
    Unreachable {
        endpoint: String,
        operation: &'static str,
        detail: String,
    },
    /// The credentials were refused, or lack the permission.
    #[error("access denied to bucket {bucket} at {endpoint} ({operation}): {code}: {message}")]
    AccessDenied {
        endpoint: String,
        bucket: String,
        operation: &'static str,
        code: String,
        message: String,
    },
    /// The bucket does not exist.
    #[error("no such bucket: {bucket} at {endpoint}")]
    NoSuchBucket { endpoint: String, bucket: String },
    /// The AWS credential chain found no credentials.
    #[error(
        "no S3 credentials ({detail}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         or another source of the AWS credential chain"
    )]
    Credentials { detail: String },
    /// Any other refusal by the S3 server.
    #[error("S3 {operation} of {bucket}/{key} failed (HTTP {status}): {code}: {message}")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        /// HTTP status; 0 if there was no response.
        status: u16,
        code: String,
        message: String,
    },
    /// A local file operation failed.
    #[error("cannot {operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// More than S3's 10,000 parts.
    #[error("recording too large for one S3 object: {bytes} bytes in 10000 parts")]
    TooLarge { bytes: u64 },
    /// The [`super::UploadSender`] was dropped or aborted before `finish`;
    /// whatever was stored so far has been discarded.
    #[error("the recording was abandoned before finish(); the partial upload was discarded")]
    Abandoned,
    /// The upload task ended unexpectedly (a bug).
    #[error("the upload task failed: {0}")]
    Internal(String),
}

impl UploadError {
    /// Whether trying again (later, or against the same settings) may help:
    /// the endpoint was unreachable, or the server had a transient fault.
    pub fn is_retryable(&self) -> bool {
        match self {
            UploadError::Unreachable { .. } => true,
            UploadError::S3 { status, code, .. } => {
                *status >= 500
                    || matches!(
                        code.as_str(),
                        "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable"
                    )
            }
            UploadError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }

    /// Whether the storage settings (config, credentials, bucket,
    /// permissions, folder) are to blame rather than the recorder.
    pub fn is_destination_fault(&self) -> bool {
        match self {
            UploadError::Config(_)
            | UploadError::Key(_)
            | UploadError::AccessDenied { .. }
            | UploadError::NoSuchBucket { .. }
            | UploadError::Credentials { .. } => true,
            UploadError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::ReadOnlyFilesystem
                    | std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::NotADirectory
            ),
            _ => false,
        }
    }
}

/// Why [`super::UploadSender::send`] did not queue a chunk. The chunk is
/// lost either way: the recording can no longer be complete; stop it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The upload has ended (finished, aborted, or failed: the upload
    /// task's result says why).
    #[error("the upload has ended")]
    Ended,
    /// The queue stayed full for the stall limit: storage is not keeping up.
    #[error("the upload queue stayed full for {0:?}: storage is not keeping up")]
    Stalled(std::time::Duration),
}

/// Where an S3 call went, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    pub operation: &'static str,
    pub endpoint: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
}

/// Classifies an SDK error.
pub(crate) fn from_sdk<E>(err: SdkError<E, HttpResponse>, at: At<'_>) -> UploadError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = chain(&err);
    let unreachable = |detail: String| UploadError::Unreachable {
        endpoint: at.endpoint.to_owned(),
        operation: at.operation,
        detail,
    };
    match &err {
        SdkError::TimeoutError(_) => unreachable(format!("no answer in time: {detail}")),
        SdkError::DispatchFailure(failure) => {
            if failure.is_timeout() {
                unreachable(format!("connect timed out: {detail}"))
            } else if failure.is_io() {
                unreachable(detail)
            } else if detail.to_ascii_lowercase().contains("credentials") {
                UploadError::Credentials { detail }
            } else {
                unreachable(detail)
            }
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = err.code().unwrap_or_default().to_owned();
            let message = err.message().unwrap_or_default().to_owned();
            classify_service(at, status, code, message)
        }
        SdkError::ResponseError(response) => UploadError::S3 {
            operation: at.operation,
            bucket: at.bucket.to_owned(),
            key: at.key.to_owned(),
            status: response.raw().status().as_u16(),
            code: String::new(),
            message: detail,
        },
        _ if detail.to_ascii_lowercase().contains("credentials") => {
            UploadError::Credentials { detail }
        }
        _ => UploadError::S3 {
            operation: at.operation,
            bucket: at.bucket.to_owned(),
            key: at.key.to_owned(),
            status: 0,
            code: String::new(),
            message: detail,
        },
    }
}

/// `err` and its sources, `: `-separated, each said once.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let said = e.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = e.source();
    }
    text
}

fn classify_service(at: At<'_>, status: u16, code: String, message: String) -> UploadError {
    const DENIED: [&str; 7] = [
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidToken",
        "ExpiredToken",
    ];
    // HEAD answers carry no body, hence no code: the status tells.
    let headless = code.is_empty() || code == "NotFound" || code == "Forbidden";
    if code == "NoSuchBucket" || (headless && status == 404 && at.operation == "HeadBucket") {
        UploadError::NoSuchBucket {
            endpoint: at.endpoint.to_owned(),
            bucket: at.bucket.to_owned(),
        }
    } else if DENIED.contains(&code.as_str()) || (headless && status == 403) {
        UploadError::AccessDenied {
            endpoint: at.endpoint.to_owned(),
            bucket: at.bucket.to_owned(),
            operation: at.operation,
            code: if code.is_empty() {
                "Forbidden".into()
            } else {
                code
            },
            message,
        }
    } else {
        UploadError::S3 {
            operation: at.operation,
            bucket: at.bucket.to_owned(),
            key: at.key.to_owned(),
            status,
            code,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: At<'static> = At {
        operation: "HeadBucket",
        endpoint: "http://s3.test",
        bucket: "recs",
        key: "",
    };

    #[test]
    fn service_answers_are_classified() {
        let e = classify_service(AT, 404, String::new(), String::new());
        assert!(matches!(e, UploadError::NoSuchBucket { .. }), "{e:?}");
        assert!(e.is_destination_fault() && !e.is_retryable());
        let e = classify_service(AT, 403, String::new(), String::new());
        assert!(matches!(e, UploadError::AccessDenied { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "access denied to bucket recs at http://s3.test (HeadBucket): Forbidden: "
        );
        let put = At {
            operation: "UploadPart",
            ..AT
        };
        let e = classify_service(put, 403, "SignatureDoesNotMatch".into(), "bad".into());
        assert!(matches!(e, UploadError::AccessDenied { .. }), "{e:?}");
        let e = classify_service(put, 404, "NoSuchUpload".into(), "gone".into());
        assert!(matches!(e, UploadError::S3 { status: 404, .. }), "{e:?}");
        assert!(!e.is_retryable());
        let e = classify_service(put, 503, "SlowDown".into(), String::new());
        assert!(e.is_retryable() && !e.is_destination_fault());
    }
}
