//! SDP (RFC 4566) offer/answer (RFC 3264) for the one audio stream of a
//! phone call.
//!
//! [`Offer::parse`] reads a remote description (an offer, or an answer to
//! ours: the same parser serves [`parse_answer`]); [`Offer::negotiate`]
//! picks the first codec in the remote's order that we speak ([`PhoneCodec`])
//! and a telephone-event type on the same clock; [`Offer::answer`] writes the
//! answer; [`LocalMedia::offer`] writes our offer for dial-out.
//!
//! Only what a phone needs is read: the connection address (session or media
//! level), the first usable audio `m=` line, its `rtpmap`/`fmtp`/`ptime` and
//! the direction attributes (a `c=` of `0.0.0.0` is the old way to say hold).
//! Anything else is skipped, and no input, however broken, makes it panic:
//! the errors say what was wrong and which SIP status answers it.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::codec::PhoneCodec;

/// The payload type we offer telephone-event under.
pub const DTMF_OFFER_PT: u8 = 101;

/// Why a description cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is not UTF-8 text.
    #[error("SDP is not UTF-8 text")]
    NotText,
    /// An `m=` line we cannot read.
    #[error("malformed media line {0:?}")]
    BadMedia(String),
    /// A `c=` line we cannot read (a host name, an unknown network type).
    #[error("bad connection line c={0:?}: expected `IN IP4 <address>` or `IN IP6 <address>`")]
    BadConnection(String),
    /// The audio stream has no connection address at either level.
    #[error("no connection address (c=) for the audio stream")]
    NoConnection,
    /// No `m=audio` line at all.
    #[error("no audio media line (m=audio)")]
    NoAudio,
    /// Every audio line has port 0: disabled, or rejected in an answer.
    #[error("the audio stream is disabled (port 0)")]
    AudioDisabled,
    /// The audio is encrypted (RTP/SAVP, RTP/SAVPF, UDP/TLS/...).
    #[error("audio over {0} needs SRTP, which this gateway does not support; offer RTP/AVP")]
    Srtp(String),
    /// The audio runs over a transport that is not RTP at all.
    #[error("unsupported audio transport {0:?}")]
    UnsupportedTransport(String),
    /// None of the offered payload types is PCMU, PCMA, G722 or opus.
    #[error("no common codec: offered {offered}; we support PCMU, PCMA, G722, opus")]
    NoCommonCodec { offered: String },
}

impl SdpError {
    /// The SIP status that answers an INVITE carrying such an offer:
    /// 488 Not Acceptable Here when we understood it but cannot do it,
    /// 400 Bad Request when we could not read it.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::NotText
            | SdpError::BadMedia(_)
            | SdpError::BadConnection(_)
            | SdpError::NoConnection => 400,
            _ => 488,
        }
    }
}

/// Media direction (RFC 3264 §5.1), from the point of view of whoever
/// wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn parse(attr: &str) -> Option<Self> {
        Some(match attr {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The other side's direction: send-only answers receive-only.
    pub fn reverse(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether media flows out.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether media flows in.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn without_receiving(self) -> Self {
        match self {
            Direction::SendRecv => Direction::SendOnly,
            Direction::RecvOnly => Direction::Inactive,
            d => d,
        }
    }
}

/// One `a=rtpmap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub pt: u8,
    pub name: String,
    pub clock: u32,
    pub channels: Option<u32>,
}

/// One `m=` line as written (every line is kept so that the answer can
/// reject the ones we do not take, in their order: RFC 3264 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
}

/// A parsed remote description, narrowed to its audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Every media line.
    pub media: Vec<MediaLine>,
    /// Index in `media` of the audio stream we use.
    pub audio: usize,
    /// Where the remote receives audio (media-level `c=`, else session).
    pub connection: IpAddr,
    pub port: u16,
    /// The audio line's payload types, in the remote's order of preference.
    pub payload_types: Vec<u8>,
    pub rtpmaps: Vec<RtpMap>,
    pub fmtps: Vec<(u8, String)>,
    pub ptime: Option<u32>,
    /// The direction as written (media level, else session level).
    pub direction: Direction,
    /// The connection address is unspecified (`0.0.0.0`, `::`): RFC 2543 hold.
    pub hold: bool,
}

