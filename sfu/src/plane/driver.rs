//! The plane's event loop: one UDP socket, every session, sans-IO str0m
//! driven by a thin tokio loop (receive, command, or the earliest timeout;
//! then poll every session until it has nothing more to say), plus the
//! bridge channel: speaker detection, slot maps and receivers' constraints
//! (the messages themselves are built in `signal`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::bridge_channel::BridgeMessage;
use str0m::bwe::{Bitrate, BweKind};
use str0m::media::{KeyframeRequestKind, MediaKind};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Ssrc as RtpSsrc};
use str0m::{Event, IceConnectionState, Input, Output};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::endpoint::Endpoint;
use super::forward::{Codec, Incoming};
use super::sdp::{PT_H264, PT_VP8};
use super::signal::{self, source_name, Conference, SlotMaps};
use super::{stun, Command, PlaneConfig, PlaneError, PlaneEvent, PlaneStats};
use crate::channel::{Channels, Inbound};
use crate::media::allocation::{self, SourceOffer};
use crate::media::audio_route::{self, AudioSubscription};
use crate::media::speaker::SpeakerChange;
use crate::media::{vp8, EndpointId, SourceName};

/// At most this many datagrams are read before every session is polled.
const RECEIVE_BATCH: usize = 32;
/// The longest the loop sleeps without looking at timeouts.
const MAX_SLEEP: Duration = Duration::from_millis(100);
/// A session that has not connected by then is ended (an ICE-lite agent
/// with no candidate pair never times out by itself).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// At most one keyframe request per publisher's layer in this interval.
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(300);
/// How often every receiver's layers are chosen again (layers start and
/// stop, bitrates move).
const ALLOCATION_INTERVAL: Duration = Duration::from_millis(250);
/// The bandwidth assumed for a receiver without an estimate or a
/// `assumedBandwidthBps` of its own.
const DEFAULT_BANDWIDTH_BPS: u64 = 20_000_000;

/// What one session's output asks of the others.
enum Work {
    Rtp {
        from: String,
        kind: MediaKind,
        layer: usize,
        packet: Box<RtpPacket>,
    },
    Keyframe {
        publisher: String,
        layer: usize,
        kind: KeyframeRequestKind,
    },
    /// A publisher's layer (re)started: choose layers before forwarding it.
    LayerStarted,
}

pub(crate) struct Plane {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    candidate: SocketAddr,
    audio_slots: usize,
    video_slots: usize,
    bandwidth_estimation: bool,
    endpoints: HashMap<String, Endpoint>,
    /// Join order, for handing out freed slots fairly.
    order: Vec<String>,
    by_addr: HashMap<SocketAddr, String>,
    by_ufrag: HashMap<String, String>,
    events: mpsc::UnboundedSender<PlaneEvent>,
    stats: PlaneStats,
    /// The bridge channel, if there is one.
    channels: Option<Channels>,
    /// Dominant-speaker state per conference with endpoints.
    conferences: HashMap<String, Conference>,
    /// When every receiver's layers are chosen next.
    next_allocation: Instant,
}

/// The next inbound bridge-channel message; pending forever without one.
async fn next_inbound(inbound: &mut Option<mpsc::UnboundedReceiver<Inbound>>) -> Option<Inbound> {
    match inbound {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

pub(crate) async fn run(
    mut plane: Plane,
    mut commands: mpsc::Receiver<Command>,
    mut inbound: Option<mpsc::UnboundedReceiver<Inbound>>,
) {
    let socket = plane.socket.clone();
    let mut buf = vec![0u8; 2048];
    loop {
        plane.drive(Instant::now());
        plane.flush_signals();
        let deadline = plane.next_deadline(Instant::now());
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(cmd) => plane.command(cmd),
                None => break,
            },
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, source)) => {
                    plane.receive(&buf[..n], source, Instant::now());
                    // Take what else is queued before polling the receivers:
                    // each is then polled once per batch, not once per packet.
                    for _ in 1..RECEIVE_BATCH {
                        let Ok((n, source)) = socket.try_recv_from(&mut buf) else {
                            break;
                        };
                        plane.drive_inputs(Instant::now());
                        plane.receive(&buf[..n], source, Instant::now());
                    }
                }
                // E.g. ICMP port unreachable reported on a later call.
                Err(e) => tracing::debug!("udp receive: {e}"),
            },
            msg = next_inbound(&mut inbound) => match msg {
                Some(msg) => plane.inbound(msg),
                // The channel registry is gone; nothing more will come.
                None => inbound = None,
            },
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
        plane.timeouts(Instant::now());
    }
    for ep in plane.endpoints.values_mut() {
        ep.rtc.disconnect();
    }
    tracing::info!("media plane stopped");
}

