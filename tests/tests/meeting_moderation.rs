//! Speakers and moderators on the meeting page, in real browsers: a private
//! Prosody (anonymous sign-in, so the first person in becomes moderator),
//! the real `sfu` in process serving the page, and three pages of one
//! headless Chromium (tests/web/meeting_pages.mjs). Each page's microphone
//! is a tone whose loudness the test sets, so that one person talks while
//! the others are silent.
//!
//! - Only the moderator (the first in) sees the moderator controls.
//! - The loudest person goes on the others' stage, and when someone else
//!   talks instead, the stage follows within 2 s.
//! - The moderator presses Mute on the talker's tile: the talker's page
//!   shows its microphone off and says who muted it, the others show the
//!   muted icon, and the talker's audio stops arriving at the others.
//! - A guest's forged mute, recording and dial-out requests (a plain XMPP
//!   client in the room, not the page, which hides the buttons) are refused
//!   by the focus with `forbidden`.
//! - The moderator records, then streams (a stand-in recorder in the pool
//!   answers the focus as the real one does): every page shows the
//!   "Recording", then the "Live" badge, and neither once stopped. The
//!   moderator's page while recording is saved to
//!   `target/meeting-moderator.png`.
//! - The moderator presses Remove on a tile: that person's page says it was
//!   removed, and the tile leaves the others' grids.
//! - A phone participant (a client announcing the gateway's feature, its
//!   nick the caller's number) shows as a phone tile with the number masked.
//! - With `[dial_in] numbers` configured, the moderator's dial-in button
//!   shows the number and the room's PIN, the one `/conference-mapper`
//!   gives the gateway for this room.

use std::time::Duration;

use anyhow::{bail, ensure, Result};
use serde_json::json;
use tests::browsers::{earlier, Browsers, Outcome, PageSpec, Stats};
use tests::meeting::InProcessSfu;
use tests::raw_xmpp::RawXmpp;
use tests::standins::stand_in_recorder;
use tests::{Prosody, ProsodyOptions};
use tokio::time::Instant;

const NAMES: [&str; 3] = ["Ada Lovelace", "Grace Hopper", "Alan Turing"];
const LOUD: f32 = 0.8;
const DIAL_IN: &str = "+1 555 0100";
const CALLER: &str = "+44 20 7946 0958";

/// Audio energy a page received over the last second (getStats'
/// totalAudioEnergy over every audio line).
fn energy_per_second(history: &[Stats]) -> Option<f64> {
    let last = history.last()?;
    let before = earlier(history, Duration::from_secs(1))?;
    let seconds = (last.t - before.t) as f64 / 1000.0;
    Some((last.audio_energy() - before.audio_energy()) / seconds)
}

/// Sets who talks: `talker` loud, everyone else silent.
async fn talk(browsers: &mut Browsers, talker: usize) -> Result<()> {
    for page in 0..NAMES.len() {
        let gain = if page == talker { LOUD } else { 0.0 };
        browsers.gain(page, gain).await?;
    }
    Ok(())
}

/// Waits until every page but `talker` shows `talker` as the speaker, on
/// stage; returns the time taken.
async fn stage_moves_to(
    browsers: &mut Browsers,
    nicks: &[String],
    talker: usize,
) -> Result<Duration> {
    let since = Instant::now();
    let want = nicks[talker].clone();
    browsers
        .until(
            &format!("{} on the others' stage", NAMES[talker]),
            Duration::from_secs(10),
            |h| {
                (0..NAMES.len())
                    .filter(|p| *p != talker)
                    .all(|p| {
                        h.get(&p).and_then(|s| s.last()).is_some_and(|s| {
                            s.stage() == Some(&want)
                                && s.tiles.iter().any(|t| t.nick == want && t.speaking)
                        })
                    })
                    .then_some(())
            },
        )
        .await?;
    Ok(since.elapsed())
}

/// Waits until every page shows `badge` (or no badge).
async fn badge_everywhere(browsers: &mut Browsers, badge: Option<&str>) -> Result<()> {
    browsers
        .until(
            &format!("the badge {badge:?} on every page"),
            Duration::from_secs(10),
            |h| {
                (0..NAMES.len())
                    .all(|p| {
                        h.get(&p)
                            .and_then(|s| s.last())
                            .is_some_and(|s| s.badge.as_deref() == badge)
                    })
                    .then_some(())
            },
        )
        .await?;
    tracing::info!(?badge, "badge on every page");
    Ok(())
}

