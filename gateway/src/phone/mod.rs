//! The phone side of a call: SDP offer/answer, RTP and RFC 4733 events.
