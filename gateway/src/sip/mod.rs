//! SIP for the gateway (RFC 3261): the dial-in server core.
//!
//! # Decision: our own sans-IO layer, not rsipstack (nor rsip's parser)
//!
//! * **rsipstack** (0.7, MIT, actively released) is a complete UA stack, but its
//!   transaction and dialog layers are async: the `Endpoint` owns the transports,
//!   spawns tokio tasks, drives timers itself and talks over mpsc channels. That
//!   contradicts the house rule that protocol cores are sans-IO with time as an
//!   argument, and would make deterministic stepping tests (T1/T2 doubling,
//!   Timer H) depend on a runtime. Its embassy option is still async.
//! * **rsip 0.4** (the parser rsipstack forked; last release 2022) rejects 9 of the
//!   13 *valid* RFC 4475 messages (line folding, LWS around `/`, unusual URIs,
//!   extension methods) and does not frame by Content-Length, so it cannot tell
//!   `clerr`/`ncl`/`mcl01` apart. We therefore frame and check requests ourselves
//!   ([`message`], a few hundred lines, driven by the torture suite) and keep no
//!   rsip dependency for now.
//! * What we need is small: UDP (TCP framing to come in the driver), INVITE
//!   server transactions with 100/2xx/non-2xx, T1/T2 retransmission, Timer G/H,
//!   CANCEL, BYE, OPTIONS; the INVITE client side (dial-out) follows the same
//!   shape. All of it is plain state plus `Instant`s, tested without a runtime.
//!
//! # Contract
//!
//! [`Server`] takes [`Input::Receive`] (one datagram or framed message, its source
//! and `now`) and [`Input::Timeout`], and yields [`Output`]s: [`Transmit`]s (to the
//! source address, RFC 3581 style), [`Event`]s and the next timeout. Remote input
//! never panics the core; malformed requests get 400 with a Warning when Via and
//! CSeq are readable, and are dropped otherwise.

pub mod client;
mod client_call;
#[cfg(test)]
mod client_tests;
mod dialog;
mod dialog_client;
mod dialog_timer;
mod digest;
pub mod driver;
mod inbound;
mod message;
pub mod register;
#[cfg(test)]
mod register_tests;
mod response;
mod server;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod torture;
mod uac;
mod uac_dialog;

pub use client::{Client, ClientConfig, ClientEvent, Credentials};
pub use register::{RegisterConfig, RegisterEvent, Registration};
pub use server::{Config, EndReason, Event, Input, Output, Server, Transmit, Transport};

/// A SIP Call-ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(String);

impl CallId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Errors of [`Server::answer`] and [`Server::reject`] (caller's fault, not retryable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("no such call")]
    UnknownCall,
    #[error("call already answered, rejected or ended")]
    AlreadyAnswered,
    #[error("status {0} is not a final non-2xx status")]
    InvalidStatus(u16),
    #[error("call not answered yet; reject it instead")]
    NotAnswered,
    #[error("no re-INVITE waiting for an answer")]
    NoReoffer,
}
