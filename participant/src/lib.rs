//! A service's participant in a meeting (the recorder's hidden one, a phone
//! caller's through the gateway): it logs in, asks the focus for the
//! conference, joins the room with the presence the service chooses, answers
//! the focus's Jingle offer with a str0m WebRTC leg, and opens the bridge
//! channel. See [`meeting`] for the contract.

pub mod meeting;
pub mod rtc;

pub use meeting::{JoinOptions, Meeting, MeetingEvent, Person};
pub use rtc::{Codec, Frame, RtcEvent, RtcLeg};