impl Plane {
    pub fn new(
        socket: UdpSocket,
        local: SocketAddr,
        candidate: SocketAddr,
        config: &PlaneConfig,
        events: mpsc::UnboundedSender<PlaneEvent>,
        channels: Option<Channels>,
    ) -> Plane {
        Plane {
            socket: Arc::new(socket),
            local,
            candidate,
            audio_slots: config.audio_slots,
            video_slots: config.video_slots,
            bandwidth_estimation: config.bandwidth_estimation,
            endpoints: HashMap::new(),
            order: Vec::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            events,
            stats: PlaneStats::default(),
            channels,
            conferences: HashMap::new(),
            next_allocation: Instant::now(),
        }
    }

    fn next_deadline(&self, now: Instant) -> Instant {
        let speakers = self
            .conferences
            .values()
            .filter_map(|c| c.detector.poll_timeout());
        self.endpoints
            .values()
            .map(|e| e.next_timeout)
            .chain(speakers)
            .chain(std::iter::once(self.next_allocation))
            .fold(now + MAX_SLEEP, Instant::min)
    }

    fn command(&mut self, cmd: Command) {
        // Commands are rare and may change any session: poll them all next.
        for ep in self.endpoints.values_mut() {
            ep.dirty = true;
        }
        match cmd {
            Command::Create {
                conference,
                endpoint,
                reply,
            } => {
                let _ = reply.send(self.create(&conference, &endpoint));
            }
            Command::Answer {
                endpoint,
                sdp,
                reply,
            } => {
                let r = match self.endpoints.get_mut(&endpoint) {
                    Some(ep) => ep.accept_answer(&sdp),
                    None => Err(PlaneError::UnknownEndpoint(endpoint.clone())),
                };
                if let Err(e) = &r {
                    tracing::warn!(endpoint, "answer refused: {e}");
                }
                let _ = reply.send(r);
            }
            Command::Remove { endpoint, reply } => {
                if let Some(mut ep) = self.remove(&endpoint) {
                    ep.rtc.disconnect();
                }
                let _ = reply.send(());
            }
            Command::Mute {
                endpoint,
                audio,
                muted,
                reply,
            } => {
                if let Some(ep) = self.endpoints.get_mut(&endpoint) {
                    if audio {
                        ep.mute_audio = muted;
                        if let Some(c) = self.conferences.get_mut(&ep.conference) {
                            c.detector.set_muted(&endpoint, muted);
                        }
                    } else {
                        ep.mute_video = muted;
                    }
                }
                let _ = reply.send(());
            }
            Command::Stats { reply } => {
                let mut stats = self.stats.clone();
                stats.endpoints = self.endpoints.len();
                stats.connected = self.endpoints.values().filter(|e| e.connected).count();
                let _ = reply.send(stats);
            }
        }
    }

    fn create(&mut self, conference: &str, id: &str) -> Result<String, PlaneError> {
        if self.endpoints.contains_key(id) {
            return Err(PlaneError::EndpointExists(id.to_owned()));
        }
        let (mut ep, offer) = Endpoint::new(
            id,
            conference,
            self.candidate,
            self.audio_slots,
            self.video_slots,
            Instant::now(),
        )?;
        ep.bandwidth_estimation = self.bandwidth_estimation;
        tracing::info!(endpoint = id, conference, "endpoint created");
        self.by_ufrag.insert(ep.ufrag.clone(), id.to_owned());
        self.endpoints.insert(id.to_owned(), ep);
        self.order.push(id.to_owned());
        self.conferences
            .entry(conference.to_owned())
            .or_default()
            .detector
            .add(EndpointId::from(id));
        self.fill_slots(conference);
        Ok(offer)
    }

