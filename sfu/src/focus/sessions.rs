//! One Jingle session per participant, focus side (XEP-0166 in the Jitsi
//! dialect). When a participant enters a room the focus asks the media plane
//! for an endpoint; the plane's SDP offer becomes the `session-initiate`
//! (contents from `proto::sdp::sdp_to_jingle`, every other participant's
//! sources in a `<json-message>`); the participant's `session-accept`
//! becomes the plane's SDP answer; its sources go to everyone else as
//! `source-add`, and away again as `source-remove` when it leaves.
//! Receive slots make renegotiation unnecessary (`docs/media-mapping.md`).

use std::collections::BTreeMap;

use jid::{BareJid, Jid};
use proto::jingle::{
    Action as JAction, Content, Jingle, JsonSources, Media, OwnerSources, Role, Source, SsrcGroup,
};
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::IncomingIq;

use super::{Action, Focus, Pending};

/// A participant's Jingle session.
#[derive(Debug, Clone, Default)]
pub(super) struct Session {
    pub sid: String,
    pub accepted: bool,
    /// The participant's own sources (owner set to its endpoint id).
    pub audio: Vec<Source>,
    pub audio_groups: Vec<SsrcGroup>,
    pub video: Vec<Source>,
    pub video_groups: Vec<SsrcGroup>,
}

impl Session {
    fn owner_sources(&self, owner: &str) -> OwnerSources {
        OwnerSources::from_sources(
            owner,
            &self.video,
            &self.video_groups,
            &self.audio,
            &self.audio_groups,
        )
    }

    fn has_sources(&self) -> bool {
        !self.audio.is_empty() || !self.video.is_empty()
    }
}

/// The media plane's key for a participant: unique across rooms.
pub fn endpoint_key(room: &BareJid, nick: &str) -> String {
    format!("{room}/{nick}")
}

/// Jingle contents carrying `sources` (for source-add/remove).
fn source_contents(owner: &str, s: &Session) -> Vec<Content> {
    let mut out = Vec::new();
    for (media, name, sources, groups) in [
        (Media::Audio, "audio", &s.audio, &s.audio_groups),
        (Media::Video, "video", &s.video, &s.video_groups),
    ] {
        if sources.is_empty() {
            continue;
        }
        let mut d = proto::jingle::RtpDescription::new(media);
        d.sources = sources
            .iter()
            .cloned()
            .map(|mut src| {
                src.owner = Some(owner.to_owned());
                src
            })
            .collect();
        d.ssrc_groups = groups.clone();
        let mut c = Content::new(name);
        c.description = Some(d);
        out.push(c);
    }
    out
}

impl Focus {
    /// A participant entered a room the focus hosts: ask for an endpoint.
    pub(super) fn invite(&mut self, room: &BareJid, nick: &str) {
        if !self.settings.media {
            return;
        }
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.sessions.contains_key(nick) {
            return;
        }
        r.sessions.insert(nick.to_owned(), Session::default());
        tracing::info!(%room, %nick, "inviting participant");
        self.out.push_back(Action::CreateEndpoint {
            conference: room.to_string(),
            endpoint: endpoint_key(room, nick),
        });
    }

