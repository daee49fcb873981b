//! Free loopback TCP ports for servers that tests start.
//!
//! Contract: [`free_port`] and [`free_ports`] ask the kernel for an unused
//! port on `127.0.0.1` (bind to port 0, read the port, close the socket) and
//! never hand out the same port twice within one test process, so parallel
//! tests in one binary cannot collide with each other. Another process may
//! still grab a port between the check and the server's own bind; callers
//! that start servers must detect a failed bind and retry with new ports
//! (the Prosody harness does).

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, OnceLock};

/// Ports already handed out by this process.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// One free TCP port on 127.0.0.1.
pub fn free_port() -> io::Result<u16> {
    Ok(free_ports(1)?[0])
}

/// `n` distinct free TCP ports on 127.0.0.1.
///
/// The listeners are held open until all `n` are found, so the kernel gives
/// distinct ports; ports this process handed out before are skipped.
pub fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    // Holding the lock across the binds keeps two threads from both
    // accepting a port the kernel hands out again right after a close.
    let mut given = handed_out()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut held = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    let mut attempts = 0;
    while ports.len() < n {
        attempts += 1;
        if attempts > 100 * n.max(1) {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "no unused loopback port found after many attempts",
            ));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        // Keep even a rejected listener open so the kernel moves on.
        held.push(listener);
        if given.insert(port) {
            ports.push(port);
        }
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports = free_ports(8).unwrap();
        let unique: HashSet<_> = ports.iter().collect();
        assert_eq!(unique.len(), 8);
        for port in ports {
            assert_ne!(port, 0);
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        }
    }

    #[test]
    fn never_the_same_port_twice() {
        let a: HashSet<_> = free_ports(20).unwrap().into_iter().collect();
        let b: HashSet<_> = free_ports(20).unwrap().into_iter().collect();
        assert!(a.is_disjoint(&b));
    }
}