    fn remove(&mut self, id: &str) -> Option<Endpoint> {
        let ep = self.endpoints.remove(id)?;
        tracing::info!(
            endpoint = id,
            conference = ep.conference,
            "endpoint removed"
        );
        self.by_addr.retain(|_, e| e != id);
        self.by_ufrag.remove(&ep.ufrag);
        self.order.retain(|e| e != id);
        for other in self.endpoints.values_mut() {
            other.release(id);
        }
        if let Some(c) = self.conferences.get_mut(&ep.conference) {
            c.loudness.remove(id);
            let change = c.detector.remove(id);
            if self
                .endpoints
                .values()
                .all(|e| e.conference != ep.conference)
            {
                self.conferences.remove(&ep.conference);
            } else if let Some(change) = change {
                self.speaker_changed(&ep.conference, &change);
            }
        }
        self.fill_slots(&ep.conference);
        Some(ep)
    }

    /// Gives every publisher of `conference` a slot at every other
    /// participant where one is free (audio: only to those who subscribed
    /// to it, loudest first), and chooses the layers at once (a receiver's
    /// forwarder asks for the keyframe it needs).
    fn fill_slots(&mut self, conference: &str) {
        let now = Instant::now();
        let members: Vec<String> = self
            .order
            .iter()
            .filter(|id| {
                self.endpoints
                    .get(*id)
                    .is_some_and(|e| e.conference == conference)
            })
            .cloned()
            .collect();
        let mut loudest = members.clone();
        if let Some(c) = self.conferences.get(conference) {
            let score = |p: &String| c.loudness.score(p, now);
            loudest.sort_by(|a, b| score(b).total_cmp(&score(a)));
        }
        for receiver in &members {
            let Some(r) = self.endpoints.get_mut(receiver) else {
                continue;
            };
            for publisher in loudest.iter().filter(|p| *p != receiver) {
                if r.audio_sub.wants(publisher) {
                    r.assign(publisher, MediaKind::Audio);
                }
            }
            for publisher in members.iter().filter(|p| *p != receiver) {
                r.assign(publisher, MediaKind::Video);
            }
        }
        self.next_allocation = now;
    }

    fn receive(&mut self, data: &[u8], source: SocketAddr, now: Instant) {
        self.stats.packets_in += 1;
        self.stats.bytes_in += data.len() as u64;
        let id = stun::local_ufrag(data)
            .and_then(|u| self.by_ufrag.get(u))
            .or_else(|| self.by_addr.get(&source))
            .cloned();
        let Some(id) = id else {
            tracing::trace!(%source, len = data.len(), ufrag = ?stun::local_ufrag(data), "unroutable datagram");
            self.stats.dropped += 1;
            return;
        };
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.stats.dropped += 1;
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        let Some(ep) = self.endpoints.get_mut(&id) else {
            self.stats.dropped += 1;
            return;
        };
        if !ep.rtc.accepts(&input) {
            tracing::trace!(%source, "datagram not accepted");
            self.stats.dropped += 1;
            return;
        }
        ep.dirty = true;
        ep.took_input = true;
        if let Err(e) = ep.rtc.handle_input(input) {
            tracing::warn!(endpoint = id, %source, "session error: {e}");
            ep.rtc.disconnect();
            return;
        }
        self.by_addr.entry(source).or_insert(id);
    }

    fn timeouts(&mut self, now: Instant) {
        let changes: Vec<(String, SpeakerChange)> = self
            .conferences
            .iter_mut()
            .filter(|(_, c)| c.detector.poll_timeout().is_some_and(|t| t <= now))
            .filter_map(|(id, c)| Some((id.clone(), c.detector.handle_timeout(now)?)))
            .collect();
        for (conference, change) in changes {
            self.speaker_changed(&conference, &change);
        }
        if self.next_allocation <= now {
            self.allocate(now);
            self.next_allocation = now + ALLOCATION_INTERVAL;
        }
        for ep in self.endpoints.values_mut() {
            if !ep.connected && now.saturating_duration_since(ep.created) > CONNECT_TIMEOUT {
                tracing::info!(endpoint = ep.id, "no connection in time");
                ep.dirty = true;
                ep.rtc.disconnect();
            }
            if ep.next_timeout <= now && ep.rtc.is_alive() {
                ep.dirty = true;
                if let Err(e) = ep.rtc.handle_input(Input::Timeout(now)) {
                    tracing::warn!(endpoint = ep.id, "session error: {e}");
                    ep.rtc.disconnect();
                }
            }
        }
    }

    /// Polls only the sessions that took a datagram since their last poll
    /// (and forwards what they produce); the sessions written to wait for
    /// [`Plane::drive`]. str0m wants a session polled between two inputs.
    fn drive_inputs(&mut self, now: Instant) {
        self.poll_sessions(now, true);
    }