    /// The plane's offer for a participant (or why it has none).
    pub fn handle_offer(&mut self, room: &BareJid, nick: &str, offer: Result<String, String>) {
        let offer = match offer {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(%room, %nick, "media plane refused the endpoint: {e}");
                if let Some(r) = self.rooms.get_mut(room) {
                    r.sessions.remove(nick);
                }
                return;
            }
        };
        let parsed = proto::sdp::Sdp::parse(&offer).and_then(|sdp| proto::sdp::sdp_to_jingle(&sdp));
        let (contents, groups) = match parsed {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(%room, %nick, "cannot express the plane's offer in Jingle: {e}");
                self.out.push_back(Action::RemoveEndpoint {
                    endpoint: endpoint_key(room, nick),
                });
                return;
            }
        };
        let (contents, channel) = self.with_channel(room, nick, contents);
        let sid = self.fresh_session_id();
        let others: Vec<OwnerSources> = self
            .rooms
            .get(room)
            .map(|r| {
                r.sessions
                    .iter()
                    .filter(|(n, s)| n.as_str() != nick && s.has_sources())
                    .map(|(n, s)| s.owner_sources(n))
                    .collect()
            })
            .unwrap_or_default();
        let mut jingle = Jingle::new(JAction::SessionInitiate, sid.clone());
        jingle.initiator = self.settings.focus_jid.clone();
        jingle.contents = contents;
        jingle.groups = groups;
        jingle.json_message = Some(JsonSources { owners: others });
        if let Some(s) = self
            .rooms
            .get_mut(room)
            .and_then(|r| r.sessions.get_mut(nick))
        {
            s.sid = sid.clone();
        }
        let Ok(to) = Jid::new(&format!("{room}/{nick}")) else {
            return;
        };
        if let Some(action) = channel {
            self.out.push_back(action);
        }
        self.send_iq(
            to,
            jingle.into(),
            Pending::SessionInitiate {
                room: room.clone(),
                nick: nick.to_owned(),
            },
        );
    }

    /// Adds the bridge-channel URL to every transport (as Jitsi's bridge
    /// does) and the action that lets the endpoint connect with its token.
    fn with_channel(
        &mut self,
        room: &BareJid,
        nick: &str,
        mut contents: Vec<Content>,
    ) -> (Vec<Content>, Option<Action>) {
        let Some((base, server_id)) = self.settings.channel.clone() else {
            return (contents, None);
        };
        let token = self.fresh_session_id();
        let endpoint = endpoint_key(room, nick);
        let url = format!(
            "{base}{}",
            crate::channel::path(&server_id, room.as_str(), &endpoint, &token)
        );
        for c in &mut contents {
            if let Some(t) = c.transport.as_mut() {
                t.web_sockets = vec![url.clone()];
            }
        }
        (
            contents,
            Some(Action::ExpectChannel {
                conference: room.to_string(),
                endpoint,
                token,
            }),
        )
    }

    /// The participant did not accept our session-initiate IQ.
    pub(super) fn initiate_failed(&mut self, room: &BareJid, nick: &str, why: &str) {
        tracing::warn!(%room, %nick, "session-initiate refused: {why}");
        if let Some(r) = self.rooms.get_mut(room) {
            r.sessions.remove(nick);
        }
        self.out.push_back(Action::RemoveEndpoint {
            endpoint: endpoint_key(room, nick),
        });
    }

    /// A Jingle request from a participant.
    pub(super) fn jingle_request(
        &mut self,
        req: IncomingIq,
        room: BareJid,
        nick: String,
        jingle: Jingle,
    ) {
        let known = self
            .rooms
            .get(&room)
            .and_then(|r| r.sessions.get(&nick))
            .is_some_and(|s| s.sid == jingle.sid);
        if !known {
            return self.refuse(req, DefinedCondition::ItemNotFound, "unknown session");
        }
        match jingle.action {
            JAction::SessionAccept => self.session_accept(req, &room, &nick, jingle),
            JAction::SourceAdd | JAction::AddSource => {
                self.out.push_back(Action::Reply {
                    req,
                    result: Ok(None),
                });
                self.sources_changed(&room, &nick, &jingle.contents, true);
            }
            JAction::SourceRemove | JAction::RemoveSource => {
                self.out.push_back(Action::Reply {
                    req,
                    result: Ok(None),
                });
                self.sources_changed(&room, &nick, &jingle.contents, false);
            }
            JAction::TransportInfo | JAction::SessionInfo => {
                // ICE-lite: the plane learns addresses from connectivity checks.
                self.out.push_back(Action::Reply {
                    req,
                    result: Ok(None),
                });
            }
            JAction::SessionTerminate => {
                self.out.push_back(Action::Reply {
                    req,
                    result: Ok(None),
                });
                self.end_session(&room, &nick, false);
            }
            other => {
                let text = format!("{} is not handled by the focus", other.as_str());
                self.refuse(req, DefinedCondition::FeatureNotImplemented, &text)
            }
        }
    }

    fn session_accept(&mut self, req: IncomingIq, room: &BareJid, nick: &str, jingle: Jingle) {
        let answer = proto::sdp::contents_to_sdp(&jingle.contents, &jingle.groups, Role::Responder);
        self.out.push_back(Action::Reply {
            req,
            result: Ok(None),
        });
        if let Some(s) = self
            .rooms
            .get_mut(room)
            .and_then(|r| r.sessions.get_mut(nick))
        {
            s.accepted = true;
        }
        self.out.push_back(Action::AcceptAnswer {
            endpoint: endpoint_key(room, nick),
            sdp: answer.to_string(),
        });
        self.sources_changed(room, nick, &jingle.contents, true);
    }

    /// Adds or removes a participant's sources and tells everyone else.
    fn sources_changed(&mut self, room: &BareJid, nick: &str, contents: &[Content], add: bool) {
        let Some(s) = self
            .rooms
            .get_mut(room)
            .and_then(|r| r.sessions.get_mut(nick))
        else {
            return;
        };
        let mut delta = Session::default();
        for c in contents {
            let Some(d) = &c.description else { continue };
            let (list, groups, dl, dg) = match d.media {
                Media::Audio => (
                    &mut s.audio,
                    &mut s.audio_groups,
                    &mut delta.audio,
                    &mut delta.audio_groups,
                ),
                Media::Video => (
                    &mut s.video,
                    &mut s.video_groups,
                    &mut delta.video,
                    &mut delta.video_groups,
                ),
                _ => continue,
            };
            for src in &d.sources {
                let present = list.iter().any(|x| x.ssrc == src.ssrc);
                if add && !present {
                    let mut src = src.clone();
                    src.owner = Some(nick.to_owned());
                    if src.name.is_none() {
                        let suffix = if d.media == Media::Audio { "a0" } else { "v0" };
                        src.name = Some(format!("{nick}-{suffix}"));
                    }
                    list.push(src.clone());
                    dl.push(src);
                } else if !add && present {
                    list.retain(|x| x.ssrc != src.ssrc);
                    dl.push(src.clone());
                }
            }
            for g in &d.ssrc_groups {
                if add && !groups.contains(g) {
                    groups.push(g.clone());
                    dg.push(g.clone());
                } else if !add && groups.contains(g) {
                    groups.retain(|x| x != g);
                    dg.push(g.clone());
                }
            }
        }
        if delta.has_sources() {
            self.announce(room, nick, &delta, add);
        }
    }

    /// Sends `source-add`/`source-remove` for `nick`'s `delta` to every other
    /// participant whose session is up.
    fn announce(&mut self, room: &BareJid, nick: &str, delta: &Session, add: bool) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let targets: Vec<(String, String)> = r
            .sessions
            .iter()
            .filter(|(n, s)| n.as_str() != nick && !s.sid.is_empty())
            .map(|(n, s)| (n.clone(), s.sid.clone()))
            .collect();
        let action = if add {
            JAction::SourceAdd
        } else {
            JAction::SourceRemove
        };
        for (other, sid) in targets {
            let mut j = Jingle::new(action, sid);
            j.contents = source_contents(nick, delta);
            let Ok(to) = Jid::new(&format!("{room}/{other}")) else {
                continue;
            };
            self.send_iq(to, j.into(), Pending::Ignore("announcing sources"));
        }
    }

    /// Ends `nick`'s session: the plane drops it, the others lose its
    /// sources, and (when `terminate`) the participant is told.
    pub(super) fn end_session(&mut self, room: &BareJid, nick: &str, terminate: bool) {
        let Some(s) = self
            .rooms
            .get_mut(room)
            .and_then(|r| r.sessions.remove(nick))
        else {
            return;
        };
        tracing::info!(%room, %nick, "session ended");
        self.out.push_back(Action::RemoveEndpoint {
            endpoint: endpoint_key(room, nick),
        });
        if s.has_sources() {
            self.announce(room, nick, &s, false);
        }
        if terminate && !s.sid.is_empty() {
            let mut j = Jingle::new(JAction::SessionTerminate, s.sid);
            j.reason = Some(proto::jingle::Reason {
                condition: proto::jingle::ReasonCondition::Gone,
                text: None,
            });
            // A kicked participant is no longer an occupant: reach its
            // real JID when the room showed it.
            let real = self
                .rooms
                .get(room)
                .and_then(|r| r.participants.get(nick))
                .and_then(|p| p.real_jid.clone())
                .map(Jid::from);
            if let Some(to) = real.or_else(|| Jid::new(&format!("{room}/{nick}")).ok()) {
                self.send_iq(to, j.into(), Pending::Ignore("terminating a session"));
            }
        }
    }
}

/// Sessions of a room, for the room state.
pub(super) type Sessions = BTreeMap<String, Session>;
