//! Mid naming in the session description.
//!
//! str0m chooses random mids for the m-lines we add, while our contract
//! (docs/media-mapping.md) names them: `audio`, `video` (the participant's
//! own sendrecv lines) and `audio-N`, `video-N` (receive slots). These pure
//! functions rename mids in the offer we hand out (`a=mid:` and
//! `a=group:BUNDLE` only) and rename them back in the answer we get, so the
//! participant only ever sees our names and str0m only ever sees its own.

/// One m-line's two names: str0m's internal mid and the name we publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MidName {
    /// The mid str0m chose.
    pub internal: String,
    /// The mid the participant sees.
    pub public: String,
}

/// Rewrites the mids of `sdp` from internal to public names.
pub fn to_public(sdp: &str, names: &[MidName]) -> String {
    rename(sdp, |m| {
        names
            .iter()
            .find(|n| n.internal == m)
            .map(|n| n.public.as_str())
    })
}

/// Rewrites the mids of `sdp` from public to internal names.
///
/// Peers built on str0m answer `audio-1` as `audio_1` (str0m keeps only
/// ASCII alphanumerics in a mid), so punctuation is not significant here.
pub fn to_internal(sdp: &str, names: &[MidName]) -> String {
    rename(sdp, |m| {
        names
            .iter()
            .find(|n| same_mid(&n.public, m))
            .map(|n| n.internal.as_str())
    })
}

fn same_mid(ours: &str, theirs: &str) -> bool {
    ours.len() == theirs.len()
        && ours
            .chars()
            .zip(theirs.chars())
            .all(|(a, b)| a == b || (!a.is_ascii_alphanumeric() && !b.is_ascii_alphanumeric()))
}

fn rename<'a>(sdp: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(sdp.len() + 64);
    for line in sdp.split_inclusive('\n') {
        let (body, eol) = split_eol(line);
        if let Some(mid) = body.strip_prefix("a=mid:") {
            out.push_str("a=mid:");
            out.push_str(lookup(mid).unwrap_or(mid));
        } else if let Some(rest) = body.strip_prefix("a=group:BUNDLE") {
            out.push_str("a=group:BUNDLE");
            for token in rest.split(' ').filter(|t| !t.is_empty()) {
                out.push(' ');
                out.push_str(lookup(token).unwrap_or(token));
            }
        } else {
            out.push_str(body);
        }
        out.push_str(eol);
    }
    out
}

/// The SSRCs we send with on one m-line, as written in an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendSsrcs {
    /// The media SSRC.
    pub ssrc: u32,
    /// Its retransmission SSRC (the second of an `a=ssrc-group:FID`).
    pub rtx: Option<u32>,
}

/// The send SSRCs of every m-line of `sdp` that has any, by mid: the
/// `a=ssrc-group:FID` pair if there is one, else the first `a=ssrc`.
pub fn send_ssrcs(sdp: &str) -> Vec<(String, SendSsrcs)> {
    /// What one m-section said so far.
    #[derive(Default)]
    struct Section {
        mid: Option<String>,
        first: Option<u32>,
        fid: Option<(u32, u32)>,
    }
    impl Section {
        fn finish(self) -> Option<(String, SendSsrcs)> {
            let ssrcs = match (self.fid, self.first) {
                (Some((ssrc, rtx)), _) => SendSsrcs {
                    ssrc,
                    rtx: Some(rtx),
                },
                (None, Some(ssrc)) => SendSsrcs { ssrc, rtx: None },
                (None, None) => return None,
            };
            Some((self.mid?, ssrcs))
        }
    }
    let mut out = Vec::new();
    let mut section: Option<Section> = None;
    for line in sdp.lines() {
        let line = line.trim_end();
        if line.starts_with("m=") {
            out.extend(section.take().and_then(Section::finish));
            section = Some(Section::default());
        }
        let Some(s) = section.as_mut() else {
            continue;
        };
        if let Some(m) = line.strip_prefix("a=mid:") {
            s.mid = Some(m.to_owned());
        } else if let Some(rest) = line.strip_prefix("a=ssrc-group:FID ") {
            let mut it = rest.split(' ').filter_map(|t| t.parse().ok());
            if let (Some(a), Some(b)) = (it.next(), it.next()) {
                s.fid.get_or_insert((a, b));
            }
        } else if let Some(rest) = line.strip_prefix("a=ssrc:") {
            if s.first.is_none() {
                s.first = rest.split(' ').next().and_then(|t| t.parse().ok());
            }
        }
    }
    out.extend(section.and_then(Section::finish));
    out
}

fn split_eol(line: &str) -> (&str, &str) {
    if let Some(b) = line.strip_suffix("\r\n") {
        (b, "\r\n")
    } else if let Some(b) = line.strip_suffix('\n') {
        (b, "\n")
    } else {
        (line, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<MidName> {
        vec![
            MidName {
                internal: "x1a".into(),
                public: "audio".into(),
            },
            MidName {
                internal: "q7Z".into(),
                public: "video-1".into(),
            },
        ]
    }

    #[test]
    fn renames_mid_and_bundle_lines_only() {
        let sdp = "v=0\r\na=group:BUNDLE x1a q7Z\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:x1a\r\na=msid:x1a t\r\nm=video 9 UDP/TLS/RTP/SAVPF 100\r\na=mid:q7Z\r\n";
        let public = to_public(sdp, &names());
        assert_eq!(
            public,
            "v=0\r\na=group:BUNDLE audio video-1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:audio\r\na=msid:x1a t\r\nm=video 9 UDP/TLS/RTP/SAVPF 100\r\na=mid:video-1\r\n"
        );
        assert_eq!(to_internal(&public, &names()), sdp);
    }

    #[test]
    fn send_ssrcs_per_mid_with_fid_pairs() {
        let sdp = "v=0\r\na=group:BUNDLE audio video\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:audio\r\na=ssrc:11 cname:x\r\na=ssrc:11 msid:s t\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 100 96\r\na=mid:video-1\r\na=ssrc:21 cname:y\r\na=ssrc:22 cname:y\r\n\
a=ssrc-group:FID 21 22\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:data\r\n";
        assert_eq!(
            send_ssrcs(sdp),
            vec![
                (
                    "audio".to_owned(),
                    SendSsrcs {
                        ssrc: 11,
                        rtx: None
                    }
                ),
                (
                    "video-1".to_owned(),
                    SendSsrcs {
                        ssrc: 21,
                        rtx: Some(22)
                    }
                ),
            ]
        );
        assert!(send_ssrcs("a=ssrc:garbage\nm=audio\na=ssrc:x").is_empty());
    }

    #[test]
    fn unknown_mids_and_bare_newlines_pass_through() {
        let sdp = "a=group:BUNDLE other audio video_1\na=mid:other\na=mid:audio";
        assert_eq!(
            to_internal(sdp, &names()),
            "a=group:BUNDLE other x1a q7Z\na=mid:other\na=mid:x1a"
        );
    }
}
