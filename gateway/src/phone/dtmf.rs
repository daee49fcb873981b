//! RFC 4733 telephone-events: DTMF digits carried in RTP.
//!
//! An event is a run of packets sharing one RTP timestamp (the event's
//! start): the first carries the marker bit, updates carry the duration so
//! far, and the last is sent three times with the end bit. The
//! [`DtmfReceiver`] turns such runs into one [`Digit`] each: when the first
//! end packet arrives, or, if every end packet was lost, when a newer event
//! starts or nothing has been heard for [`EVENT_TIMEOUT`]. Time is an
//! argument. The [`DtmfSender`] produces the packet schedule for one digit
//! (for dial-out to IVRs); [`super::rtp::RtpSender::other`] stamps it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// An event with no news for this long is taken as ended (its end packets
/// were lost). Senders refresh a held key every 50 ms or so.
pub const EVENT_TIMEOUT: Duration = Duration::from_millis(600);

/// Errors of the event codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtmfError {
    /// An event payload shorter than 4 bytes (the peer's fault; drop it).
    #[error("telephone-event payload of {0} bytes, at least 4 expected")]
    TooShort(usize),
    /// A character that is not a DTMF key (the caller's fault).
    #[error("{0:?} is not a DTMF key (0-9, *, #, A-D)")]
    NotAKey(char),
}

/// The DTMF key of event code 0..=15.
pub fn event_key(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None,
    })
}

/// The event code of a DTMF key (letters in either case).
pub fn key_event(key: char) -> Option<u8> {
    Some(match key.to_ascii_uppercase() {
        d @ '0'..='9' => d as u8 - b'0',
        '*' => 10,
        '#' => 11,
        l @ 'A'..='D' => l as u8 - b'A' + 12,
        _ => return None,
    })
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0-9, 10 `*`, 11 `#`, 12-15 A-D, 16 flash, more for tones.
    pub event: u8,
    /// Set on the final packets of the event.
    pub end: bool,
    /// Power level, 0..=63 meaning 0 to -63 dBm0.
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event of a payload (the rest, if any, is ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        match payload {
            [event, flags, d0, d1, ..] => Ok(TelephoneEvent {
                event: *event,
                end: flags & 0x80 != 0,
                volume: flags & 0x3F,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => Err(DtmfError::TooShort(payload.len())),
        }
    }

    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d0,
            d1,
        ]
    }
}

/// A key press, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Digit {
    /// `0`-`9`, `*`, `#` or `A`-`D`.
    pub key: char,
    /// The event's RTP timestamp (its start).
    pub ts: u32,
    /// The longest duration heard, in RTP timestamp units.
    pub duration: u16,
    /// Whether an end packet arrived (false: inferred from a newer event
    /// or from silence).
    pub ended: bool,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    ts: u32,
    event: u8,
    duration: u16,
    /// Reported already, or not a digit at all.
    done: bool,
    last_heard: Instant,
}

/// Turns received telephone-event packets into digits, once per event.
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    current: Option<Current>,
    digits: VecDeque<Digit>,
    /// Timestamps of the last few events (and when they were last heard),
    /// whose late packets are ignored.
    earlier: VecDeque<(u32, Instant)>,
}

/// How many past events' timestamps are remembered.
const EARLIER: usize = 4;

/// A packet with an old event's timestamp this long after that event was
/// last heard is a new key press, not a late packet (reordering is a few
/// tens of milliseconds; key presses are at least ~100 ms apart).
const REPLAY_GAP: Duration = Duration::from_millis(80);

impl DtmfReceiver {
    /// A receiver that has heard nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the payload of a packet of the negotiated telephone-event
    /// payload type, with its RTP timestamp, received at `now`.
    pub fn receive(&mut self, now: Instant, ts: u32, payload: &[u8]) -> Result<(), DtmfError> {
        let ev = TelephoneEvent::parse(payload)?;
        if let Some(cur) = &mut self.current {
            let quiet = now.saturating_duration_since(cur.last_heard);
            // A press starts with a packet without the end bit; late end
            // packets are never a new press.
            let new_press = !ev.end;
            if cur.ts == ts && !(cur.done && quiet > REPLAY_GAP && new_press) {
                cur.last_heard = now;
                cur.duration = cur.duration.max(ev.duration);
                if ev.end {
                    Self::report(&mut self.digits, cur, true);
                }
                return Ok(());
            }
            let late = self.earlier.iter().any(|(t, heard)| {
                *t == ts && (ev.end || now.saturating_duration_since(*heard) <= REPLAY_GAP)
            });
            if late {
                // A late packet of an earlier event: already dealt with.
                return Ok(());
            }
            // Another event. Timestamps need not grow, nor differ: recorded
            // key presses played back to back jump backwards and repeat. If
            // the last event never ended, it did now.
            Self::report(&mut self.digits, cur, false);
            if self.earlier.len() == EARLIER {
                self.earlier.pop_front();
            }
            self.earlier.push_back((cur.ts, cur.last_heard));
        }
        let cur = self.current.insert(Current {
            ts,
            event: ev.event,
            duration: ev.duration,
            done: event_key(ev.event).is_none(),
            last_heard: now,
        });
        if ev.end {
            Self::report(&mut self.digits, cur, true);
        }
        Ok(())
    }