/// Joins `room` as a guest with a bare XMPP client and forges moderator
/// requests to the focus; returns each answer's text.
async fn forge(prosody: &Prosody, room: &str, victim: &str) -> Result<Vec<(String, String)>> {
    let mut guest = RawXmpp::login_anonymous(prosody.c2s_addr(), prosody.domain()).await?;
    let muc = prosody.conference_domain();
    let me = format!("{room}@{muc}/intruder");
    guest
        .send(&format!(
            "<presence to='{me}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await?;
    let joined = guest
        .read_until("status code='110'", Duration::from_secs(5))
        .await?;
    ensure!(
        joined.contains("role='participant'"),
        "the guest should join as a participant: {joined}"
    );
    let focus = format!("{room}@{muc}/focus");
    let requests = [
        (
            "mute",
            format!("<mute xmlns='http://jitsi.org/jitmeet/audio' jid='{room}@{muc}/{victim}'>true</mute>"),
        ),
        (
            "recording",
            "<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='file'/>".to_string(),
        ),
        (
            "streaming",
            "<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='stream' streamid='abcd-efgh'/>".to_string(),
        ),
        (
            "dial-out",
            format!("<dial xmlns='urn:xmpp:rayo:1' to='+15550100' from='fromnumber'><header name='JvbRoomName' value='{room}@{muc}'/></dial>"),
        ),
    ];
    let mut answers = Vec::new();
    for (what, payload) in requests {
        let id = format!("forged-{what}");
        guest
            .send(&format!(
                "<iq type='set' id='{id}' to='{focus}'>{payload}</iq>"
            ))
            .await?;
        let text = guest
            .read_until(&format!("id='{id}'"), Duration::from_secs(5))
            .await?;
        // The answer's own stanza: from its opening tag to its end.
        let at = text.rfind("<iq").unwrap_or(0);
        let mut answer = text[at..].to_string();
        if !answer.contains("</iq>") && !answer.ends_with("/>") {
            answer.push_str(&guest.read_until("</iq>", Duration::from_secs(5)).await?);
        }
        answers.push((what.to_string(), answer));
    }
    guest.close().await?;
    Ok(answers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_mute_and_remove_and_the_stage_follows_the_speaker() -> Result<()> {
    tests::init_logs();
    let prosody = Prosody::start_async(ProsodyOptions::default()).await?;
    let sfu = InProcessSfu::with_page(&prosody, |c| {
        c.dial_in.numbers = vec![DIAL_IN.to_string()];
    })
    .await?;
    stand_in_recorder(&prosody, "rec1", false);
    let url = format!("http://{}/council", sfu.http);
    let pages: Vec<PageSpec> = NAMES
        .iter()
        .map(|n| PageSpec {
            gain: Some(0.0),
            ..PageSpec::named(&url, n)
        })
        .collect();
    let (mut browsers, outcomes) = Browsers::start(&pages).await?;
    ensure!(
        outcomes.iter().all(|o| *o == Outcome::Joined),
        "every page should join: {outcomes:?}"
    );

    // Roles: the first in is moderator and alone has the controls.
    let roles = browsers
        .until(
            "the moderator controls on the first page only",
            Duration::from_secs(15),
            |h| {
                let shown: Vec<bool> = (0..NAMES.len())
                    .map(|p| {
                        h.get(&p)
                            .and_then(|s| s.last())
                            .map(|s| s.moderator_controls)
                    })
                    .collect::<Option<_>>()?;
                (shown == [true, false, false]).then_some(shown)
            },
        )
        .await?;
    tracing::info!(?roles, "moderator controls shown per page");
    let mut nicks = Vec::new();
    for page in 0..NAMES.len() {
        let stats = browsers.latest(page).await?;
        nicks.push(stats.own_nick().unwrap_or_default().to_string());
    }
    tracing::info!(?nicks, "nicks");

    // Media flows first: every page connected and receiving the others'
    // audio lines (on a loaded machine ICE can take seconds).
    browsers
        .until(
            "every page receives the others' audio",
            Duration::from_secs(20),
            |h| {
                (0..NAMES.len())
                    .all(|p| {
                        h.get(&p).and_then(|s| s.last()).is_some_and(|s| {
                            s.state == "connected"
                                && s.inbound
                                    .iter()
                                    .filter(|i| i.kind == "audio" && i.packets_received > 0)
                                    .count()
                                    >= 2
                        })
                    })
                    .then_some(())
            },
        )
        .await?;

    // The stage follows the talker.
    talk(&mut browsers, 1).await?;
    let first = stage_moves_to(&mut browsers, &nicks, 1).await?;
    tracing::info!(?first, "Grace talks: on stage");
    browsers.watch(Duration::from_secs(2)).await?;
    talk(&mut browsers, 2).await?;
    let moved = stage_moves_to(&mut browsers, &nicks, 2).await?;
    tracing::info!(?moved, "Alan talks instead: the stage moved");
    ensure!(
        moved <= Duration::from_secs(2),
        "the stage took {moved:?} to follow the talker"
    );

    // Alan's audio arrives at the others...
    let before = browsers
        .until("Alan heard by the others", Duration::from_secs(10), |h| {
            let e: Vec<f64> = [0, 1]
                .iter()
                .map(|p| energy_per_second(h.get(p)?))
                .collect::<Option<_>>()?;
            e.iter().all(|x| *x > 0.01).then_some(e)
        })
        .await?;
    tracing::info!(
        ?before,
        "audio energy per second at Ada and Grace while Alan talks"
    );

    // ...until the moderator mutes him.
    browsers
        .command(json!({"type": "tile-action", "page": 0, "nick": nicks[2], "action": "mute"}))
        .await?;
    let muted_at = Instant::now();
    let told = browsers
        .until(
            "Alan's page shows him muted",
            Duration::from_secs(10),
            |h| {
                let last = h.get(&2)?.last()?;
                (!last.mic_on).then(|| last.notices.clone())
            },
        )
        .await?;
    ensure!(
        told.iter().any(|n| n.contains("Ada Lovelace muted you")),
        "Alan's page should say who muted him: {told:?}"
    );
    browsers
        .until("the others show Alan muted", Duration::from_secs(10), |h| {
            [0, 1]
                .iter()
                .all(|p| {
                    h.get(p).and_then(|s| s.last()).is_some_and(|s| {
                        s.tiles.iter().any(|t| t.nick == nicks[2] && t.audio_muted)
                    })
                })
                .then_some(())
        })
        .await?;
    browsers.watch(Duration::from_millis(1500)).await?;
    let after = browsers
        .until(
            "Alan's audio stops arriving",
            Duration::from_secs(10),
            |h| {
                let e: Vec<f64> = [0, 1]
                    .iter()
                    .map(|p| energy_per_second(h.get(p)?))
                    .collect::<Option<_>>()?;
                e.iter()
                    .all(|x| *x < before.iter().cloned().fold(f64::MAX, f64::min) / 50.0)
                    .then_some(e)
            },
        )
        .await?;
    tracing::info!(?after, took = ?muted_at.elapsed(), "audio energy per second after the mute");

    // A guest cannot forge moderator requests.
    let answers = forge(&prosody, "council", &nicks[0]).await?;
    for (what, answer) in &answers {
        tracing::info!(what, answer, "forged request answered");
        if !(answer.contains("type='error'") && answer.contains("<forbidden")) {
            bail!("a guest's forged {what} should be forbidden, got: {answer}");
        }
    }

    // Recording, then live streaming: the badge on every page.
    browsers
        .command(json!({"type": "click", "page": 0, "selector": "#record"}))
        .await?;
    badge_everywhere(&mut browsers, Some("Recording")).await?;
    let shot = tests::workspace_root().join("target/meeting-moderator.png");
    browsers
        .command(json!({"type": "screenshot", "page": 0, "path": shot}))
        .await?;
    browsers
        .command(json!({"type": "click", "page": 0, "selector": "#record"}))
        .await?;
    badge_everywhere(&mut browsers, None).await?;
    browsers
        .command(json!({"type": "click", "page": 0, "selector": "#stream"}))
        .await?;
    browsers
        .command(json!({"type": "fill", "page": 0, "selector": "#live-target", "value": "abcd-efgh-ijkl-mnop"}))
        .await?;
    browsers
        .command(json!({"type": "click", "page": 0, "selector": "#live-start"}))
        .await?;
    badge_everywhere(&mut browsers, Some("Live")).await?;
    browsers
        .command(json!({"type": "click", "page": 0, "selector": "#stream"}))
        .await?;
    badge_everywhere(&mut browsers, None).await?;

    // The moderator removes Grace.
    browsers
        .command(json!({"type": "tile-action", "page": 0, "nick": nicks[1], "action": "kick"}))
        .await?;
    browsers.may_refuse.push(1);
    let why = browsers
        .until(
            "Grace's page says she was removed",
            Duration::from_secs(10),
            |h| {
                let last = h.get(&1)?.last()?;
                last.ended.then(|| last.ended_why.clone())
            },
        )
        .await?;
    ensure!(
        why.as_deref().is_some_and(|w| w.contains("removed you")),
        "Grace should be told she was removed: {why:?}"
    );
    browsers
        .until(
            "Grace's tile leaves the others' grids",
            Duration::from_secs(10),
            |h| {
                [0, 2]
                    .iter()
                    .all(|p| {
                        h.get(p).and_then(|s| s.last()).is_some_and(|s| {
                            s.tiles.len() == 2 && !s.tiles.iter().any(|t| t.nick == nicks[1])
                        })
                    })
                    .then_some(())
            },
        )
        .await?;

    // A phone participant: a phone tile with the number masked.
    let mut phone = RawXmpp::login_anonymous(prosody.c2s_addr(), prosody.domain()).await?;
    phone
        .send(&format!(
            "<presence to='council@{}/caller'><x xmlns='http://jabber.org/protocol/muc'/>\
             <nick xmlns='http://jabber.org/protocol/nick'>{CALLER}</nick>\
             <features><feature var='http://jitsi.org/protocol/jigasi'/></features></presence>",
            prosody.conference_domain()
        ))
        .await?;
    let tile = browsers
        .until("the caller's phone tile", Duration::from_secs(10), |h| {
            h.get(&0)?
                .last()?
                .tiles
                .iter()
                .find(|t| t.nick == "caller" && t.phone)
                .map(|t| t.name.clone())
        })
        .await?;
    tracing::info!(tile, "the caller's tile");
    ensure!(
        tile.ends_with("958") && !tile.contains("7946"),
        "the caller's number should be masked: {tile}"
    );
    // A dial-out that finds the line busy: the gateway says so in the
    // participant's status, and the moderator's page tells why.
    phone
        .send(&format!(
            "<presence to='council@{}/caller'><status>busy</status>\
             <nick xmlns='http://jabber.org/protocol/nick'>{CALLER}</nick>\
             <features><feature var='http://jitsi.org/protocol/jigasi'/></features></presence>",
            prosody.conference_domain()
        ))
        .await?;
    let notice = browsers
        .until("the busy call's notice", Duration::from_secs(10), |h| {
            h.get(&0)?
                .last()?
                .notices
                .iter()
                .find(|n| n.contains("busy"))
                .cloned()
        })
        .await?;
    ensure!(
        notice.contains("958") && !notice.contains("7946"),
        "the notice names the masked number: {notice}"
    );
    phone.close().await?;

    // Dial-in: the number and the room's PIN, as the gateway will know it.
    browsers
        .command(json!({"type": "click", "page": 0, "selector": "#dial-in"}))
        .await?;
    let shown = browsers
        .until(
            "the dial-in dialog with a PIN",
            Duration::from_secs(10),
            |h| {
                let d = h.get(&0)?.last()?.dial_in.clone()?;
                d.pin.chars().all(|c| c.is_ascii_digit()).then_some(d)
            },
        )
        .await?;
    let mapped = tests::http::get(
        sfu.http,
        &format!(
            "/conference-mapper?conference=council@{}",
            prosody.conference_domain()
        ),
    )
    .await?
    .json()?;
    tracing::info!(?shown, %mapped, "dial-in shown, and the mapper's answer");
    ensure!(shown.numbers == [DIAL_IN], "{shown:?}");
    ensure!(
        mapped["id"].as_u64().map(|id| id.to_string()) == Some(shown.pin.clone()),
        "{shown:?} vs {mapped}"
    );

    browsers.quit();
    sfu.end().await;
    Ok(())
}
