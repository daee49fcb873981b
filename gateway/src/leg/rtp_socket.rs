//! A phone leg's RTP socket, in one of two modes.
//!
//! While a call is in the voice menu or joining, its task awaits the socket
//! ([`RtpSocket::wait`]), so the socket is registered with the runtime. Once
//! the call is in a room, the room's 20 ms clock reads it
//! ([`RtpSocket::try_recv_from`]) and nothing awaits it:
//! [`RtpSocket::poll_on_clock`] then takes it out of the runtime, so that
//! an arriving datagram no longer wakes a runtime thread (at 50 packets a
//! second per call, those wake-ups were a large share of the kernel's time).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;

#[derive(Debug)]
pub enum RtpSocket {
    /// Registered with the runtime; tasks may await it.
    Async(Arc<UdpSocket>),
    /// Non-blocking, read on a clock only.
    Polled(std::net::UdpSocket),
    /// The runtime failed to hand the socket over (it is closed): reads
    /// and sends fail, and the call ends on inactivity.
    Lost,
}

impl RtpSocket {
    pub fn new(socket: UdpSocket) -> Self {
        RtpSocket::Async(Arc::new(socket))
    }

    /// The runtime's socket, to await (`None` once polled on a clock).
    pub fn wait(&self) -> Option<Arc<UdpSocket>> {
        match self {
            RtpSocket::Async(s) => Some(Arc::clone(s)),
            RtpSocket::Polled(_) | RtpSocket::Lost => None,
        }
    }

    /// Takes the socket out of the runtime, unless a task still holds it
    /// (then it stays as it is: it still reads without waiting).
    pub fn poll_on_clock(&mut self) {
        let RtpSocket::Async(arc) = std::mem::replace(self, RtpSocket::Lost) else {
            return;
        };
        *self = match Arc::try_unwrap(arc) {
            Ok(socket) => match socket.into_std() {
                Ok(std) => RtpSocket::Polled(std),
                Err(e) => {
                    tracing::warn!("RTP socket lost leaving the runtime: {e}");
                    RtpSocket::Lost
                }
            },
            Err(arc) => {
                tracing::debug!("RTP socket still shared: stays with the runtime");
                RtpSocket::Async(arc)
            }
        };
    }

    /// One waiting datagram, or `WouldBlock`.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            RtpSocket::Async(s) => s.try_recv_from(buf),
            RtpSocket::Polled(s) => s.recv_from(buf),
            RtpSocket::Lost => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Sends without waiting (a full buffer drops the datagram).
    pub fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        match self {
            RtpSocket::Async(s) => s.try_send_to(buf, to),
            RtpSocket::Polled(s) => s.send_to(buf, to),
            RtpSocket::Lost => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_polled_socket_still_sends_and_reads_without_blocking() {
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut s = RtpSocket::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let shared = s.wait().expect("async at first");
        s.poll_on_clock();
        assert!(matches!(s, RtpSocket::Async(_)), "a task still holds it");
        drop(shared);
        s.poll_on_clock();
        assert!(matches!(s, RtpSocket::Polled(_)));
        assert!(s.wait().is_none());
        let mut buf = [0u8; 16];
        let e = s.try_recv_from(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "nothing waiting");
        let addr = match &s {
            RtpSocket::Polled(p) => p.local_addr().unwrap(),
            _ => unreachable!("polled"),
        };
        peer.send_to(b"rtp", addr).await.unwrap();
        let from = peer.local_addr().unwrap();
        let got = loop {
            match s.try_recv_from(&mut buf) {
                Ok(r) => break r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(got, (3, from));
        assert_eq!(&buf[..3], b"rtp");
        s.try_send_to(b"back", from).unwrap();
        let mut back = [0u8; 8];
        assert_eq!(peer.recv_from(&mut back).await.unwrap().0, 4);
    }
}
