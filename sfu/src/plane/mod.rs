//! The media plane: one tokio task that owns the UDP socket and every
//! participant's str0m [`Rtc`](str0m::Rtc), and a cloneable [`PlaneHandle`]
//! that talks to it over a channel.
//!
//! Contract (see docs/media-mapping.md): each participant gets one session
//! whose SDP offer we write (ICE-lite, BUNDLE, rtcp-mux, DTLS-SRTP with
//! AES-GCM preferred; str0m in its direct API and RTP mode, see `sdp` and
//! `endpoint`): its own lines `audio` (sendrecv, also its first audio slot)
//! and `video` (we only receive there, up to three simulcast layers by rid or
//! by `SIM` group), and a fixed number of receive slots (`audio_1..`,
//! `video_1..`). Every publisher's audio and video is forwarded to every
//! other participant of the same conference, each into a slot of that
//! receiver (video first come; a leaving publisher frees its slots, which
//! go to whoever waits). Audio slots go to the loudest publishers the
//! receiver subscribed to (`ReceiverAudioSubscription`, default everyone):
//! a publisher without a slot takes a free one, or a clearly quieter
//! holder's, from its first or second loud packet (`media::audio_route`).
//! Forwarding is per RTP packet: each slot's [`forward`]er
//! rewrites sequence numbers, timestamps and VP8 picture ids so the slot is
//! one continuous stream across publishers and layer switches, without
//! reading payloads beyond the clear VP8/H.264 headers (E2EE-safe); str0m
//! does SRTP, NACK/RTX (from its send buffer) and TWCC on each leg.
//! Keyframe requests on a slot go to the publisher's forwarded layer.
//!
//! Simulcast: every 250 ms (and when a slot changes) each receiver's layers
//! are chosen by `media::allocation` from its `ReceiverVideoConstraints`
//! (default 180p), the layers' measured bitrates and its bandwidth; a switch
//! happens on the target layer's next keyframe, which the plane asks for.
//! With [`PlaneConfig::bandwidth_estimation`], a receiver whose answer keeps
//! transport-cc also has str0m's bandwidth estimate bound its layers.
//!
//! The bridge channel (when started with [`start_with_channels`]): the plane
//! detects the dominant speaker of each conference from the RFC 6464 audio
//! levels of incoming audio and tells every endpoint; it tells each receiver
//! who is in which of its slots (`AudioSourcesMap`, `VideoSourcesMap`,
//! `ForwardedSources`); and it keeps what receivers ask for
//! (`ReceiverVideoConstraints`, `LastNChangedEvent`,
//! `ReceiverAudioSubscription`). Endpoint keys are
//! `room@conference.domain/nick`; messages name endpoints by nick (see
//! [`signal`]).
//!
//! An error in one session ends that session (reported as
//! [`PlaneEvent::Disconnected`]); garbage datagrams are counted and dropped.

mod driver;
mod endpoint;
mod forward;
pub mod sdp;
pub mod signal;
pub mod stun;

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::channel::Channels;

/// Where the plane listens and how many slots each participant gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaneConfig {
    /// UDP address to bind, e.g. `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// Address put in our ICE candidate (behind NAT); default: the bind ip.
    pub advertise: Option<IpAddr>,
    /// Audio slots per participant, including its own `audio` line.
    pub audio_slots: usize,
    /// Video receive slots per participant (`video_1..`); its own `video`
    /// line only receives.
    pub video_slots: usize,
    /// Estimate each receiver's bandwidth (str0m's transport-cc estimator,
    /// when the answer keeps transport-cc) and allocate layers within it.
    pub bandwidth_estimation: bool,
}

impl Default for PlaneConfig {
    fn default() -> Self {
        PlaneConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 10000)),
            advertise: None,
            audio_slots: 3,
            video_slots: 9,
            bandwidth_estimation: false,
        }
    }
}