    /// Polls the sessions that took input (`only_inputs`) or that may have
    /// output, and applies what they ask of the others; false when none
    /// asked anything.
    fn poll_sessions(&mut self, now: Instant, only_inputs: bool) -> bool {
        let mut work = Vec::new();
        // Only sessions that took input or were written to since their
        // last poll can have output: polling all costs O(sessions).
        let due = |e: &Endpoint| if only_inputs { e.took_input } else { e.dirty };
        for ep in self.endpoints.values_mut().filter(|e| due(e)) {
            ep.dirty = false;
            ep.took_input = false;
            poll(ep, &self.socket, &mut self.stats, &self.events, &mut work);
        }
        let any = !work.is_empty();
        for w in work {
            self.apply(w, now);
        }
        any
    }

    /// Polls every session until none has output left, forwarding what
    /// they produce; then removes dead sessions.
    fn drive(&mut self, now: Instant) {
        while self.poll_sessions(now, false) {}
        let dead: Vec<String> = self
            .endpoints
            .values()
            .filter(|e| !e.rtc.is_alive())
            .map(|e| e.id.clone())
            .collect();
        for id in dead {
            self.remove(&id);
            let _ = self.events.send(PlaneEvent::Disconnected { endpoint: id });
        }
    }

    fn apply(&mut self, work: Work, now: Instant) {
        match work {
            Work::Rtp {
                from,
                kind,
                layer,
                packet,
            } => {
                if let Some(level) = packet
                    .header
                    .ext_vals
                    .audio_level
                    .filter(|_| kind.is_audio())
                {
                    self.audio_level(&from, level, now);
                }
                self.forward(&from, kind, layer, &packet, now)
            }
            Work::Keyframe {
                publisher,
                layer,
                kind,
            } => self.request_keyframe(&publisher, layer, kind, now),
            Work::LayerStarted => {
                self.allocate(now);
                self.next_allocation = now + ALLOCATION_INTERVAL;
            }
        }
    }

    /// Writes one of `from`'s packets into the slot each receiver of the
    /// conference has for it, as that slot's forwarder says.
    fn forward(
        &mut self,
        from: &str,
        kind: MediaKind,
        layer: usize,
        packet: &RtpPacket,
        now: Instant,
    ) {
        let Some(conference) = self.endpoints.get(from).map(|e| e.conference.clone()) else {
            return;
        };
        let header = &packet.header;
        let pt = *header.payload_type;
        let codec = match kind {
            MediaKind::Audio => Codec::Audio,
            _ if pt == PT_VP8 => Codec::Vp8,
            _ if pt == PT_H264 => Codec::H264,
            _ => Codec::OtherVideo,
        };
        let incoming = Incoming {
            ssrc: *header.ssrc,
            seq: header.sequence_number,
            ts: header.timestamp,
            layer,
            codec,
            keyframe_start: codec.is_keyframe_start(&packet.payload),
            payload: &packet.payload,
        };
        let exts = ExtensionValues {
            audio_level: header.ext_vals.audio_level,
            voice_activity: header.ext_vals.voice_activity,
            ..Default::default()
        };
        let mut wanted: Option<usize> = None;
        let loudness = self.conferences.get(&conference).map(|c| &c.loudness);
        let score = loudness.map_or(0.0, |l| l.score(from, now));
        for r in self.endpoints.values_mut() {
            if r.id == from || r.conference != conference || !r.connected {
                continue;
            }
            if kind.is_audio() {
                if let Some(l) = loudness {
                    contend_for_audio(r, from, score, |p| l.score(p, now));
                }
            }
            let slots = if kind.is_audio() {
                &mut r.audio_slots
            } else {
                &mut r.video_slots
            };
            let Some(slot) = slots
                .iter_mut()
                .find(|s| s.publisher.as_deref() == Some(from))
            else {
                continue;
            };
            let f = slot.fwd.forward(&incoming, now);
            if f.wants_keyframe {
                wanted = wanted.max(slot.fwd.target);
            }
            let Some((seq, ts)) = f.out else {
                continue;
            };
            let ssrc = RtpSsrc::from(slot.ssrcs.ssrc);
            r.dirty = true;
            let mut api = r.rtc.direct_api();
            let Some(stream) = api.stream_tx(&ssrc) else {
                self.stats.forwarding_errors += 1;
                continue;
            };
            let payload = match f.payload {
                Some(p) => p.into(),
                None => packet.payload.clone(),
            };
            stream.write_rtp(
                RtpWrite::new(
                    header.payload_type,
                    seq.into(),
                    ts,
                    packet.timestamp,
                    payload,
                )
                .marker(header.marker)
                .ext_vals(exts.clone())
                .nackable(!kind.is_audio()),
            );
            self.stats.packets_forwarded += 1;
        }
        if let Some(layer) = wanted {
            self.request_keyframe(from, layer, KeyframeRequestKind::Pli, now);
        }
    }

