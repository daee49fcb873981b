//! The XMPP session layer shared by the `sfu`, `recorder` and `gateway`.
//!
//! Two halves, kept apart:
//!
//! - [`core::Session`] is sans-IO: it never reads the clock, never opens a
//!   socket. The driver feeds it connection changes, received stanzas and the
//!   current time; it answers with stanzas to send and [`Event`]s for the
//!   application. It owns the state that must survive reconnects: the rooms
//!   the application wants to be in (rejoined after every reconnect), the IQ
//!   requests awaiting a response (matched by id and sender, failed on
//!   timeout), and what the entity answers to disco#info. IQ requests whose
//!   payload namespace the application did not register are answered
//!   `service-unavailable` here, so a stray or malformed request never needs
//!   application code.
//! - [`driver`] is the thin tokio part: it connects (STARTTLS, or plain TCP on
//!   loopback), logs in with SASL (PLAIN/SCRAM for service accounts,
//!   ANONYMOUS for guests), binds a resource, pumps stanzas between the socket
//!   and the core, and reconnects with [`backoff::Backoff`] when the server
//!   goes away. The application talks to it through a cloneable
//!   [`driver::Handle`] and a stream of [`Event`]s.

pub mod backoff;
pub mod brewery;
pub mod config;
pub mod core;
pub mod driver;

pub use config::{Security, XmppConfig};
pub use core::{
    Event, IncomingIq, IqError, IqKind, Occupant, RoomLeftReason, Session, SessionConfig,
};
pub use driver::{spawn, Handle};

pub use jid;
pub use minidom::Element;
pub use xmpp_parsers;
