//! A telephone for the SIP gateway's end-to-end tests: sipp as the caller,
//! audio it can play, and an RTP receiver to hear what comes back.
//!
//! Contract:
//! - [`write_tone_pcap`] writes a G.711 tone as a pcap that sipp's
//!   `<exec play_pcap_audio=FILE/>` plays (20 ms RTP packets, paced);
//!   [`read_rtp_pcap`] reads the RTP of such files back.
//! - [`RtpSink`] receives RTP on a loopback port: counts, payload types,
//!   sources, decoded G.711 audio ([`RtpSink::dominant_hz`],
//!   [`RtpSink::rms`]) and RFC 4733 events ([`RtpSink::digits`]).
//! - [`dial_in`] and [`flood_invites`] build sipp UAC scenarios (XML for
//!   `sipp::Scenario::Xml`): one caller with [`Step`]s after the answer,
//!   or many short calls that take 200 or a rejection.
//! - [`run_call`] is `sipp::run` (one call) that retries when sipp's SIP
//!   port turns out taken; [`run_calls`] plays many (`-r/-rp/-m/-l`) and
//!   returns sipp's per-message [`Counts`] and call [`Stats`].
//!
//! Debian's DTMF pcaps (`/usr/share/sip-tester/dtmf_2833_*.pcap`) carry RTP
//! payload type 101 ([`DTMF_PCAP_PT`]). sipp plays pcaps from a raw
//! socket: scenarios with audio need root or CAP_NET_RAW. G.711 is written
//! here (module `g711`), not taken from the gateway, so that the two
//! implementations check each other.

pub mod analysis;
pub mod bench;
pub mod flood;
mod g711;
mod load;
mod pcap;
mod rtp;
mod scenario;
mod sink;
#[cfg(test)]
mod sipp_tests;
pub mod uas;
pub mod web_talker;

pub use g711::Law;
pub use load::{run_call, run_calls, Counts, Load, LoadOutcome, Stats};
pub use pcap::{read_rtp_pcap, write_tone_pcap, PcapRtp, SAMPLE_RATE, TONE_SSRC};
pub use scenario::{
    dial_in, dtmf_pcap, flood_invites, DialIn, Flood, Media, Step, DTMF_KEY_TIME, DTMF_PCAP_PT,
    DTMF_PCAP_SPAN, DTMF_PCAP_SSRC, ROOM_HEADER, SIP_TESTER_DIR,
};
pub use sink::{DtmfEvent, RtpSink, DEFAULT_EVENT_PT, PCM_KEPT};