    /// Chooses, for every receiver, the layer of each video source in its
    /// slots (`media::allocation`: its constraints, the conference's speaker
    /// order, its bandwidth estimate), and tells its bandwidth estimator
    /// what it sends and what it would like to send.
    fn allocate(&mut self, now: Instant) {
        let offers: HashMap<&str, Vec<_>> = self
            .endpoints
            .iter()
            .map(|(id, e)| (id.as_str(), e.layers.offer(now)))
            .collect();
        // (receiver, layer per video slot, (sending, wanted) for its estimator)
        type Decision = (String, Vec<Option<usize>>, Option<(u64, u64)>);
        let mut decisions: Vec<Decision> = Vec::new();
        for r in self.endpoints.values() {
            let ranking: Vec<&str> = self
                .conferences
                .get(&r.conference)
                .map(|c| c.detector.ranking().map(|e| e.as_str()).collect())
                .unwrap_or_default();
            let rank = |p: &str| ranking.iter().position(|x| *x == p).unwrap_or(usize::MAX);
            let mut publishers: Vec<&str> = r
                .video_slots
                .iter()
                .filter_map(|s| s.publisher.as_deref())
                .collect();
            publishers.sort_by_key(|p| rank(p));
            let sources: Vec<SourceOffer> = publishers
                .iter()
                .filter_map(|p| {
                    Some(SourceOffer {
                        name: SourceName::from(source_name(p, false)),
                        layers: offers.get(p)?.clone(),
                    })
                })
                .collect();
            if sources.is_empty() {
                continue;
            }
            let bwe = r
                .constraints
                .assumed_bandwidth_bps()
                .or(r.bwe_bps)
                .unwrap_or(DEFAULT_BANDWIDTH_BPS);
            let a = allocation::allocate(&r.constraints, &sources, bwe);
            // What it sends and would like to, for its estimator's probing.
            let rates = r.estimating.then(|| {
                let wish = allocation::allocate(&r.constraints, &sources, u64::MAX / 4);
                (a.total_bps, wish.total_bps.max(a.total_bps))
            });
            let layers = r
                .video_slots
                .iter()
                .map(|s| {
                    s.publisher
                        .as_deref()
                        .and_then(|p| a.layer(&source_name(p, false)))
                })
                .collect();
            decisions.push((r.id.clone(), layers, rates));
        }
        for (id, layers, rates) in decisions {
            let Some(r) = self.endpoints.get_mut(&id) else {
                continue;
            };
            for (slot, target) in r.video_slots.iter_mut().zip(layers) {
                if slot.fwd.target != target {
                    tracing::debug!(receiver = id, slot = %slot.mid, ?target, "layer");
                    // ForwardedSources says which slots get a layer.
                    r.slots_changed |= slot.fwd.target.is_some() != target.is_some();
                }
                slot.fwd.target = target;
            }
            if let Some((sending, wanted)) = rates {
                r.rtc
                    .bwe()
                    .set_bitrate(Bitrate::bps(sending), Bitrate::bps(wanted));
                r.dirty = true;
            }
        }
    }

    /// One audio frame's RFC 6464 level (str0m gives it negated, in -dBov).
    fn audio_level(&mut self, from: &str, level: i8, now: Instant) {
        let Some(ep) = self.endpoints.get(from) else {
            return;
        };
        let Some(c) = self.conferences.get_mut(&ep.conference) else {
            return;
        };
        let level = level.unsigned_abs().min(127);
        c.loudness.on_level(from, level, now);
        if let Some(change) = c.detector.on_audio_level(from, level, now) {
            let conference = ep.conference.clone();
            self.speaker_changed(&conference, &change);
        }
    }

