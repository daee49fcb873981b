//! RFC 4475 torture messages fed as UDP datagrams; verdicts per INDEX.md.
//!
//! Where INDEX.md names a registrar's or proxy's answer, we expect the answer
//! of a UAS that is not a registrar (405 for REGISTER, RFC 4475 §3.3.7), and
//! for accepted INVITEs the first response, 100 Trying.

use std::path::PathBuf;
use std::time::Instant;

use super::{Config, Input, Output, Server, Transport};

/// (file, expected first status; `None` = silence).
const VERDICTS: [(&str, Option<u16>); 49] = [
    // Parsed; its To has a tag, so it is a mid-dialog INVITE for a dialog we
    // do not have: 481 (RFC 3261 §12.2.2) is normal processing.
    ("wsinv", Some(481)),
    ("intmeth", Some(501)),
    ("esc01", Some(100)),
    ("escnull", Some(405)),
    ("esc02", Some(501)),
    ("lwsdisp", Some(200)),
    ("longreq", Some(100)),
    ("dblreq", Some(405)),
    ("semiuri", Some(200)),
    ("transports", Some(200)),
    ("mpart01", Some(405)),
    ("unreason", None),
    ("noreason", None),
    ("badinv01", Some(400)),
    ("clerr", Some(400)),
    ("ncl", Some(400)),
    ("scalar02", Some(400)),
    ("scalarlg", None),
    ("quotbal", Some(400)),
    ("ltgtruri", Some(400)),
    ("lwsruri", Some(400)),
    ("lwsstart", Some(400)),
    ("trws", Some(400)),
    ("escruri", Some(400)),
    ("baddate", Some(100)),
    ("regbadct", Some(400)),
    ("badaspec", Some(400)),
    ("baddn", Some(400)),
    ("badvers", Some(505)),
    ("mismatch01", Some(400)),
    ("mismatch02", Some(501)),
    ("bigcode", None),
    ("badbranch", Some(400)),
    ("insuf", Some(400)),
    ("unkscm", Some(416)),
    ("novelsc", Some(416)),
    ("unksm2", Some(405)),
    ("bext01", Some(420)),
    ("invut", Some(415)),
    ("regaut01", Some(405)),
    ("multi01", Some(400)),
    ("mcl01", Some(400)),
    ("bcast", None),
    ("zeromf", Some(200)),
    ("cparam01", Some(405)),
    ("cparam02", Some(405)),
    ("regescrt", Some(405)),
    ("sdp01", Some(406)),
    ("inv2543", Some(100)),
];

fn status_of(bytes: &[u8]) -> Option<u16> {
    std::str::from_utf8(bytes.get(8..11)?).ok()?.parse().ok()
}

#[test]
fn rfc4475_torture_verdicts() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/sip-torture");
    if !dir.is_dir() {
        eprintln!("SKIP: RFC 4475 fixtures not found at {}", dir.display());
        return;
    }
    let source = "192.0.2.9:5060".parse().expect("literal address");
    let mut failures = Vec::new();
    for (name, expected) in VERDICTS {
        let data =
            std::fs::read(dir.join(format!("{name}.dat"))).expect("fixture listed in INDEX.md");
        let mut server = Server::new(Config::default());
        server.handle_input(Input::Receive {
            now: Instant::now(),
            transport: Transport::Udp,
            source,
            data: &data,
        });
        let mut sent = Vec::new();
        loop {
            match server.poll_output() {
                Output::Transmit(t) => sent.push(t.contents),
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
        let got = sent.first().and_then(|m| status_of(m));
        let extra = if name == "dblreq" && sent.len() != 1 {
            " (more than one response)"
        } else {
            ""
        };
        println!("{name:12} expected {expected:?} got {got:?}{extra}");
        if got != expected || !extra.is_empty() {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "verdicts not matched: {failures:?}");
}
