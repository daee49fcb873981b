//! The S3 backend: one multipart upload per recording.
//!
//! Contract: `CreateMultipartUpload` when the recording starts (bounded by
//! the control timeout, so an unreachable endpoint fails `start` quickly);
//! then parts of at least `part_size` bytes (S3's minimum is 5 MiB; only the
//! last part may be smaller), each uploaded as soon as it is full, each
//! retried a few times with backoff on retryable errors; then
//! `CompleteMultipartUpload`. On any failure or abandonment the upload is
//! aborted (`AbortMultipartUpload`), so no parts linger in the bucket. At
//! most one part is held while it uploads, besides the sender's queue.

use std::time::{Duration, Instant};

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};

use super::config::Destination;
use super::error::{from_sdk, At, UploadError};
use super::queue::{Receiver, Recv};
use super::{UploadMetrics, UploadOptions, UploadSummary};

/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's most parts per upload.
pub const MAX_PARTS: u32 = 10_000;

/// A bucket and the client that reaches it.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    client: Client,
    bucket: String,
    /// For messages: the configured endpoint or AWS's.
    endpoint: String,
    control_timeout: Duration,
}

impl Bucket {
    /// Builds the client: region and endpoint from `dest`, credentials from
    /// `options` or else the standard AWS chain, bounded timeouts and retries.
    pub(crate) async fn new(dest: &Destination, options: &UploadOptions) -> Bucket {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .operation_attempt_timeout(options.part_timeout)
            .build();
        // Few SDK-level attempts: parts get their own retries on top.
        let retries = RetryConfig::standard()
            .with_max_attempts(2)
            .with_initial_backoff(Duration::from_millis(300))
            .with_max_backoff(Duration::from_secs(2));
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new(dest.region.clone()))
            .timeout_config(timeouts)
            .retry_config(retries);
        if let Some(endpoint) = &dest.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(credentials) = &options.credentials {
            loader = loader.credentials_provider(credentials.clone());
        }
        let sdk = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(dest.path_style);
        if dest.endpoint.is_some() {
            // S3-compatible servers differ in their support of the newer
            // flexible checksums; send them only where S3 requires them.
            config = config
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        let endpoint = dest
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", dest.region));
        Bucket {
            client: Client::from_conf(config.build()),
            bucket: dest.bucket.clone(),
            endpoint,
            control_timeout: options.control_timeout,
        }
    }

    fn at<'a>(&'a self, operation: &'static str, key: &'a str) -> At<'a> {
        At {
            operation,
            endpoint: &self.endpoint,
            bucket: &self.bucket,
            key,
        }
    }

    /// The control calls' whole-operation timeout (all attempts).
    fn control(&self) -> aws_sdk_s3::config::Builder {
        aws_sdk_s3::config::Builder::default().timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(self.control_timeout)
                .build(),
        )
    }

    /// `s3://bucket/key`.
    pub(crate) fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// `HeadBucket`: the bucket exists and the credentials may use it.
    pub(crate) async fn check(&self) -> Result<(), UploadError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .customize()
            .config_override(self.control())
            .send()
            .await
            .map_err(|e| from_sdk(e, self.at("HeadBucket", "")))?;
        Ok(())
    }

    /// `PutObject` of a small body (the metadata JSON).
    pub(crate) async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), UploadError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .customize()
            .config_override(self.control())
            .send()
            .await
            .map_err(|e| from_sdk(e, self.at("PutObject", key)))?;
        Ok(())
    }

    /// `CreateMultipartUpload`; returns the upload id.
    pub(crate) async fn create(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<String, UploadError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .customize()
            .config_override(self.control())
            .send()
            .await
            .map_err(|e| from_sdk(e, self.at("CreateMultipartUpload", key)))?;
        out.upload_id.ok_or_else(|| UploadError::S3 {
            operation: "CreateMultipartUpload",
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            status: 200,
            code: String::new(),
            message: "the answer has no UploadId".into(),
        })
    }

    /// Best-effort `AbortMultipartUpload`; failures are logged (a bucket
    /// lifecycle rule for incomplete uploads is the backstop).
    async fn abort(&self, key: &str, upload_id: &str) {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .customize()
            .config_override(self.control())
            .send()
            .await;
        match result {
            Ok(_) => tracing::info!("multipart upload aborted"),
            Err(e) => {
                let e = from_sdk(e, self.at("AbortMultipartUpload", key));
                tracing::warn!(error = %e, upload_id, "could not abort the multipart upload");
            }
        }
    }
}

/// One recording's multipart upload, from its first part to the end.
pub(crate) struct Multipart {
    pub bucket: Bucket,
    pub key: String,
    pub upload_id: String,
    pub content_type: &'static str,
    pub options: UploadOptions,
    pub metrics: UploadMetrics,
}

