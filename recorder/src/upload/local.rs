//! The local backend: a file below `folder`.
//!
//! Contract: the recording is written to a hidden temporary file beside its
//! final path (`.NAME.PID-N.partial`, folders created as needed) while the
//! meeting goes on; `finish` flushes and fsyncs it, renames it to
//! `folder/KEY` (replacing a file of that name) and fsyncs the folder, so
//! the final name only ever holds a complete recording. On failure or
//! abandonment the temporary file is removed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::AsyncWriteExt;

use super::error::UploadError;
use super::queue::{Receiver, Recv};
use super::{UploadMetrics, UploadSummary};

/// A recording being written.
pub(crate) struct LocalFile {
    key: String,
    path: PathBuf,
    temp: PathBuf,
    file: tokio::fs::File,
    metrics: UploadMetrics,
}

fn io_err(operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> UploadError {
    let path = path.to_path_buf();
    move |source| UploadError::Io {
        operation,
        path,
        source,
    }
}

/// `.NAME.PID-N.partial` beside `path`: unique within this process, and
/// never mistaken for a finished recording.
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{n}.partial", std::process::id()))
}

/// Creates `path`'s folder if needed.
fn create_parent(path: &Path) -> Result<(), UploadError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err("create folder", parent))?;
    }
    Ok(())
}

/// fsyncs `path`'s folder so a rename into it survives a crash.
fn sync_parent(path: &Path) -> Result<(), UploadError> {
    if let Some(parent) = path.parent() {
        fs::File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(io_err("sync folder", parent))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` durably: temporary file, fsync, rename, fsync
/// of the folder. Blocking.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), UploadError> {
    create_parent(path)?;
    let temp = temp_path(path);
    let result = (|| {
        let mut file = fs::File::create(&temp).map_err(io_err("create", &temp))?;
        file.write_all(bytes).map_err(io_err("write", &temp))?;
        file.sync_all().map_err(io_err("sync", &temp))?;
        fs::rename(&temp, path).map_err(io_err("rename into", path))?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Checks that `folder` exists (creating it) and takes new files.
pub(crate) fn check(folder: &Path) -> Result<(), UploadError> {
    write_atomic(&folder.join(".storage-check"), b"ok")?;
    let probe = folder.join(".storage-check");
    fs::remove_file(&probe).map_err(io_err("remove", &probe))
}

impl LocalFile {
    /// Creates the folders and the temporary file of `folder/key`.
    pub(crate) async fn create(
        folder: &Path,
        key: &str,
        metrics: UploadMetrics,
    ) -> Result<LocalFile, UploadError> {
        let path = folder.join(key);
        let temp = temp_path(&path);
        let (p, t) = (path.clone(), temp.clone());
        let file = tokio::task::spawn_blocking(move || {
            create_parent(&p)?;
            fs::File::create(&t).map_err(io_err("create", &t))
        })
        .await
        .map_err(|e| UploadError::Internal(e.to_string()))??;
        Ok(LocalFile {
            key: key.to_owned(),
            path,
            temp,
            file: tokio::fs::File::from_std(file),
            metrics,
        })
    }

    /// The final path, `folder/key`.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes what `rx` yields until the sender finishes, then makes the
    /// file durable under its final name; removes it on failure.
    pub(crate) async fn run(mut self, rx: Receiver) -> Result<UploadSummary, UploadError> {
        let started = Instant::now();
        let result = self.pump(&rx).await;
        rx.close();
        match result {
            Ok(bytes) => {
                tracing::info!(bytes, path = %self.path.display(), "recording written");
                Ok(UploadSummary {
                    location: self.path.display().to_string(),
                    key: self.key,
                    bytes,
                    parts: 0,
                    elapsed: started.elapsed(),
                })
            }
            Err(e) => {
                drop(self.file);
                if let Err(rm) = tokio::fs::remove_file(&self.temp).await {
                    tracing::warn!(path = %self.temp.display(), error = %rm, "could not remove the partial recording");
                }
                Err(e)
            }
        }
    }

    async fn pump(&mut self, rx: &Receiver) -> Result<u64, UploadError> {
        let mut total = 0u64;
        loop {
            match rx.recv().await {
                Recv::Chunk(chunk) => {
                    self.file
                        .write_all(&chunk)
                        .await
                        .map_err(io_err("write", &self.temp))?;
                    total += chunk.len() as u64;
                    self.metrics.add_bytes(chunk.len() as u64);
                }
                Recv::Finished => break,
                Recv::Abandoned => return Err(UploadError::Abandoned),
            }
        }
        self.file
            .flush()
            .await
            .map_err(io_err("write", &self.temp))?;
        self.file
            .sync_all()
            .await
            .map_err(io_err("sync", &self.temp))?;
        tokio::fs::rename(&self.temp, &self.path)
            .await
            .map_err(io_err("rename into", &self.path))?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || sync_parent(&path))
            .await
            .map_err(|e| UploadError::Internal(e.to_string()))??;
        Ok(total)
    }
}