    /// Tells every endpoint of `conference` who the dominant speaker is;
    /// those whose socket is not open get it later (`flush_signals`).
    fn speaker_changed(&mut self, conference: &str, change: &SpeakerChange) {
        tracing::debug!(
            conference,
            dominant = %change.dominant,
            silence = change.silence,
            "dominant speaker"
        );
        let message = signal::speaker_message(change);
        if let Some(channels) = &self.channels {
            // Sockets not open yet get it when they open (the channel keeps it).
            for ep in self
                .endpoints
                .values()
                .filter(|e| e.conference == conference)
            {
                channels.send(&ep.id, &message);
            }
        }
        if let Some(c) = self.conferences.get_mut(conference) {
            c.last = Some(message);
        }
    }

    /// Sends each endpoint what it has not been sent yet over the bridge
    /// channel: its sources maps after a slot change, and (once, when it is
    /// new) the conference's latest dominant speaker. The channel delivers
    /// them when the endpoint's socket opens if it is not open yet.
    fn flush_signals(&mut self) {
        let Some(channels) = &self.channels else {
            return;
        };
        for ep in self.endpoints.values_mut() {
            if std::mem::take(&mut ep.slots_changed) {
                let maps = SlotMaps::of(ep);
                if ep.sent_maps.as_ref() != Some(&maps) {
                    for m in maps.messages() {
                        channels.send(&ep.id, &m);
                    }
                    tracing::debug!(receiver = ep.id, forwarded = ?maps.forwarded, "slot maps sent");
                    ep.sent_maps = Some(maps);
                }
            }
            if std::mem::take(&mut ep.speaker_pending) {
                if let Some(m) = self
                    .conferences
                    .get(&ep.conference)
                    .and_then(|c| c.last.as_ref())
                {
                    channels.send(&ep.id, m);
                }
            }
        }
    }

    /// A message a participant sent over the bridge channel.
    fn inbound(&mut self, msg: Inbound) {
        let Some(ep) = self
            .endpoints
            .get_mut(&msg.endpoint)
            .filter(|e| e.conference == msg.conference)
        else {
            tracing::debug!(
                endpoint = msg.endpoint,
                "bridge-channel message for no session"
            );
            return;
        };
        match &msg.message {
            BridgeMessage::ReceiverVideoConstraints(c) => {
                let changed = ep.constraints.apply(c);
                tracing::debug!(receiver = ep.id, changed, constraints = ?ep.constraints, "receiver video constraints");
                if changed {
                    self.next_allocation = Instant::now();
                }
            }
            BridgeMessage::ReceiverAudioSubscription(sub) => {
                let (all, include, exclude) = sub.normalized();
                let sub = AudioSubscription::new(all, include, exclude);
                tracing::debug!(receiver = ep.id, subscription = ?sub, "receiver audio subscription");
                let unwanted: Vec<String> = ep
                    .audio_slots
                    .iter()
                    .filter_map(|s| s.publisher.clone())
                    .filter(|p| !sub.wants(p))
                    .collect();
                for p in &unwanted {
                    ep.release_audio(p);
                }
                ep.audio_sub = sub;
                let conference = ep.conference.clone();
                self.fill_slots(&conference);
            }
            BridgeMessage::LastNChangedEvent(e) => {
                let changed = ep.constraints.set_last_n(e.last_n);
                tracing::debug!(receiver = ep.id, changed, last_n = e.last_n, "last-n");
                if changed {
                    self.next_allocation = Instant::now();
                }
            }
            other => {
                tracing::debug!(
                    endpoint = ep.id,
                    class = other.colibri_class(),
                    "bridge-channel message ignored"
                );
            }
        }
    }

    /// Asks `publisher` for a keyframe on its video `layer`, at most once
    /// per layer in [`KEYFRAME_INTERVAL`].
    fn request_keyframe(
        &mut self,
        publisher: &str,
        layer: usize,
        kind: KeyframeRequestKind,
        now: Instant,
    ) {
        let Some(ep) = self.endpoints.get_mut(publisher) else {
            return;
        };
        let Some(last) = ep.keyframe_requested.get(layer).copied() else {
            return;
        };
        if last.is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_INTERVAL) {
            return;
        }
        if ep.request_keyframe(layer, kind) {
            ep.keyframe_requested[layer] = Some(now);
            ep.dirty = true;
        }
    }
}

