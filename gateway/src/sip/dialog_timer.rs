//! RFC 4028 session timers for dial-in calls, negotiated and run by the core.
//!
//! The INVITE's `Session-Expires` (compact `x`) is honoured when it is at least
//! [`Config::min_se`], else answered with 422 and our `Min-SE` when the caller
//! supports `timer` (without support it is raised silently). A caller that
//! supports `timer` but asks for nothing gets [`Config::session_expires`]. The
//! refresher is the one asked for, else the caller (`uac`); a caller without
//! `timer` support cannot refresh, so then we do. We refresh with UPDATE (no
//! body) at half the interval, only when the peer allows UPDATE; otherwise the
//! timer is left to the caller, or off. Every re-INVITE or UPDATE answered
//! with 2xx refreshes the session; without a refresh we send BYE at
//! expiry minus min(32 s, interval/3) and end the call with
//! [`EndReason::SessionExpired`]. The application sees none of it.

use std::time::{Duration, Instant};

use super::dialog_client::Purpose;
use super::message::Request;
use super::server::{Ctx, State};
use super::{CallId, Config, EndReason, Server};

/// Who refreshes, in the terms of the dialog-creating INVITE: `Uac` is the
/// caller (the peer), `Uas` is us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresher {
    Uac,
    Uas,
}

/// A session timer in force on a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Session {
    /// Session interval in seconds.
    pub(super) interval: u32,
    pub(super) refresher: Refresher,
    /// The peer supports `timer`: our 2xx carries `Require: timer`.
    pub(super) require: bool,
    /// Last refresh (our 2xx, or the 2xx to our UPDATE); `None` before the answer.
    pub(super) refreshed: Option<Instant>,
    /// Our refreshing UPDATE is under way.
    pub(super) refreshing: bool,
}

/// The outcome of [`negotiate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Negotiated {
    /// No session timer.
    Off,
    Timer(Session),
    /// Below our `Min-SE`: answer 422.
    TooSmall,
    /// Unreadable `Session-Expires`: answer 400.
    Invalid(&'static str),
}

/// Negotiates the session timer of an INVITE, re-INVITE or UPDATE; `previous`
/// is the dialog's timer (kept when a refresh request carries none),
/// `allows_update` whether the peer accepts UPDATE (so that we can refresh).
pub(super) fn negotiate(
    req: &Request,
    config: &Config,
    previous: Option<&Session>,
    allows_update: bool,
) -> Negotiated {
    let supports = req
        .values("supported")
        .chain(req.values("require"))
        .any(|v| v.eq_ignore_ascii_case("timer"));
    let requested = match req.one("session-expires").map(parse_session_expires) {
        None => None,
        Some(Ok(requested)) => Some(requested),
        Some(Err(why)) => return Negotiated::Invalid(why),
    };
    let (min_se, default) = (secs(config.min_se), secs(config.session_expires));
    let peer_min = req
        .one("min-se")
        .and_then(|v| v.split(';').next()?.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let (interval, asked) = match (requested, previous) {
        (Some((delta, _)), _) if delta < min_se && supports => return Negotiated::TooSmall,
        (Some((delta, asked)), _) => (delta.max(min_se), asked),
        (None, Some(previous)) => return Negotiated::Timer(previous.clone()),
        (None, None) if supports => {
            let interval = default.max(min_se).max(peer_min);
            (interval, None)
        }
        (None, None) => return Negotiated::Off,
    };
    let mut refresher = match supports {
        true => asked.unwrap_or(Refresher::Uac),
        false => Refresher::Uas,
    };
    if refresher == Refresher::Uas && !allows_update {
        if !supports {
            return Negotiated::Off;
        }
        refresher = Refresher::Uac;
    }
    Negotiated::Timer(Session {
        interval: interval.max(1),
        refresher,
        require: supports,
        refreshed: previous.and_then(|p| p.refreshed),
        refreshing: false,
    })
}

/// Whole seconds, for the wire.
fn secs(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}

/// `delta-seconds[;refresher=uac|uas][;other]`.
fn parse_session_expires(value: &str) -> Result<(u32, Option<Refresher>), &'static str> {
    let mut parts = value.split(';');
    let delta = parts.next().unwrap_or_default().trim();
    if delta.is_empty() || !delta.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid Session-Expires");
    }
    // Larger than any sensible interval: cap rather than refuse.
    let delta = delta.parse::<u32>().unwrap_or(u32::MAX);
    let mut refresher = None;
    for param in parts {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        if name.trim().eq_ignore_ascii_case("refresher") {
            refresher = match value.trim().to_ascii_lowercase().as_str() {
                "uac" => Some(Refresher::Uac),
                "uas" => Some(Refresher::Uas),
                _ => return Err("invalid Session-Expires refresher"),
            };
        }
    }
    Ok((delta, refresher))
}

