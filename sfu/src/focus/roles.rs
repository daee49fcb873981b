//! Who is who in a room: service participants (recorders, transcribers) and
//! phone callers (a gateway's participants) are recognised by their
//! features *and* the domain of their real JID; a moderator is an owner or
//! admin of the room. A phone caller is a person in the room (it keeps the
//! room alive) but is never elected moderator. Without token auth the focus
//! makes the earliest non-service participant owner when no moderator is
//! present; with tokens, Prosody grants ownership and the focus only reads it.
//! Whether a participant encrypts its media end to end is read here too,
//! from every presence (`e2ee`).

use jid::FullJid;
use minidom::Element;
use proto::presence::JitsiPresence;
use xmpp_parsers::muc::user::{Affiliation, Role};
use xmpp_session::Occupant;

/// XEP-0045 admin namespace.
const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";

/// A participant as the focus sees it.
#[derive(Debug, Clone)]
pub(super) struct Participant {
    pub real_jid: Option<FullJid>,
    /// A recorder or transcriber from a trusted domain (not a person).
    pub service: bool,
    /// A phone caller through a gateway from a trusted domain.
    pub phone: bool,
    pub moderator: bool,
    /// Join order within the room (for electing a moderator).
    pub order: u64,
    /// Encrypts its media end to end (see `e2ee`).
    pub e2ee: bool,
}

/// Classifies an occupant. `trusted` are the domains service accounts log in
/// from (e.g. `auth.meet.example`, `recorder.meet.example`).
pub(super) fn classify(occupant: &Occupant, trusted: &[String], order: u64) -> Participant {
    let (presence, _) = JitsiPresence::from_payloads_lenient(occupant.payloads.clone());
    let service_feature = [proto::ns::feature::JIBRI, proto::ns::feature::TRANSCRIBER]
        .iter()
        .any(|f| presence.has_feature(f));
    let phone_feature = presence.has_feature(proto::ns::feature::JIGASI);
    let trusted_domain = occupant
        .real_jid
        .as_ref()
        .is_some_and(|j| trusted.iter().any(|d| d == j.domain().as_str()));
    Participant {
        real_jid: occupant.real_jid.clone(),
        service: service_feature && trusted_domain,
        phone: phone_feature && !service_feature && trusted_domain,
        moderator: matches!(
            occupant.affiliation,
            Affiliation::Owner | Affiliation::Admin
        ) || occupant.role == Role::Moderator,
        order,
        e2ee: super::e2ee::enabled(&occupant.payloads),
    }
}

/// The MUC admin request that makes `nick` (with `real_jid` when known) an
/// owner of `room`.
pub(super) fn grant_owner(nick: &str, real_jid: Option<&FullJid>) -> Element {
    let mut item = Element::builder("item", MUC_ADMIN).build();
    let name = |n: &str| {
        minidom::rxml::NcName::try_from(n).unwrap_or_else(|_| unreachable!("constant name {n}"))
    };
    match real_jid {
        Some(jid) => {
            item.set_attr(minidom::rxml::Namespace::NONE, name("affiliation"), "owner");
            item.set_attr(
                minidom::rxml::Namespace::NONE,
                name("jid"),
                jid.to_bare().to_string(),
            );
        }
        None => {
            item.set_attr(minidom::rxml::Namespace::NONE, name("nick"), nick);
            item.set_attr(minidom::rxml::Namespace::NONE, name("role"), "moderator");
        }
    }
    Element::builder("query", MUC_ADMIN).append(item).build()
}

/// The earliest participant who may moderate (not a service, not a phone
/// caller), if the room has no moderator among them.
pub(super) fn needs_moderator<'a>(
    participants: impl Iterator<Item = (&'a String, &'a Participant)> + Clone,
) -> Option<(&'a String, &'a Participant)> {
    let humans = participants.filter(|(_, p)| !p.service && !p.phone);
    if humans.clone().any(|(_, p)| p.moderator) {
        return None;
    }
    humans.min_by_key(|(_, p)| p.order)
}
