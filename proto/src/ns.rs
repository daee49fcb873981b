//! XML namespaces of every extension this crate parses, in one place.

pub const JABBER_CLIENT: &str = "jabber:client";

/// Conference request (client <-> focus) and `<bridge-session>`.
pub const FOCUS: &str = "http://jitsi.org/protocol/focus";
/// Jibri IQ, `jibri-status`, `busy-status`, `jibri-recording-status`.
pub const JIBRI: &str = "http://jitsi.org/protocol/jibri";
/// `health-status` inside `jibri-status`.
pub const HEALTH: &str = "http://jitsi.org/protocol/health";
/// `jibri-sip-call-state`.
pub const JIBRI_CALL_STATE: &str = "http://jitsi.org/protocol/jibri/call_state";
/// Colibri `stats` (brewery presence) and the `web-socket` transport child.
pub const COLIBRI: &str = "http://jitsi.org/protocol/colibri";
/// Rayo (XEP-0327) as used for SIP dial-out.
pub const RAYO: &str = "urn:xmpp:rayo:1";
/// Audio mute IQ.
pub const MUTE_AUDIO: &str = "http://jitsi.org/jitmeet/audio";
/// Video mute IQ and `source-frame-height`.
pub const MUTE_VIDEO: &str = "http://jitsi.org/jitmeet/video";
/// `ssrc-info`, `json-message`, `permissions`.
pub const JITMEET: &str = "http://jitsi.org/jitmeet";
/// `<startmuted>` in session-initiate.
pub const START_MUTED: &str = "http://jitsi.org/jitmeet/start-muted";
/// Jigasi's `<initiator>` presence extension.
pub const JIGASI: &str = "http://jitsi.org/protocol/jigasi";
/// Jitsi visitors IQ.
pub const VISITORS: &str = "jitsi:visitors";
/// XEP-0172 user nickname.
pub const NICK: &str = "http://jabber.org/protocol/nick";

/// Jingle (XEP-0166).
pub const JINGLE: &str = "urn:xmpp:jingle:1";
/// Jingle RTP sessions (XEP-0167).
pub const JINGLE_RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
/// Source-specific media attributes (XEP-0339).
pub const JINGLE_SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
/// RTCP feedback (XEP-0293).
pub const JINGLE_RTCP_FB: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
/// RTP header extensions (XEP-0294).
pub const JINGLE_RTP_HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
/// ICE-UDP transport (XEP-0176).
pub const JINGLE_ICE_UDP: &str = "urn:xmpp:jingle:transports:ice-udp:1";
/// DTLS-SRTP fingerprint (XEP-0320).
pub const JINGLE_DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
/// Content grouping, BUNDLE (XEP-0338).
pub const JINGLE_GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";

/// Features a participant advertises (values of `<feature var=..>`).
pub mod feature {
    pub const JIBRI: &str = "http://jitsi.org/protocol/jibri";
    pub const JIGASI: &str = "http://jitsi.org/protocol/jigasi";
    pub const TRANSCRIBER: &str = "http://jitsi.org/protocol/transcriber";
    pub const AUDIO_MUTE: &str = "http://jitsi.org/protocol/audio-mute";
    pub const DTMF: &str = "urn:xmpp:jingle:dtmf:0";
    pub const SOURCE_NAME: &str = "http://jitsi.org/source-name";
    pub const SSRC_REWRITING: &str = "http://jitsi.org/ssrc-rewriting-1";
    pub const JSON_SOURCES: &str = "http://jitsi.org/json-encoded-sources";
    pub const RTX: &str = "urn:ietf:rfc:4588";
    pub const TCC: &str = "http://jitsi.org/tcc";
}
