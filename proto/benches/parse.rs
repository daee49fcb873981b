//! Parse benchmarks: the 220 KB Jicofo session-initiate (518 sources) from
//! text to `Jingle` (minidom parse included), the same to SDP, and a Chromium
//! offer from text to Jingle contents.
//!
//! Run: `cargo bench -p proto --bench parse`. The shared fixtures are found
//! as in the tests (`<repo>/../shared/fixtures`, or `SHARED_FIXTURES`).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proto::jingle::Jingle;
use proto::sdp::{jingle_to_sdp, sdp_to_jingle, Sdp};

fn shared(rel: &str) -> String {
    let dir = std::env::var("SHARED_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
        });
    let path = dir.join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn parse_jingle(xml: &str) -> Jingle {
    let iq = proto::parse_xml(xml).expect("fixture is XML");
    let jingle = iq
        .get_child("jingle", proto::ns::JINGLE)
        .expect("fixture has <jingle>");
    Jingle::try_from(jingle).expect("fixture parses")
}

fn benches(c: &mut Criterion) {
    let xml = shared("jitsi-xml/jingle-session-initiate-jitsi.xml");
    let jingle = parse_jingle(&xml);
    let sdp_text = jingle_to_sdp(&jingle).to_string();

    let mut g = c.benchmark_group("session-initiate-220k");
    g.throughput(Throughput::Bytes(xml.len() as u64));
    // The floor: the XML parse alone (minidom), which every stanza pays
    // before any of our code runs.
    g.bench_function("xml_str_to_element", |b| {
        b.iter(|| proto::parse_xml(black_box(&xml)).expect("fixture is XML"))
    });
    g.bench_function("xml_str_to_jingle", |b| {
        b.iter(|| parse_jingle(black_box(&xml)))
    });
    g.bench_function("jingle_to_sdp", |b| {
        b.iter(|| jingle_to_sdp(black_box(&jingle)))
    });
    g.bench_function("jingle_to_sdp_text", |b| {
        b.iter(|| jingle_to_sdp(black_box(&jingle)).to_string())
    });
    g.bench_function("sdp_text_to_contents", |b| {
        b.iter(|| sdp_to_jingle(&Sdp::parse(black_box(&sdp_text)).expect("own SDP")).expect("maps"))
    });
    g.finish();

    let offer = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sdp/chromium-offer-audio-video.sdp"
    ))
    .expect("Chromium fixture");
    c.bench_function("chromium_offer_to_contents", |b| {
        b.iter(|| sdp_to_jingle(&Sdp::parse(black_box(&offer)).expect("parses")).expect("maps"))
    });
}

criterion_group!(parse, benches);
criterion_main!(parse);
