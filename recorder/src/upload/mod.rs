//! Where a recording's bytes go, written while the meeting goes on.
//!
//! Contract:
//!
//! - [`Destination`] (`[storage]`) says where: a local folder or an S3
//!   bucket (AWS or S3-compatible), and how keys are named.
//! - [`Storage::connect`] validates it and, for S3, builds one client
//!   (credentials from the standard AWS chain, or [`UploadOptions::credentials`]);
//!   keep one `Storage` per process and share it (it is a cheap `Clone`).
//! - [`Storage::start`] begins one recording: for S3 it creates the
//!   multipart upload before returning, so a wrong bucket, refused
//!   credentials or an unreachable endpoint fail here, within
//!   [`UploadOptions::control_timeout`] (12 s by default). It returns an
//!   [`UploadSender`] to feed from the producing thread and an [`UploadTask`]
//!   (a tokio task) whose result is the [`UploadSummary`] or the
//!   [`UploadError`].
//! - Memory per recording is bounded: the sender's queue holds at most
//!   [`UploadOptions::queue_bytes`] (plus one chunk), the S3 backend one part
//!   being uploaded (see [`UploadOptions::part_size`]).
//! - [`Storage::put_metadata`] writes a JSON document beside a recording
//!   ([`metadata_key`]: the extension replaced by `.json`).
//! - [`UploadMetrics`] counts bytes stored, retries and failures across
//!   every recording of a `Storage`, for `/metrics`.
//!
//! Must run inside a tokio runtime (multi-threaded: [`UploadSender::send`]
//! blocks its thread and must not be called from async code).

mod config;
mod error;
mod local;
mod queue;
mod s3;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use service::Validate;
use tracing::Instrument;

pub use aws_sdk_s3::config::Credentials;
pub use config::{
    content_type, metadata_key, utc_stamp, Destination, KeyError, RecordingNames, StorageKind,
    MAX_KEY_BYTES, PLACEHOLDERS,
};
pub use error::{SendError, UploadError};
pub use queue::UploadSender;
pub use s3::{MAX_PARTS, MIN_PART_SIZE};

/// The task storing one recording; await it after [`UploadSender::finish`].
/// Dropping it detaches the task (the upload still completes).
pub type UploadTask = tokio::task::JoinHandle<Result<UploadSummary, UploadError>>;

/// Tuning of uploads; `UploadOptions::default()` suits production.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// S3 part size (all parts but the last); raised to S3's minimum of
    /// 5 MiB. Grows by this much every 1000 parts so that 10,000 parts hold
    /// long recordings. Default 5 MiB.
    pub part_size: usize,
    /// Bytes the sender's queue holds before `send` blocks. Default 4 MiB.
    pub queue_bytes: usize,
    /// How long `send` blocks on a full queue before giving up with
    /// [`SendError::Stalled`]. Default 30 s.
    pub send_stall_limit: Duration,
    /// Tries per S3 part on retryable errors (each try itself may be
    /// retried once by the SDK). Default 3.
    pub part_attempts: u32,
    /// Wait before a part's second try; doubles each time (at most 10 s).
    /// Default 1 s.
    pub part_backoff: Duration,
    /// TCP connect timeout to the S3 endpoint. Default 5 s.
    pub connect_timeout: Duration,
    /// Longest silence while reading an S3 answer. Default 30 s.
    pub read_timeout: Duration,
    /// Longest single attempt of an S3 call (bounds a part upload). Default 120 s.
    pub part_timeout: Duration,
    /// Longest S3 control call, all attempts included: creating, aborting,
    /// checking, metadata. Bounds [`Storage::start`]. Default 12 s.
    pub control_timeout: Duration,
    /// S3 credentials to use instead of the standard AWS chain (tests).
    pub credentials: Option<Credentials>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            part_size: MIN_PART_SIZE,
            queue_bytes: 4 * 1024 * 1024,
            send_stall_limit: Duration::from_secs(30),
            part_attempts: 3,
            part_backoff: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            part_timeout: Duration::from_secs(120),
            control_timeout: Duration::from_secs(12),
            credentials: None,
        }
    }
}