/// Lets `publisher` (with loudness `score`) into one of receiver `r`'s
/// audio slots if `r` wants it and it has none: a free slot, or the slot
/// of a clearly quieter holder (`media::audio_route`).
fn contend_for_audio(r: &mut Endpoint, publisher: &str, score: f32, of: impl Fn(&str) -> f32) {
    if r.slot_of(publisher, MediaKind::Audio).is_some() || !r.audio_sub.wants(publisher) {
        return;
    }
    let holders = r
        .audio_slots
        .iter()
        .map(|s| s.publisher.as_deref().map(&of));
    let Some(index) = audio_route::take_slot(holders, score) else {
        return;
    };
    tracing::debug!(
        receiver = r.id,
        publisher,
        replaced = ?r.audio_slots.get(index).and_then(|s| s.publisher.as_deref()),
        "audio slot to a louder publisher"
    );
    r.switch_audio(index, publisher);
}

/// Drains one session's output: sends its datagrams, reports its events,
/// and collects what it asks of others.
fn poll(
    ep: &mut Endpoint,
    socket: &UdpSocket,
    stats: &mut PlaneStats,
    events: &mpsc::UnboundedSender<PlaneEvent>,
    work: &mut Vec<Work>,
) {
    while ep.rtc.is_alive() {
        let output = match ep.rtc.poll_output() {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(endpoint = ep.id, "session error: {e}");
                ep.rtc.disconnect();
                break;
            }
        };
        match output {
            Output::Timeout(t) => {
                ep.next_timeout = t;
                break;
            }
            Output::Transmit(t) => match socket.try_send_to(&t.contents, t.destination) {
                Ok(n) => {
                    stats.packets_out += 1;
                    stats.bytes_out += n as u64;
                }
                Err(e) => {
                    stats.forwarding_errors += 1;
                    tracing::debug!(endpoint = ep.id, "udp send: {e}");
                }
            },
            Output::Event(event) => on_event(ep, event, events, work),
        }
    }
}

fn on_event(
    ep: &mut Endpoint,
    event: Event,
    events: &mpsc::UnboundedSender<PlaneEvent>,
    work: &mut Vec<Work>,
) {
    match event {
        Event::Connected => {
            tracing::info!(endpoint = ep.id, "connected");
            ep.connected = true;
            let _ = events.send(PlaneEvent::Connected {
                endpoint: ep.id.clone(),
            });
        }
        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
            tracing::info!(endpoint = ep.id, "ice disconnected");
            ep.rtc.disconnect();
        }
        Event::RtpPacket(packet) => {
            let Some((kind, layer)) = ep.incoming(*packet.header.ssrc) else {
                return;
            };
            let muted = if kind.is_audio() {
                ep.mute_audio
            } else {
                ep.mute_video
            };
            if muted {
                return;
            }
            if kind.is_video() {
                if !ep.layers.is_active(layer, packet.timestamp) {
                    work.push(Work::LayerStarted);
                }
                ep.layers
                    .on_packet(layer, packet.payload.len(), packet.timestamp);
                // A VP8 keyframe says its size: the layer's real height.
                if *packet.header.payload_type == PT_VP8 {
                    if let Some((_, height)) = vp8::keyframe_size(&packet.payload) {
                        ep.layers.set_height(layer, u32::from(height));
                    }
                }
            }
            work.push(Work::Rtp {
                from: ep.id.clone(),
                kind,
                layer,
                packet: Box::new(packet),
            });
        }
        Event::EgressBitrateEstimate(BweKind::Twcc {
            estimate,
            can_probe: true,
        }) => {
            tracing::trace!(
                endpoint = ep.id,
                bps = estimate.as_u64(),
                "bandwidth estimate"
            );
            ep.bwe_bps = Some(estimate.as_u64());
        }
        Event::KeyframeRequest(req) => {
            let Some(slot) = ep.slot(req.mid) else {
                return;
            };
            let (Some(publisher), Some(layer)) = (
                slot.publisher.as_deref(),
                slot.fwd.current.or(slot.fwd.target),
            ) else {
                return;
            };
            tracing::debug!(
                receiver = ep.id,
                slot = ep.public_mid(req.mid),
                publisher,
                layer,
                "keyframe request"
            );
            work.push(Work::Keyframe {
                publisher: publisher.to_owned(),
                layer,
                kind: req.kind,
            });
        }
        _ => {}
    }
}
