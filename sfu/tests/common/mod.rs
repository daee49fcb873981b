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

/// A test client the helpers below can drive.
pub trait Peer {
    /// One round of its I/O (see [`pump`]).
    fn pump(&mut self);
    /// Whether its ICE and DTLS are up.
    fn is_connected(&self) -> bool;
    /// The plane's key for it.
    fn endpoint(&self) -> String;
}

/// Pumps every client for `d`, a step each millisecond or two.
pub async fn pump_for<P: Peer>(clients: &mut [&mut P], d: std::time::Duration) {
    let end = Instant::now() + d;
    loop {
        for c in clients.iter_mut() {
            c.pump();
        }
        if Instant::now() >= end {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Pumps until every client is connected and the plane said so for each.
pub async fn connect<P: Peer>(clients: &mut [&mut P], events: &mut sfu::plane::PlaneEvents) {
    let end = Instant::now() + std::time::Duration::from_secs(5);
    let mut announced = Vec::new();
    while Instant::now() < end {
        pump_for(clients, std::time::Duration::from_millis(5)).await;
        while let Ok(e) = events.try_recv() {
            if let sfu::plane::PlaneEvent::Connected { endpoint } = e {
                announced.push(endpoint);
            }
        }
        if clients
            .iter()
            .all(|c| c.is_connected() && announced.contains(&c.endpoint()))
        {
            return;
        }
    }
    panic!("not connected: announced {announced:?}");
}
