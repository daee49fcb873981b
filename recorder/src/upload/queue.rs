//! The hand-over between the thread that produces a recording's bytes
//! (a GStreamer streaming thread) and the async task that stores them.
//!
//! Contract: a queue bounded in *bytes*. [`UploadSender::send`] blocks the
//! calling thread while the queue is full, for at most the stall limit; a
//! chunk is always accepted into an empty queue, whatever its size, so the
//! queue holds at most `limit + one chunk`. The receiving task awaits
//! chunks without blocking its runtime. Either side ending is seen by the
//! other: a dropped receiver (the upload failed) makes `send` return
//! [`SendError::Ended`] at once, also for a sender blocked on a full queue.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use super::error::SendError;

/// How the producing side ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    Finished,
    Abandoned,
}

#[derive(Debug)]
struct State {
    chunks: VecDeque<Bytes>,
    bytes: usize,
    end: End,
    /// The receiver is gone: nothing more will be stored.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when room appears or the receiver closes.
    space: Condvar,
    /// Signalled when a chunk arrives or the sender ends.
    data: Notify,
    limit: usize,
    stall_limit: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the queue consistent (every
        // critical section is a few field updates), so poison is harmless.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writing end of an upload; feed it from any non-async thread.
///
/// - [`send`](Self::send) queues a chunk. It returns at once while fewer
///   than `queue_bytes` are queued; otherwise it blocks the thread until the
///   upload takes bytes away, for at most the stall limit. Do not call it
///   from async code (use `spawn_blocking`).
/// - [`finish`](Self::finish) marks the end of the recording: the upload
///   stores what is queued and completes. The task's result says how it went.
/// - [`abort`](Self::abort), or dropping the sender without `finish`,
///   discards the upload (no partial object or file is left).
///
/// `Send + Sync`: share it in an `Arc` between appsink callbacks.
#[must_use = "dropping an UploadSender without finish() discards the recording"]
#[derive(Debug)]
pub struct UploadSender {
    shared: Arc<Shared>,
}

/// The reading end, owned by the upload task.
#[derive(Debug)]
pub(crate) struct Receiver {
    shared: Arc<Shared>,
}

/// What the upload task gets next.
#[derive(Debug)]
pub(crate) enum Recv {
    Chunk(Bytes),
    Finished,
    Abandoned,
}

/// A queue holding about `limit` bytes whose `send` gives up after
/// `stall_limit`.
pub(crate) fn channel(limit: usize, stall_limit: Duration) -> (UploadSender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            chunks: VecDeque::new(),
            bytes: 0,
            end: End::Open,
            closed: false,
        }),
        space: Condvar::new(),
        data: Notify::new(),
        limit,
        stall_limit,
    });
    (
        UploadSender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl UploadSender {
    /// Queues `chunk`, blocking while the queue is full (at most the stall
    /// limit). Empty chunks are ignored.
    pub fn send(&self, chunk: Bytes) -> Result<(), SendError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let shared = &*self.shared;
        let mut state = shared.lock();
        let deadline = Instant::now() + shared.stall_limit;
        loop {
            if state.closed || state.end != End::Open {
                return Err(SendError::Ended);
            }
            if state.bytes == 0 || state.bytes + chunk.len() <= shared.limit {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SendError::Stalled(shared.stall_limit));
            }
            state = shared
                .space
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        state.bytes += chunk.len();
        state.chunks.push_back(chunk);
        drop(state);
        self.shared.data.notify_one();
        Ok(())
    }

    /// Ends the recording: the upload stores the queued bytes and completes.
    /// Never blocks. Calling it again, or after `abort`, does nothing.
    pub fn finish(&self) {
        self.end(End::Finished);
    }

    /// Discards the upload. Calling it after `finish` does nothing.
    pub fn abort(&self) {
        self.end(End::Abandoned);
    }

    /// Bytes queued and not yet taken by the upload.
    pub fn queued_bytes(&self) -> usize {
        self.shared.lock().bytes
    }

    /// Whether the upload still takes bytes (not finished, aborted or failed).
    pub fn is_open(&self) -> bool {
        let state = self.shared.lock();
        !state.closed && state.end == End::Open
    }

    fn end(&self, how: End) {
        let mut state = self.shared.lock();
        if state.end == End::Open {
            state.end = how;
            drop(state);
            self.shared.data.notify_one();
            // Wake other threads blocked in `send` on a shared sender.
            self.shared.space.notify_all();
        }
    }
}

