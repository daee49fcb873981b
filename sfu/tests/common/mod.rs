//! The loop every in-process str0m test client runs: feed what its socket
//! received, let time pass, send what it wants to send, hand events back.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Instant;

use str0m::net::{Protocol, Receive};
use str0m::{Event, Input, Output, Rtc};
use tokio::net::UdpSocket;

/// Runs one round of `rtc`'s I/O on `socket` (bound at `addr`); each event
/// goes to `on_event`.
pub fn pump(rtc: &mut Rtc, socket: &UdpSocket, addr: SocketAddr, mut on_event: impl FnMut(Event)) {
    let mut buf = [0u8; 2048];
    while let Ok((n, source)) = socket.try_recv_from(&mut buf) {
        let Ok(contents) = buf[..n].try_into() else {
            continue;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: addr,
                contents,
            },
        );
        if rtc.accepts(&input) {
            rtc.handle_input(input).unwrap();
        }
    }
    rtc.handle_input(Input::Timeout(Instant::now())).unwrap();
    loop {
        match rtc.poll_output().unwrap() {
            Output::Timeout(_) => break,
            Output::Transmit(t) => {
                let _ = socket.try_send_to(&t.contents, t.destination);
            }
            Output::Event(e) => on_event(e),
        }
    }
}