impl PlaneConfig {
    /// Checks the settings; the error names the offending key.
    pub fn validate(&self) -> Result<(), PlaneError> {
        let ip = self.advertise.unwrap_or(self.bind.ip());
        if ip.is_unspecified() {
            return Err(PlaneError::Config(
                "plane.advertise: required when plane.bind is an unspecified address".into(),
            ));
        }
        if self.audio_slots == 0 || self.video_slots == 0 {
            return Err(PlaneError::Config(
                "plane.audio_slots / plane.video_slots: at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// What the plane tells the focus.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlaneEvent {
    /// ICE and DTLS are up for `endpoint`; media can flow.
    Connected { endpoint: String },
    /// `endpoint`'s session ended by itself (ICE/DTLS timeout, error, or
    /// closed by the peer) and was removed. Not sent for `remove_endpoint`.
    Disconnected { endpoint: String },
}

/// The receiving side of the plane's events.
pub type PlaneEvents = mpsc::UnboundedReceiver<PlaneEvent>;

/// Counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaneStats {
    /// Sessions now.
    pub endpoints: usize,
    /// Sessions with ICE and DTLS up now.
    pub connected: usize,
    /// UDP datagrams received, and their bytes.
    pub packets_in: u64,
    pub bytes_in: u64,
    /// UDP datagrams sent, and their bytes.
    pub packets_out: u64,
    pub bytes_out: u64,
    /// Datagrams no session accepted (garbage, unknown senders).
    pub dropped: u64,
    /// RTP packets written into a receiver's slot.
    pub packets_forwarded: u64,
    /// Packets that could not be forwarded (no stream for the slot, socket
    /// send failure).
    pub forwarding_errors: u64,
}

/// Errors of the plane's operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaneError {
    /// The caller reused an endpoint id that is still in the plane.
    #[error("endpoint {0} already exists")]
    EndpointExists(String),
    /// The caller named an endpoint the plane does not have (never created,
    /// removed, or timed out).
    #[error("unknown endpoint {0}")]
    UnknownEndpoint(String),
    /// An answer came for an endpoint whose offer was already answered.
    #[error("no offer waiting for an answer")]
    NoPendingOffer,
    /// The participant's answer was not acceptable; not retryable as is.
    #[error("bad answer: {0}")]
    BadAnswer(String),
    /// Our configuration cannot work (names the key or the value).
    #[error("configuration: {0}")]
    Config(String),
    /// The plane's task has stopped.
    #[error("media plane stopped")]
    Closed,
}

pub(crate) enum Command {
    Create {
        conference: String,
        endpoint: String,
        reply: oneshot::Sender<Result<String, PlaneError>>,
    },
    Answer {
        endpoint: String,
        sdp: String,
        reply: oneshot::Sender<Result<(), PlaneError>>,
    },
    Remove {
        endpoint: String,
        reply: oneshot::Sender<()>,
    },
    Mute {
        endpoint: String,
        audio: bool,
        muted: bool,
        reply: oneshot::Sender<()>,
    },
    Stats {
        reply: oneshot::Sender<PlaneStats>,
    },
}

/// A cloneable handle to the plane's task. The task ends when every handle
/// is dropped.
#[derive(Debug, Clone)]
pub struct PlaneHandle {
    tx: mpsc::Sender<Command>,
    local_addr: SocketAddr,
}

/// Binds the socket and starts the plane's task, without a bridge channel.
pub async fn start(config: PlaneConfig) -> io::Result<(PlaneHandle, PlaneEvents, JoinHandle<()>)> {
    start_inner(config, None).await
}

/// As [`start`], talking to participants over the bridge channel: the plane
/// sends through `channels` and takes its inbound messages
/// ([`Channels::take_inbound`]; if they were taken already, inbound messages
/// are not seen).
pub async fn start_with_channels(
    config: PlaneConfig,
    channels: Channels,
) -> io::Result<(PlaneHandle, PlaneEvents, JoinHandle<()>)> {
    start_inner(config, Some(channels)).await
}

async fn start_inner(
    config: PlaneConfig,
    channels: Option<Channels>,
) -> io::Result<(PlaneHandle, PlaneEvents, JoinHandle<()>)> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let socket = bind_udp(config.bind)?;
    let local_addr = socket.local_addr()?;
    let candidate = SocketAddr::new(
        config.advertise.unwrap_or(local_addr.ip()),
        local_addr.port(),
    );
    let (tx, rx) = mpsc::channel(256);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let inbound = channels.as_ref().and_then(|c| {
        let rx = c.take_inbound();
        if rx.is_none() {
            tracing::warn!("bridge-channel inbound already taken; constraints will be ignored");
        }
        rx
    });
    let plane = driver::Plane::new(socket, local_addr, candidate, &config, events_tx, channels);
    tracing::info!(%local_addr, %candidate, "media plane listening");
    let task = tokio::spawn(driver::run(plane, rx, inbound));
    Ok((PlaneHandle { tx, local_addr }, events_rx, task))
}

impl PlaneHandle {
    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.ok()?;
        rx.await.ok()
    }

    /// A new participant `endpoint` in `conference`; returns our SDP offer.
    pub async fn create_endpoint(
        &self,
        conference: &str,
        endpoint: &str,
    ) -> Result<String, PlaneError> {
        self.call(|reply| Command::Create {
            conference: conference.to_owned(),
            endpoint: endpoint.to_owned(),
            reply,
        })
        .await
        .unwrap_or(Err(PlaneError::Closed))
    }

    /// The participant's SDP answer to the offer of `create_endpoint`.
    pub async fn accept_answer(&self, endpoint: &str, sdp: &str) -> Result<(), PlaneError> {
        self.call(|reply| Command::Answer {
            endpoint: endpoint.to_owned(),
            sdp: sdp.to_owned(),
            reply,
        })
        .await
        .unwrap_or(Err(PlaneError::Closed))
    }

    /// Ends `endpoint`'s session and frees its slots everywhere.
    pub async fn remove_endpoint(&self, endpoint: &str) {
        self.call(|reply| Command::Remove {
            endpoint: endpoint.to_owned(),
            reply,
        })
        .await;
    }

    /// Stops (or resumes) forwarding `endpoint`'s audio (`audio`) or video.
    pub async fn force_mute(&self, endpoint: &str, audio: bool, muted: bool) {
        self.call(|reply| Command::Mute {
            endpoint: endpoint.to_owned(),
            audio,
            muted,
            reply,
        })
        .await;
    }

    /// Counters; all zero if the plane has stopped.
    pub async fn stats(&self) -> PlaneStats {
        self.call(|reply| Command::Stats { reply })
            .await
            .unwrap_or_default()
    }
}

/// Socket buffers for the media port: a burst from many participants must
/// not overflow the kernel's default (about 200 KiB) while the loop is busy.
const UDP_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Binds the media port with large socket buffers (the kernel may cap them
/// at its `net.core.rmem_max`/`wmem_max`; that is not an error).
fn bind_udp(addr: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(UDP_BUFFER_BYTES) {
        tracing::warn!("media port: cannot grow the receive buffer: {e}");
    }
    if let Err(e) = socket.set_send_buffer_size(UDP_BUFFER_BYTES) {
        tracing::warn!("media port: cannot grow the send buffer: {e}");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}