/// The outcome of offer/answer, seen from our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP.
    pub remote: SocketAddr,
    pub codec: PhoneCodec,
    /// The payload type of `codec` in this call (send and expect it).
    pub pt: u8,
    /// The telephone-event payload type, when both sides have one.
    pub dtmf_pt: Option<u8>,
    /// What we do: whether we send and/or receive audio.
    pub direction: Direction,
}

/// Our side of the media: where we receive, and the `o=` line's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMedia {
    pub addr: IpAddr,
    pub port: u16,
    pub session_id: u64,
    /// Incremented by the caller for each new description in a dialog.
    pub session_version: u64,
}

/// A generated answer and what it agreed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub negotiated: Negotiated,
    pub sdp: String,
}

/// Lines of one section (session or media) before interpretation.
#[derive(Default)]
struct Section<'a> {
    connection: Option<&'a str>,
    attrs: Vec<&'a str>,
}

impl<'a> Section<'a> {
    fn direction(&self) -> Option<Direction> {
        self.attrs.iter().rev().find_map(|a| Direction::parse(a))
    }

    /// Values of `a=<name>:<value>` attributes.
    fn values(&self, name: &'a str) -> impl Iterator<Item = &'a str> + '_ {
        self.attrs.iter().filter_map(move |a| {
            let (n, v) = a.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn parse_media(value: &str) -> Result<MediaLine, SdpError> {
    let bad = || SdpError::BadMedia(value.chars().take(80).collect());
    let mut tokens = value.split_ascii_whitespace();
    let kind = tokens.next().ok_or_else(bad)?;
    let port = tokens.next().ok_or_else(bad)?;
    // `<port>/<number of ports>`: only the first port matters here.
    let port = port.split('/').next().and_then(|p| p.parse().ok());
    let port = port.ok_or_else(bad)?;
    let proto = tokens.next().ok_or_else(bad)?;
    Ok(MediaLine {
        kind: kind.to_string(),
        port,
        proto: proto.to_string(),
        formats: tokens.map(str::to_string).collect(),
    })
}

fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let bad = || SdpError::BadConnection(value.chars().take(80).collect());
    let mut tokens = value.split_ascii_whitespace();
    let (net, kind, addr) = (tokens.next(), tokens.next(), tokens.next());
    if net != Some("IN") {
        return Err(bad());
    }
    // Multicast addresses carry `/ttl[/count]`.
    let addr = addr.and_then(|a| a.split('/').next()).ok_or_else(bad)?;
    match kind {
        Some("IP4") => addr.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| bad()),
        Some("IP6") => addr.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, rest) = value.split_once(char::is_whitespace)?;
    let mut parts = rest.trim().split('/');
    let name = parts.next()?.trim();
    let clock = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(c) => Some(c.trim().parse().ok()?),
        None => None,
    };
    Some(RtpMap {
        pt: parse_pt(pt)?,
        name: name.to_string(),
        clock,
        channels,
    })
}

fn parse_pt(s: &str) -> Option<u8> {
    s.trim().parse().ok().filter(|pt| *pt < 128)
}

/// Whether an RTP profile is plain (unencrypted) RTP.
fn is_plain_rtp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP") || proto.eq_ignore_ascii_case("RTP/AVPF")
}

fn is_srtp(proto: &str) -> bool {
    proto.to_ascii_uppercase().contains("SAVP")
}

impl Offer {
    /// Parses an SDP body given as bytes.
    pub fn parse_bytes(body: &[u8]) -> Result<Self, SdpError> {
        Self::parse(std::str::from_utf8(body).map_err(|_| SdpError::NotText)?)
    }