/// Counters across all recordings of a [`Storage`]; clones share them.
#[derive(Debug, Clone, Default)]
pub struct UploadMetrics {
    /// Bytes stored: S3 parts acknowledged, or written to local files.
    pub bytes: Arc<AtomicU64>,
    /// Recordings (and metadata documents) that could not be stored,
    /// including failed starts; abandoned recordings are not counted.
    pub failures: Arc<AtomicU64>,
    /// S3 part uploads tried again after a retryable error.
    pub retries: Arc<AtomicU64>,
    /// Recordings stored completely.
    pub completed: Arc<AtomicU64>,
}

impl UploadMetrics {
    /// Bytes stored so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Failed recordings and metadata writes so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Part retries so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Completed recordings so far.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `result`'s outcome and passes it on.
    fn count<T>(&self, result: Result<T, UploadError>) -> Result<T, UploadError> {
        match &result {
            Err(UploadError::Abandoned) => {}
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
        }
        result
    }
}

/// How a stored recording turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSummary {
    /// `s3://bucket/key`, or the local file's path.
    pub location: String,
    /// The object key (the path below `folder` for local storage).
    pub key: String,
    /// Bytes stored.
    pub bytes: u64,
    /// S3 parts (0 for an empty recording and for local storage).
    pub parts: u32,
    /// From the first byte taken to the end.
    pub elapsed: Duration,
}

/// A destination ready to take recordings; see the module documentation.
#[derive(Debug, Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dest: Destination,
    backend: Backend,
    options: UploadOptions,
    metrics: UploadMetrics,
}

#[derive(Debug)]
enum Backend {
    Local(PathBuf),
    S3(s3::Bucket),
}

impl Storage {
    /// Validates `dest` and prepares it with default options. Makes no
    /// network call (see [`Storage::check`]).
    pub async fn connect(dest: &Destination) -> Result<Storage, UploadError> {
        Storage::connect_with(dest, UploadOptions::default()).await
    }

    /// [`Storage::connect`] with `options`.
    pub async fn connect_with(
        dest: &Destination,
        options: UploadOptions,
    ) -> Result<Storage, UploadError> {
        dest.validate()?;
        let backend = match dest.kind {
            StorageKind::Local => Backend::Local(dest.folder.clone()),
            StorageKind::S3 => Backend::S3(s3::Bucket::new(dest, &options).await),
        };
        Ok(Storage {
            inner: Arc::new(Inner {
                dest: dest.clone(),
                backend,
                options,
                metrics: UploadMetrics::default(),
            }),
        })
    }

    /// The destination this storage writes to.
    pub fn destination(&self) -> &Destination {
        &self.inner.dest
    }

    /// The counters of every recording stored through this storage.
    pub fn metrics(&self) -> &UploadMetrics {
        &self.inner.metrics
    }

    /// The key [`Storage::start`] would give the recording `names`.
    pub fn key_for(&self, names: &RecordingNames) -> Result<String, UploadError> {
        Ok(self.inner.dest.render_key(names)?)
    }

    /// Whether the destination takes recordings now: S3 `HeadBucket`
    /// (bucket exists, credentials accepted), or a test file in the folder.
    pub async fn check(&self) -> Result<(), UploadError> {
        match &self.inner.backend {
            Backend::S3(bucket) => bucket.check().await,
            Backend::Local(folder) => {
                let folder = folder.clone();
                tokio::task::spawn_blocking(move || local::check(&folder))
                    .await
                    .map_err(|e| UploadError::Internal(e.to_string()))?
            }
        }
    }

    /// Begins storing the recording `names`; see the module documentation.
    pub async fn start(
        &self,
        names: &RecordingNames,
    ) -> Result<(UploadSender, UploadTask), UploadError> {
        let metrics = self.inner.metrics.clone();
        let result = self.start_inner(names).await;
        metrics.count(result)
    }