/// The status and header fields refusing a `Session-Expires`: 422 with our
/// `Min-SE`, or 400 when unreadable.
pub(super) fn refusal(config: &Config, refused: &Negotiated) -> (u16, Vec<(&'static str, String)>) {
    match refused {
        Negotiated::Invalid(why) => (400, vec![("Warning", format!("399 gateway \"{why}\""))]),
        _ => (422, vec![("Min-SE", secs(config.min_se).to_string())]),
    }
}

impl Session {
    /// `Session-Expires` (and `Require: timer`) for our 2xx.
    pub(super) fn headers(&self) -> Vec<(&'static str, String)> {
        let refresher = match self.refresher {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        };
        let mut headers = vec![(
            "Session-Expires",
            format!("{};refresher={refresher}", self.interval),
        )];
        if self.require {
            headers.push(("Require", "timer".to_owned()));
        }
        headers
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.interval))
    }

    /// When we give up waiting for a refresh and send BYE.
    fn bye_at(&self) -> Option<Instant> {
        let interval = self.interval();
        let margin = (interval / 3).min(Duration::from_secs(32));
        // The interval comes from the peer: an absurd one means never.
        self.refreshed?.checked_add(interval - margin)
    }

    /// When we refresh (we are the refresher and no refresh is under way).
    fn refresh_at(&self) -> Option<Instant> {
        let ours = self.refresher == Refresher::Uas && !self.refreshing;
        ours.then(|| self.refreshed?.checked_add(self.interval() / 2))
            .flatten()
    }

    pub(super) fn due(&self) -> Option<Instant> {
        self.bye_at().into_iter().chain(self.refresh_at()).min()
    }
}

impl Server {
    /// Answers a request whose `Session-Expires` we refuse.
    pub(super) fn refuse_session(&mut self, ctx: &Ctx, req: &Request, refused: Negotiated) {
        let (status, extra) = refusal(&self.config, &refused);
        self.respond(ctx, req, status, &extra);
    }

    /// Sends BYE when the session expires, UPDATE when we have to refresh.
    pub(super) fn session_timeout(&mut self, call_id: &CallId, now: Instant) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some(session) = call.dialog.session.as_mut() else {
            return;
        };
        if session.bye_at().is_some_and(|at| now >= at) {
            tracing::info!(%call_id, "session expired without refresh");
            return self.start_bye(call_id, EndReason::SessionExpired, now);
        }
        if session.refresh_at().is_some_and(|at| now >= at) {
            session.refreshing = true;
            let extra = [
                (
                    "Session-Expires",
                    format!("{};refresher=uac", session.interval),
                ),
                ("Supported", "timer".to_owned()),
            ];
            if !self.send_request(call_id, Purpose::Refresh, &extra, now) {
                self.refresh_completed(call_id, Some(500), now);
            }
        }
    }

    /// Our refreshing UPDATE ended with `status` (`None`: timed out).
    pub(super) fn refresh_completed(
        &mut self,
        call_id: &CallId,
        status: Option<u16>,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        if !matches!(call.state, State::Confirmed) {
            return;
        }
        let Some(session) = call.dialog.session.as_mut() else {
            return;
        };
        match status {
            Some(200..=299) => {
                session.refreshing = false;
                session.refreshed = Some(now);
            }
            // RFC 4028 §10: the session is gone at the peer.
            None | Some(408 | 481) => self.start_bye(call_id, EndReason::SessionExpired, now),
            // Other failures: no further attempt (`refreshing` stays set); the
            // session ends at expiry unless the peer refreshes it.
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_session_expires, Refresher};

    type Parsed = Result<(u32, Option<Refresher>), &'static str>;

    #[test]
    fn session_expires_values() {
        let cases: [(&str, Parsed); 6] = [
            ("1800", Ok((1800, None))),
            ("90;refresher=uac", Ok((90, Some(Refresher::Uac)))),
            (
                " 600 ; Refresher = UAS ;x=y",
                Ok((600, Some(Refresher::Uas))),
            ),
            ("99999999999", Ok((u32::MAX, None))),
            ("abc", Err("invalid Session-Expires")),
            (
                "90;refresher=proxy",
                Err("invalid Session-Expires refresher"),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_session_expires(value), expected, "{value}");
        }
    }
}