    /// Parses an SDP description and picks its audio stream: the first
    /// `m=audio` line with a non-zero port over plain RTP.
    pub fn parse(sdp: &str) -> Result<Self, SdpError> {
        let mut session = Section::default();
        let mut media: Vec<(MediaLine, Section)> = Vec::new();
        for line in sdp.lines() {
            let Some((kind, value)) = line.trim().split_once('=') else {
                continue;
            };
            let section = match media.last_mut() {
                Some((_, s)) => s,
                None => &mut session,
            };
            match kind {
                "m" => media.push((parse_media(value)?, Section::default())),
                "c" => {
                    section.connection.get_or_insert(value);
                }
                "a" => section.attrs.push(value.trim()),
                _ => {}
            }
        }
        let is_audio = |m: &MediaLine| m.kind.eq_ignore_ascii_case("audio");
        let Some(audio) = media
            .iter()
            .position(|(m, _)| is_audio(m) && m.port != 0 && is_plain_rtp(&m.proto))
        else {
            let live = media
                .iter()
                .map(|(m, _)| m)
                .find(|m| is_audio(m) && m.port != 0);
            return Err(match live {
                Some(m) if is_srtp(&m.proto) => SdpError::Srtp(m.proto.clone()),
                Some(m) => SdpError::UnsupportedTransport(m.proto.clone()),
                None if media.iter().any(|(m, _)| is_audio(m)) => SdpError::AudioDisabled,
                None => SdpError::NoAudio,
            });
        };
        let (line, section) = &media[audio];
        let connection = section
            .connection
            .or(session.connection)
            .ok_or(SdpError::NoConnection)
            .and_then(parse_connection)?;
        let fmtps = section
            .values("fmtp")
            .filter_map(|v| {
                let (pt, params) = v.split_once(char::is_whitespace)?;
                Some((parse_pt(pt)?, params.trim().to_string()))
            })
            .collect();
        let payload_types = line.formats.iter().filter_map(|f| parse_pt(f)).collect();
        let rtpmaps = section.values("rtpmap").filter_map(parse_rtpmap).collect();
        let ptime = section.values("ptime").find_map(|v| v.parse().ok());
        let direction = section.direction().or(session.direction());
        let port = line.port;
        Ok(Offer {
            audio,
            connection,
            port,
            payload_types,
            rtpmaps,
            fmtps,
            ptime,
            direction: direction.unwrap_or_default(),
            hold: connection.is_unspecified(),
            media: media.into_iter().map(|(m, _)| m).collect(),
        })
    }

    /// The `a=rtpmap` of `pt`, if there is one.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.pt == pt)
    }

    /// The direction the remote effectively asks for, hold included.
    pub fn remote_direction(&self) -> Direction {
        if self.hold {
            self.direction.without_receiving()
        } else {
            self.direction
        }
    }

    /// Picks the codec (first in the remote's order that we support) and
    /// the telephone-event type on its clock.
    pub fn negotiate(&self) -> Result<Negotiated, SdpError> {
        self.negotiate_with(|_| None)
    }

    /// As [`negotiate`](Self::negotiate); `fallback` names payload types
    /// that lack an rtpmap (for answers that leave out ours).
    fn negotiate_with(
        &self,
        fallback: impl Fn(u8) -> Option<RtpMap>,
    ) -> Result<Negotiated, SdpError> {
        let mapping = |pt: u8| self.rtpmap(pt).cloned().or_else(|| fallback(pt));
        let codec_of = |pt: u8| match mapping(pt) {
            Some(m) => PhoneCodec::from_rtpmap(&m.name, m.clock, m.channels),
            None => PhoneCodec::from_static_pt(pt),
        };
        let Some((pt, codec)) = self
            .payload_types
            .iter()
            .find_map(|&pt| Some((pt, codec_of(pt)?)))
        else {
            return Err(SdpError::NoCommonCodec {
                offered: self.describe_formats(),
            });
        };
        let dtmf_pt = self.payload_types.iter().copied().find(|&pt| {
            mapping(pt).is_some_and(|m| {
                m.name.eq_ignore_ascii_case("telephone-event") && m.clock == codec.rtp_clock()
            })
        });
        Ok(Negotiated {
            remote: SocketAddr::new(self.connection, self.port),
            codec,
            pt,
            dtmf_pt,
            direction: self.remote_direction().reverse(),
        })
    }

    /// "0 8 97(speex/16000)": the offered formats, for the 488 reason.
    fn describe_formats(&self) -> String {
        let mut out = String::new();
        for (i, &pt) in self.payload_types.iter().enumerate().take(16) {
            if i > 0 {
                out.push(' ');
            }
            match self.rtpmap(pt) {
                Some(m) => {
                    let _ = write!(out, "{pt}({}/{})", m.name, m.clock);
                }
                None => {
                    let _ = write!(out, "{pt}");
                }
            }
        }
        if out.is_empty() {
            out.push_str("nothing");
        }
        out
    }

    /// Negotiates and writes the answer: our address, the chosen codec and
    /// telephone-event, the direction that answers the remote's, and every
    /// other media line rejected with port 0.
    pub fn answer(&self, local: &LocalMedia) -> Result<Answer, SdpError> {
        let negotiated = self.negotiate()?;
        let mut sdp = session_head(local);
        for (i, m) in self.media.iter().enumerate() {
            if i == self.audio {
                write_audio(&mut sdp, local.port, &m.proto, &negotiated);
            } else {
                let formats = if m.formats.is_empty() {
                    "0".to_string()
                } else {
                    m.formats.join(" ")
                };
                line(
                    &mut sdp,
                    format_args!("m={} 0 {} {formats}", m.kind, m.proto),
                );
            }
        }
        Ok(Answer { negotiated, sdp })
    }
}

