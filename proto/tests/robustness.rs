//! Bad input never panics: every parser the network reaches is fed
//! deterministic mutations of the real fixtures (truncations, byte flips,
//! attribute values replaced by hostile ones) and must return `Ok` or `Err`.

mod common;

use minidom::Element;

/// A small deterministic generator (xorshift64), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const HOSTILE: &[&str] = &[
    "",
    " ",
    "-1",
    "0",
    "4294967296",
    "99999999999999999999",
    "1e309",
    "NaN",
    "true",
    "\u{0}",
    "é",
    "a@b@c",
    "@",
    "/",
    "xyz",
    "00:11",
    "::",
    "256.256.256.256",
    "[]",
    "{}",
    "\"",
    "0x10",
    "-0",
    "+5",
];

/// Mutations of one XML text: truncations, byte flips and attribute values
/// swapped for hostile ones.
fn xml_mutations(text: &str, rng: &mut Rng, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let quotes: Vec<usize> = text.match_indices(['\'', '"']).map(|(i, _)| i).collect();
    for i in 0..n {
        let mut s = text.to_owned();
        match i % 3 {
            0 => {
                let mut cut = rng.below(s.len());
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
            }
            1 => {
                let mut bytes = s.into_bytes();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(bytes.len());
                    bytes[at] = b"<>/='\" x09-:;&"[rng.below(14)];
                }
                s = String::from_utf8_lossy(&bytes).into_owned();
            }
            _ => {
                if quotes.len() >= 2 {
                    let k = rng.below(quotes.len() - 1);
                    let (a, b) = (quotes[k], quotes[k + 1]);
                    let q = &text[a..a + 1];
                    if &text[b..b + 1] == q && !text[a + 1..b].contains(['<', '>']) {
                        let v = HOSTILE[rng.below(HOSTILE.len())];
                        s = format!("{}{}{}", &text[..a + 1], v.replace(q, ""), &text[b..]);
                    }
                }
            }
        }
        out.push(s);
    }
    out
}

/// Runs every XML parser of the crate on `elem` and all its descendants.
fn parse_everything(elem: &Element) {
    let _ = proto::focus::ConferenceIq::try_from(elem);
    let _ = proto::focus::BridgeSession::try_from(elem);
    let _ = proto::jibri::JibriIq::try_from(elem);
    let _ = proto::jibri::JibriStatus::try_from(elem);
    let _ = proto::jibri::RecordingStatus::try_from(elem);
    let _ = proto::jibri::SipCallState::try_from(elem);
    let _ = proto::colibri::ColibriStats::try_from(elem);
    let _ = proto::rayo::RayoIq::try_from(elem);
    let _ = proto::mute::MuteIq::try_from(elem);
    let _ = proto::presence::Features::try_from(elem);
    let _ = proto::presence::VisitorsIq::try_from(elem);
    let _ = proto::presence::JitsiPresence::from_payloads(elem.children().cloned().collect());
    let _ =
        proto::presence::JitsiPresence::from_payloads_lenient(elem.children().cloned().collect());
    extra_parsers(elem);
    for child in elem.children() {
        parse_everything(child);
    }
}

#[path = "robustness_jingle.rs"]
mod jingle_parsers;
use jingle_parsers::extra_parsers;

fn fixture_files(dir: &str, ext: &str) -> Vec<(String, String)> {
    let path = common::fixtures_dir().join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn xml_parsers_survive_mutated_fixtures() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut parsed = 0;
    for (name, text) in fixture_files("jitsi-xml", "xml") {
        // The 220 KB stanza gets fewer mutations: each parse is large.
        let n = if text.len() > 50_000 { 30 } else { 300 };
        for m in xml_mutations(&text, &mut rng, n) {
            if let Ok(elem) = proto::parse_xml(&m) {
                parsed += 1;
                parse_everything(&elem);
            }
        }
        let _ = name;
    }
    assert!(
        parsed > 1000,
        "too few mutations were well-formed XML ({parsed}) to exercise the parsers"
    );
}

#[test]
fn bridge_channel_parser_survives_mutated_fixtures() {
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let (mut ok, mut refused) = (0, 0);
    for (_, text) in fixture_files("colibri-ws", "json") {
        for m in xml_mutations(&text, &mut rng, 200) {
            match proto::bridge_channel::BridgeMessage::parse(&m) {
                Ok(_) => ok += 1,
                Err(_) => refused += 1,
            }
        }
    }
    // Deeply nested and oversized inputs.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(proto::bridge_channel::BridgeMessage::parse(&deep).is_err());
    let huge = format!(
        "{{\"colibriClass\":\"ForwardedSources\",\"forwardedSources\":[{}\"x\"]}}",
        "\"s\",".repeat(100_000)
    );
    assert!(proto::bridge_channel::BridgeMessage::parse(&huge).is_ok());
    // The mutations reach both the accepting and the refusing paths.
    assert!(ok > 100 && refused > 1000, "ok {ok}, refused {refused}");
}

#[test]
fn sdp_parser_survives_mutated_chromium_sdp() {
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sdp");
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "sdp") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for m in xml_mutations(&text, &mut rng, 400) {
            if let Ok(sdp) = proto::sdp::Sdp::parse(&m) {
                parsed += 1;
                if let Ok((contents, groups)) = proto::sdp::sdp_to_jingle(&sdp) {
                    let _ = proto::sdp::contents_to_sdp(
                        &contents,
                        &groups,
                        proto::jingle::Role::Initiator,
                    )
                    .to_string();
                }
            }
        }
    }
    assert!(parsed > 100, "too few mutations parsed as SDP ({parsed})");
}
