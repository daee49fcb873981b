//! Token mode (`auto_owner = false`): nobody is elected; moderators are the
//! occupants whose room affiliation is owner or admin, which Prosody's
//! mod_muc_jwt sets from `moderator: true` tokens.

use super::*;

fn focus_without_auto_owner() -> Focus {
    let mut f = Focus::new(FocusSettings {
        auto_owner: false,
        ..settings(false)
    });
    actions(&mut f);
    f
}

fn joined(f: &mut Focus, occupant: Occupant, t: Instant) -> Vec<Action> {
    f.handle_event(
        Event::OccupantJoined {
            room: room(),
            occupant,
        },
        t,
    );
    actions(f)
}

fn is_owner_grant(a: &Action) -> bool {
    matches!(a, Action::Iq { payload, .. }
        if payload.ns() == "http://jabber.org/protocol/muc#admin"
            && payload.children().any(|i| i.attr("affiliation") == Some("owner")))
}

fn mute(from: &str, target: &str) -> Event {
    req(
        &format!("{ROOM}/{from}"),
        &format!("<mute xmlns='http://jitsi.org/jitmeet/audio' jid='{ROOM}/{target}'>true</mute>"),
    )
}

#[test]
fn owners_by_affiliation_moderate_and_nobody_is_elected() {
    let mut f = focus_without_auto_owner();
    let t = Instant::now();
    conference(&mut f, t);

    // The first participant has no moderator token: not elected.
    let a = joined(&mut f, guest("bob", Affiliation::None), t);
    assert!(!a.iter().any(is_owner_grant), "{a:?}");
    // The token moderator arrives as owner (Prosody set it before the join).
    let a = joined(&mut f, guest("alice", Affiliation::Owner), t);
    assert!(!a.iter().any(is_owner_grant), "{a:?}");

    f.handle_event(mute("bob", "alice"), t);
    assert_eq!(refused(&actions(&mut f)[0]), DefinedCondition::Forbidden);
    f.handle_event(mute("alice", "bob"), t);
    let a = actions(&mut f);
    assert!(
        matches!(
            &a[0],
            Action::Reply {
                result: Ok(None),
                ..
            }
        ),
        "{a:?}"
    );

    // The moderator leaves: still nobody is elected.
    f.handle_event(
        Event::OccupantLeft {
            room: room(),
            occupant: guest("alice", Affiliation::Owner),
            reason: RoomLeftReason::Left,
        },
        t,
    );
    let a = actions(&mut f);
    assert!(!a.iter().any(is_owner_grant), "{a:?}");
    let a = joined(&mut f, guest("dave", Affiliation::None), t);
    assert!(!a.iter().any(is_owner_grant), "{a:?}");
    f.handle_event(mute("bob", "dave"), t);
    assert_eq!(refused(&actions(&mut f)[0]), DefinedCondition::Forbidden);
    // An admin affiliation moderates too.
    joined(&mut f, guest("carol", Affiliation::Admin), t);
    f.handle_event(mute("carol", "bob"), t);
    assert!(matches!(
        &actions(&mut f)[0],
        Action::Reply {
            result: Ok(None),
            ..
        }
    ));
}

/// The same room with `auto_owner = true` (anonymous mode) elects the
/// first participant: the switch is what makes the difference.
#[test]
fn with_auto_owner_the_first_participant_is_elected() {
    let mut f = focus();
    let t = Instant::now();
    conference(&mut f, t);
    let a = joined(&mut f, guest("bob", Affiliation::None), t);
    assert!(a.iter().any(is_owner_grant), "{a:?}");
}