impl Drop for UploadSender {
    fn drop(&mut self) {
        self.abort();
    }
}

impl Receiver {
    /// The next chunk, or how the sender ended once the queue is empty.
    pub(crate) async fn recv(&self) -> Recv {
        loop {
            // Registered before looking, so a notify in between is kept.
            let notified = self.shared.data.notified();
            {
                let mut state = self.shared.lock();
                if let Some(chunk) = state.chunks.pop_front() {
                    state.bytes -= chunk.len();
                    drop(state);
                    self.shared.space.notify_all();
                    return Recv::Chunk(chunk);
                }
                match state.end {
                    End::Finished => return Recv::Finished,
                    End::Abandoned => return Recv::Abandoned,
                    End::Open => {}
                }
            }
            notified.await;
        }
    }

    /// Stops taking bytes: queued chunks are dropped and senders get
    /// [`SendError::Ended`] from now on.
    pub(crate) fn close(&self) {
        let mut state = self.shared.lock();
        state.closed = true;
        state.chunks.clear();
        state.bytes = 0;
        drop(state);
        self.shared.space.notify_all();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    #[tokio::test]
    async fn chunks_arrive_in_order_then_the_end() {
        let (tx, rx) = channel(100, Duration::from_secs(1));
        tx.send(Bytes::from_static(b"ab")).unwrap();
        tx.send(Bytes::new()).unwrap();
        tx.send(Bytes::from_static(b"cd")).unwrap();
        tx.finish();
        assert!(matches!(rx.recv().await, Recv::Chunk(c) if c == "ab"));
        assert!(matches!(rx.recv().await, Recv::Chunk(c) if c == "cd"));
        assert!(matches!(rx.recv().await, Recv::Finished));
        assert_eq!(tx.send(chunk(1)), Err(SendError::Ended));
    }

    #[tokio::test]
    async fn dropping_the_sender_abandons() {
        let (tx, rx) = channel(100, Duration::from_secs(1));
        tx.send(chunk(3)).unwrap();
        drop(tx);
        assert!(matches!(rx.recv().await, Recv::Chunk(_)));
        assert!(matches!(rx.recv().await, Recv::Abandoned));
    }

    #[test]
    fn a_full_queue_stalls_then_gives_up() {
        let (tx, _rx) = channel(10, Duration::from_millis(50));
        // An oversized chunk still goes into an empty queue.
        tx.send(chunk(25)).unwrap();
        let started = Instant::now();
        assert_eq!(
            tx.send(chunk(1)),
            Err(SendError::Stalled(Duration::from_millis(50)))
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(tx.queued_bytes(), 25);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocked_sender_resumes_when_bytes_are_taken() {
        let (tx, rx) = channel(10, Duration::from_secs(10));
        let producer = std::thread::spawn(move || {
            for _ in 0..20 {
                tx.send(chunk(6)).unwrap();
                assert!(tx.queued_bytes() <= 10);
            }
            tx.finish();
        });
        let mut total = 0;
        loop {
            match rx.recv().await {
                Recv::Chunk(c) => total += c.len(),
                Recv::Finished => break,
                Recv::Abandoned => panic!("abandoned"),
            }
        }
        producer.join().unwrap();
        assert_eq!(total, 120);
    }

    #[test]
    fn a_closed_receiver_wakes_a_blocked_sender() {
        let (tx, rx) = channel(10, Duration::from_secs(30));
        tx.send(chunk(10)).unwrap();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(rx);
        });
        let started = Instant::now();
        assert_eq!(tx.send(chunk(5)), Err(SendError::Ended));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!tx.is_open());
        closer.join().unwrap();
    }
}