    fn report(digits: &mut VecDeque<Digit>, cur: &mut Current, ended: bool) {
        if cur.done {
            return;
        }
        cur.done = true;
        if let Some(key) = event_key(cur.event) {
            digits.push_back(Digit {
                key,
                ts: cur.ts,
                duration: cur.duration,
                ended,
            });
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current
            .filter(|c| !c.done)
            .map(|c| c.last_heard + EVENT_TIMEOUT)
    }

    /// Reports an event whose end packets never came.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(cur) = &mut self.current {
            if now >= cur.last_heard + EVENT_TIMEOUT {
                Self::report(&mut self.digits, cur, false);
            }
        }
    }

    /// The next digit heard, oldest first.
    pub fn poll_digit(&mut self) -> Option<Digit> {
        self.digits.pop_front()
    }
}

/// One packet of a digit being sent: when (from the key press), with
/// which marker bit, and its payload. All of a digit's packets carry the
/// RTP timestamp of the moment the digit started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    pub offset: Duration,
    pub marker: bool,
    pub payload: [u8; 4],
}

/// The packets for one digit: a first packet with the marker bit, an update
/// every [`DtmfSender::UPDATE`], then the end packet three times, 20 ms apart.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    event: u8,
    volume: u8,
    clock: u32,
    /// The digit's length in timestamp units.
    length: u16,
    /// Packets produced so far.
    sent: u32,
}

impl DtmfSender {
    /// Time between updates of a held key.
    pub const UPDATE: Duration = Duration::from_millis(50);
    /// Time between the three end packets.
    pub const END_SPACING: Duration = Duration::from_millis(20);

    /// A sender for `key` held for `length` (100 ms suits most IVRs; capped
    /// at what the 16-bit duration field holds) on an RTP clock of
    /// `clock_rate` Hz, at -10 dBm0.
    pub fn new(key: char, length: Duration, clock_rate: u32) -> Result<Self, DtmfError> {
        let event = key_event(key).ok_or(DtmfError::NotAKey(key))?;
        let ts = length.as_millis() * u128::from(clock_rate) / 1000;
        Ok(DtmfSender {
            event,
            volume: 10,
            clock: clock_rate.max(1),
            length: u16::try_from(ts).unwrap_or(u16::MAX).max(1),
            sent: 0,
        })
    }

    /// The same sender at `volume` (0..=63, meaning -volume dBm0).
    pub fn with_volume(mut self, volume: u8) -> Self {
        self.volume = volume.min(63);
        self
    }

    fn ts_to_time(&self, ts: u32) -> Duration {
        Duration::from_micros(u64::from(ts) * 1_000_000 / u64::from(self.clock))
    }

    fn update_ts(&self) -> u32 {
        (Self::UPDATE.as_micros() * u128::from(self.clock) / 1_000_000) as u32
    }

    /// The next packet whose offset has come by `elapsed` since the key
    /// press (call on every tick; `None` once nothing is due).
    pub fn due(&mut self, elapsed: Duration) -> Option<EventPacket> {
        let next = self.clone().next()?;
        if next.offset <= elapsed {
            self.next()
        } else {
            None
        }
    }

    /// Whether every packet has been produced.
    pub fn is_done(&self) -> bool {
        self.clone().next().is_none()
    }
}

impl Iterator for DtmfSender {
    type Item = EventPacket;

