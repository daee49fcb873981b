//! The gateway's RFC 4733 receiver against recorded key presses: the
//! sip-tester pcaps that the dial-in tests play. They share one SSRC and
//! their timestamps jump backwards from one key to the next, as recorded
//! sequences played back to back do; every key must still come out once.

use std::time::{Duration, Instant};

use gateway::phone::dtmf::DtmfReceiver;
use tests::phone::{dtmf_pcap, read_rtp_pcap};

#[test]
fn recorded_key_presses_played_back_to_back_give_each_digit_once() {
    let keys = "19#0*55#";
    let mut rx = DtmfReceiver::new();
    let t0 = Instant::now();
    let mut at = t0;
    let mut heard = String::new();
    for key in keys.chars() {
        let packets = read_rtp_pcap(dtmf_pcap(key).expect("a pcap per key")).unwrap();
        assert!(packets.len() >= 4, "{key}: {} packets", packets.len());
        for p in packets {
            at += Duration::from_millis(20);
            rx.receive(at, p.timestamp, &p.payload).unwrap();
            rx.handle_timeout(at);
            while let Some(d) = rx.poll_digit() {
                heard.push(d.key);
            }
        }
        // The gap between keys.
        at += Duration::from_millis(100);
    }
    rx.handle_timeout(at + Duration::from_secs(1));
    while let Some(d) = rx.poll_digit() {
        heard.push(d.key);
    }
    assert_eq!(heard, keys);
}