impl Multipart {
    /// Uploads what `rx` yields until the sender finishes, then completes;
    /// aborts on failure or abandonment.
    pub(crate) async fn run(self, rx: Receiver) -> Result<UploadSummary, UploadError> {
        let started = Instant::now();
        let result = self.pump(&rx).await;
        // Stop the producer at once on failure; nothing more is taken.
        rx.close();
        match result {
            Ok((bytes, parts)) => Ok(UploadSummary {
                location: self.bucket.location(&self.key),
                key: self.key,
                bytes,
                parts,
                elapsed: started.elapsed(),
            }),
            Err(e) => {
                self.bucket.abort(&self.key, &self.upload_id).await;
                Err(e)
            }
        }
    }

    /// The part size from part `number` on: `part_size` for the first
    /// thousand parts, growing by `part_size` every thousand after, so
    /// 10,000 parts reach ~55 × 1000 × `part_size` (275 GB at 5 MiB).
    fn part_target(&self, number: u32) -> usize {
        let base = self.options.part_size.max(MIN_PART_SIZE);
        base * (1 + (number.saturating_sub(1) / 1000) as usize)
    }

    async fn pump(&self, rx: &Receiver) -> Result<(u64, u32), UploadError> {
        let mut parts: Vec<CompletedPart> = Vec::new();
        let mut total: u64 = 0;
        let mut buf = BytesMut::with_capacity(self.part_target(1));
        loop {
            match rx.recv().await {
                Recv::Chunk(chunk) => {
                    total += chunk.len() as u64;
                    buf.extend_from_slice(&chunk);
                    let number = parts.len() as u32 + 1;
                    if buf.len() >= self.part_target(number) {
                        if number >= MAX_PARTS {
                            return Err(UploadError::TooLarge { bytes: total });
                        }
                        let body = buf.split().freeze();
                        parts.push(self.upload_part(number, body).await?);
                        buf.reserve(self.part_target(number + 1));
                    }
                }
                Recv::Finished => break,
                Recv::Abandoned => return Err(UploadError::Abandoned),
            }
        }
        if total == 0 {
            // A multipart upload needs a part; an empty recording is an
            // empty object.
            self.bucket.abort(&self.key, &self.upload_id).await;
            self.bucket
                .put(&self.key, Bytes::new(), self.content_type)
                .await?;
            return Ok((0, 0));
        }
        if !buf.is_empty() {
            let number = parts.len() as u32 + 1;
            parts.push(self.upload_part(number, buf.split().freeze()).await?);
        }
        let count = parts.len() as u32;
        self.complete(parts).await?;
        tracing::info!(bytes = total, parts = count, "recording uploaded");
        Ok((total, count))
    }

    /// `UploadPart` with up to `part_attempts` tries on retryable errors.
    async fn upload_part(&self, number: u32, body: Bytes) -> Result<CompletedPart, UploadError> {
        let len = body.len();
        let attempts = self.options.part_attempts.max(1);
        let mut backoff = self.options.part_backoff;
        let mut attempt = 1;
        loop {
            let result = self
                .bucket
                .client
                .upload_part()
                .bucket(&self.bucket.bucket)
                .key(&self.key)
                .upload_id(&self.upload_id)
                .part_number(number as i32)
                .content_length(len as i64)
                .body(ByteStream::from(body.clone()))
                .send()
                .await;
            match result {
                Ok(out) => {
                    self.metrics.add_bytes(len as u64);
                    tracing::debug!(part = number, bytes = len, attempt, "part uploaded");
                    return Ok(CompletedPart::builder()
                        .part_number(number as i32)
                        .set_e_tag(out.e_tag)
                        .set_checksum_crc32(out.checksum_crc32)
                        .set_checksum_crc32_c(out.checksum_crc32_c)
                        .set_checksum_crc64_nvme(out.checksum_crc64_nvme)
                        .set_checksum_sha1(out.checksum_sha1)
                        .set_checksum_sha256(out.checksum_sha256)
                        .build());
                }
                Err(e) => {
                    let e = from_sdk(e, self.bucket.at("UploadPart", &self.key));
                    if attempt == attempts || !e.is_retryable() {
                        return Err(e);
                    }
                    self.metrics.add_retry();
                    tracing::warn!(part = number, attempt, error = %e, ?backoff, "part upload failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    attempt += 1;
                }
            }
        }
    }

    async fn complete(&self, parts: Vec<CompletedPart>) -> Result<(), UploadError> {
        self.bucket
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| from_sdk(e, self.bucket.at("CompleteMultipartUpload", &self.key)))?;
        Ok(())
    }
}