    fn next(&mut self) -> Option<EventPacket> {
        let step = self.update_ts().max(1);
        let length = u32::from(self.length);
        let updates = length.div_ceil(step);
        let k = self.sent;
        let (offset, end, duration) = if k < updates {
            // Update k covers the media up to the next update (or the end).
            (
                self.ts_to_time(k * step),
                false,
                ((k + 1) * step).min(length),
            )
        } else if k < updates + 3 {
            let spacing = Self::END_SPACING * (k - updates);
            (self.ts_to_time(length) + spacing, true, length)
        } else {
            return None;
        };
        self.sent += 1;
        Some(EventPacket {
            offset,
            marker: k == 0,
            payload: TelephoneEvent {
                event: self.event,
                end,
                volume: self.volume,
                duration: duration as u16, // <= length, a u16
            }
            .to_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn event(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    fn drain(rx: &mut DtmfReceiver) -> Vec<(char, u32, bool)> {
        std::iter::from_fn(|| rx.poll_digit())
            .map(|d| (d.key, d.ts, d.ended))
            .collect()
    }

    #[test]
    fn payload_round_trip_and_keys() {
        let bytes = [11, 0x8A, 0x03, 0x20];
        let ev = TelephoneEvent::parse(&bytes).unwrap();
        assert_eq!(
            ev,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(ev.to_bytes(), bytes);
        assert_eq!(
            TelephoneEvent::parse(&bytes[..3]),
            Err(DtmfError::TooShort(3))
        );
        let keys: String = (0..16).filter_map(event_key).collect();
        assert_eq!(keys, "0123456789*#ABCD");
        assert_eq!(event_key(16), None);
        for (i, k) in keys.chars().enumerate() {
            assert_eq!(key_event(k), Some(i as u8));
        }
        assert_eq!(key_event('d'), Some(15));
        assert_eq!(key_event('x'), None);
    }

    #[test]
    fn three_end_packets_make_one_digit() {
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new();
        let packets = [
            (1000, event(5, false, 160)),
            (1000, event(5, false, 400)),
            (1000, event(5, true, 800)),
            (1000, event(5, true, 800)),
            (1000, event(5, true, 800)),
            // The same key again: a new event, a new timestamp.
            (3000, event(5, false, 160)),
            (3000, event(5, true, 640)),
            (3000, event(5, true, 640)),
            // A late duplicate of the first event changes nothing.
            (1000, event(5, true, 800)),
            (3000, event(5, true, 640)),
        ];
        for (i, (ts, p)) in packets.iter().enumerate() {
            rx.receive(t0 + 20 * i as u32 * MS, *ts, p).unwrap();
        }
        assert_eq!(drain(&mut rx), [('5', 1000, true), ('5', 3000, true)]);
        assert_eq!(rx.poll_timeout(), None);
    }

    #[test]
    fn lost_end_packets_are_inferred() {
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new();
        // '1' never ends; '#' starts (its first packets lost too) and ends.
        rx.receive(t0, 100, &event(1, false, 160)).unwrap();
        rx.receive(t0 + 50 * MS, 100, &event(1, false, 560))
            .unwrap();
        assert_eq!(rx.poll_digit(), None);
        rx.receive(t0 + 300 * MS, 4100, &event(11, true, 800))
            .unwrap();
        let got: Vec<Digit> = std::iter::from_fn(|| rx.poll_digit()).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].key, got[0].duration, got[0].ended),
            ('1', 560, false)
        );
        assert_eq!((got[1].key, got[1].ended), ('#', true));
        // 'A' starts and then nothing: reported when the timeout passes.
        rx.receive(t0 + 400 * MS, 9000, &event(12, false, 160))
            .unwrap();
        let due = rx.poll_timeout().unwrap();
        assert_eq!(due, t0 + 400 * MS + EVENT_TIMEOUT);
        rx.handle_timeout(due - MS);
        assert_eq!(rx.poll_digit(), None);
        rx.handle_timeout(due);
        assert_eq!(drain(&mut rx), [('A', 9000, false)]);
        assert_eq!(rx.poll_timeout(), None);
        // Its end packets arriving later do not repeat it.
        rx.receive(due + MS, 9000, &event(12, true, 800)).unwrap();
        assert_eq!(rx.poll_digit(), None);
    }

    #[test]
    fn flash_and_garbage_are_not_digits() {
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new();
        rx.receive(t0, 10, &event(16, true, 800)).unwrap();
        rx.receive(t0, 20, &event(200, false, 0)).unwrap();
        rx.handle_timeout(t0 + EVENT_TIMEOUT);
        assert_eq!(rx.poll_digit(), None);
        assert_eq!(rx.receive(t0, 30, &[1, 2]), Err(DtmfError::TooShort(2)));
    }

    #[test]
    fn sender_schedule_for_a_100ms_digit() {
        let tx = DtmfSender::new('7', 100 * MS, 8000).unwrap();
        let packets: Vec<(u64, bool, TelephoneEvent)> = tx
            .map(|p| {
                let ev = TelephoneEvent::parse(&p.payload).unwrap();
                (p.offset.as_millis() as u64, p.marker, ev)
            })
            .collect();
        let summary: Vec<(u64, bool, bool, u16)> = packets
            .iter()
            .map(|(t, m, ev)| (*t, *m, ev.end, ev.duration))
            .collect();
        assert_eq!(
            summary,
            [
                (0, true, false, 400),
                (50, false, false, 800),
                (100, false, true, 800),
                (120, false, true, 800),
                (140, false, true, 800),
            ]
        );
        assert!(packets
            .iter()
            .all(|(_, _, ev)| ev.event == 7 && ev.volume == 10));
        assert_eq!(
            DtmfSender::new('x', MS, 8000).err(),
            Some(DtmfError::NotAKey('x'))
        );
    }

    #[test]
    fn sender_and_receiver_agree() {
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new();
        let mut ts = 50_000u32;
        for key in "19#*D".chars() {
            let mut tx = DtmfSender::new(key, 120 * MS, 8000).unwrap();
            // Step a 20 ms clock, sending what is due.
            let mut elapsed = Duration::ZERO;
            while !tx.is_done() {
                while let Some(p) = tx.due(elapsed) {
                    rx.receive(t0 + elapsed, ts, &p.payload).unwrap();
                }
                elapsed += 20 * MS;
            }
            ts = ts.wrapping_add(8000);
        }
        let keys: String = std::iter::from_fn(|| rx.poll_digit())
            .map(|d| d.key)
            .collect();
        assert_eq!(keys, "19#*D");
    }
}