    async fn start_inner(
        &self,
        names: &RecordingNames,
    ) -> Result<(UploadSender, UploadTask), UploadError> {
        let key = self.key_for(names)?;
        let options = &self.inner.options;
        let metrics = self.inner.metrics.clone();
        let span = tracing::info_span!("upload", key = %key, kind = ?self.inner.dest.kind);
        let (tx, rx) = queue::channel(options.queue_bytes.max(1), options.send_stall_limit);
        let task = match &self.inner.backend {
            Backend::S3(bucket) => {
                let content_type = content_type(&names.ext);
                let upload_id = bucket
                    .create(&key, content_type)
                    .instrument(span.clone())
                    .await?;
                tracing::info!(parent: &span, upload_id, "multipart upload started");
                let upload = s3::Multipart {
                    bucket: bucket.clone(),
                    key,
                    upload_id,
                    content_type,
                    options: options.clone(),
                    metrics: metrics.clone(),
                };
                tokio::spawn(
                    async move { finished(&metrics, upload.run(rx).await) }.instrument(span),
                )
            }
            Backend::Local(folder) => {
                let file = local::LocalFile::create(folder, &key, metrics.clone())
                    .instrument(span.clone())
                    .await?;
                tracing::info!(parent: &span, path = %file.path().display(), "recording file created");
                tokio::spawn(async move { finished(&metrics, file.run(rx).await) }.instrument(span))
            }
        };
        Ok((tx, task))
    }

    /// Writes `json` (pretty-printed) beside the recording `recording_key`
    /// and returns the metadata's key ([`metadata_key`]). Replaces an
    /// earlier document of that key.
    pub async fn put_metadata(
        &self,
        recording_key: &str,
        json: &impl serde::Serialize,
    ) -> Result<String, UploadError> {
        let result = self.put_metadata_inner(recording_key, json).await;
        self.inner.metrics.count(result)
    }

    async fn put_metadata_inner(
        &self,
        recording_key: &str,
        json: &impl serde::Serialize,
    ) -> Result<String, UploadError> {
        let key = metadata_key(recording_key);
        let mut body = serde_json::to_vec_pretty(json)
            .map_err(|e| UploadError::Internal(format!("metadata is not JSON: {e}")))?;
        body.push(b'\n');
        match &self.inner.backend {
            Backend::S3(bucket) => {
                bucket
                    .put(&key, Bytes::from(body), "application/json")
                    .await?
            }
            Backend::Local(folder) => {
                let path = folder.join(&key);
                tokio::task::spawn_blocking(move || local::write_atomic(&path, &body))
                    .await
                    .map_err(|e| UploadError::Internal(e.to_string()))??;
            }
        }
        Ok(key)
    }
}

/// Counts a finished upload and logs its failure.
fn finished(
    metrics: &UploadMetrics,
    result: Result<UploadSummary, UploadError>,
) -> Result<UploadSummary, UploadError> {
    match &result {
        Ok(_) => {
            metrics.completed.fetch_add(1, Ordering::Relaxed);
        }
        Err(UploadError::Abandoned) => tracing::info!("recording abandoned; upload discarded"),
        Err(e) => tracing::error!(error = %e, "recording could not be stored"),
    }
    metrics.count(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_invalid_destination_is_refused_by_connect() {
        let dest = Destination {
            kind: StorageKind::S3,
            ..Destination::default()
        };
        let err = Storage::connect(&dest).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "config key `storage.bucket`: required for s3"
        );
        assert!(err.is_destination_fault());
    }

    #[test]
    fn failures_are_counted_but_abandonment_is_not() {
        let m = UploadMetrics::default();
        let _ = m.count::<()>(Err(UploadError::Abandoned));
        assert_eq!(m.failures(), 0);
        let _ = m.count::<()>(Err(UploadError::TooLarge { bytes: 1 }));
        let _ = m
            .clone()
            .count::<()>(Err(UploadError::TooLarge { bytes: 1 }));
        assert_eq!(m.failures(), 2);
    }
}