impl LocalMedia {
    /// Our offer for dial-out: every codec we have, in our order of
    /// preference, telephone-event as [`DTMF_OFFER_PT`], send and receive.
    pub fn offer(&self) -> String {
        let mut sdp = session_head(self);
        let mut m = format!("m=audio {} RTP/AVP", self.port);
        for codec in PhoneCodec::ALL {
            let _ = write!(m, " {}", codec.offer_pt());
        }
        let _ = write!(m, " {DTMF_OFFER_PT}");
        line(&mut sdp, format_args!("{m}"));
        for codec in PhoneCodec::ALL {
            write_codec(&mut sdp, codec.offer_pt(), codec);
        }
        write_dtmf(&mut sdp, DTMF_OFFER_PT, 8000);
        line(&mut sdp, format_args!("a=ptime:20"));
        line(&mut sdp, format_args!("a=sendrecv"));
        sdp
    }
}

/// Reads the answer to our [`LocalMedia::offer`]. Payload types the answer
/// uses without an rtpmap are read as we offered them.
pub fn parse_answer(sdp: &str) -> Result<Negotiated, SdpError> {
    Offer::parse(sdp)?.negotiate_with(|pt| {
        let ours = |name: &str, clock, channels| RtpMap {
            pt,
            name: name.to_string(),
            clock,
            channels,
        };
        match pt {
            DTMF_OFFER_PT => Some(ours("telephone-event", 8000, None)),
            _ => PhoneCodec::ALL
                .into_iter()
                .find(|c| c.offer_pt() == pt && c.static_pt().is_none())
                .map(|c| ours(c.encoding_name(), c.rtp_clock(), c.sdp_channels())),
        }
    })
}

fn line(sdp: &mut String, args: std::fmt::Arguments<'_>) {
    let _ = sdp.write_fmt(args);
    sdp.push_str("\r\n");
}

fn addr_fields(addr: IpAddr) -> (&'static str, String) {
    match addr {
        IpAddr::V4(a) => ("IP4", a.to_string()),
        IpAddr::V6(a) => ("IP6", a.to_string()),
    }
}

fn session_head(local: &LocalMedia) -> String {
    let (kind, addr) = addr_fields(local.addr);
    let mut sdp = String::with_capacity(512);
    line(&mut sdp, format_args!("v=0"));
    line(
        &mut sdp,
        format_args!(
            "o=- {} {} IN {kind} {addr}",
            local.session_id, local.session_version
        ),
    );
    line(&mut sdp, format_args!("s=-"));
    line(&mut sdp, format_args!("c=IN {kind} {addr}"));
    line(&mut sdp, format_args!("t=0 0"));
    sdp
}

fn write_codec(sdp: &mut String, pt: u8, codec: PhoneCodec) {
    let channels = codec
        .sdp_channels()
        .map(|c| format!("/{c}"))
        .unwrap_or_default();
    line(
        sdp,
        format_args!(
            "a=rtpmap:{pt} {}/{}{channels}",
            codec.encoding_name(),
            codec.rtp_clock()
        ),
    );
    if codec == PhoneCodec::Opus {
        line(sdp, format_args!("a=fmtp:{pt} useinbandfec=1"));
    }
}

fn write_dtmf(sdp: &mut String, pt: u8, clock: u32) {
    line(sdp, format_args!("a=rtpmap:{pt} telephone-event/{clock}"));
    line(sdp, format_args!("a=fmtp:{pt} 0-16"));
}

fn write_audio(sdp: &mut String, port: u16, proto: &str, n: &Negotiated) {
    let dtmf = n.dtmf_pt.map(|pt| format!(" {pt}")).unwrap_or_default();
    line(sdp, format_args!("m=audio {port} {proto} {}{dtmf}", n.pt));
    write_codec(sdp, n.pt, n.codec);
    if let Some(pt) = n.dtmf_pt {
        write_dtmf(sdp, pt, n.codec.rtp_clock());
    }
    line(sdp, format_args!("a=ptime:20"));
    line(sdp, format_args!("a={}", n.direction.as_str()));
}
