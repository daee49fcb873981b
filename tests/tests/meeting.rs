//! A meeting with three independent WebRTC clients (GStreamer's webrtcbin,
//! a stack we did not write) joining through XMPP and Jingle, through the
//! real focus and media plane.
//!
//! - Signalling: each gets a session-initiate carrying the sources of those
//!   already in, answers it, and hears about later arrivals with
//!   `source-add`; when one leaves, the others get `source-remove`.
//! - Media: each decodes both others' video at the size they publish and
//!   hears both their tones.

use std::time::Duration;

use tests::meeting::{has_tone, has_video, meeting, owners, until, PEOPLE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_webrtcbin_participants_signal_through_the_focus() {
    let mut m = meeting().await;
    // Everyone ends up knowing the other two's sources: from the
    // session-initiate for those already there, from source-add for later ones.
    for (i, p) in m.people.iter().enumerate() {
        let me = PEOPLE[i].0;
        let want: Vec<String> = PEOPLE
            .iter()
            .map(|x| x.0.to_owned())
            .filter(|n| n != me)
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut known: Vec<String> = p
                .jingle_log()
                .iter()
                .filter(|r| {
                    matches!(
                        r.jingle.action,
                        proto::jingle::Action::SessionInitiate | proto::jingle::Action::SourceAdd
                    )
                })
                .flat_map(|r| owners(&r.jingle))
                .collect();
            known.sort();
            known.dedup();
            if known == want {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let log: Vec<_> = p
                    .jingle_log()
                    .iter()
                    .map(|r| (r.jingle.action, owners(&r.jingle), r.jingle.contents.len()))
                    .collect();
                panic!("{me} knows {known:?}, wants {want:?}; jingle log {log:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The first session-initiate carried the bridge channel's URL.
    let initiate = m.people[0]
        .jingle_log()
        .into_iter()
        .find(|r| r.jingle.action == proto::jingle::Action::SessionInitiate)
        .unwrap();
    let ws = &initiate.jingle.contents[0]
        .transport
        .as_ref()
        .unwrap()
        .web_sockets;
    assert!(
        ws.first().is_some_and(|u| u.contains("/colibri-ws/")),
        "{ws:?}"
    );

    // The third leaves: the others are told its sources are gone.
    let leaver = m.people.pop().unwrap();
    leaver.leave().await;
    for p in &m.people {
        let remove = p
            .wait_for_jingle(proto::jingle::Action::SourceRemove, Duration::from_secs(10))
            .await
            .expect("source-remove");
        assert_eq!(owners(&remove), vec!["cccc0003".to_owned()]);
    }
    m.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_webrtcbin_participants_see_and_hear_each_other() {
    let m = meeting().await;
    for (i, p) in m.people.iter().enumerate() {
        let others: Vec<_> = PEOPLE
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, x)| *x)
            .collect();
        let got = until(
            p,
            &format!("{} decodes and hears the others", PEOPLE[i].0),
            30,
            |s| {
                others
                    .iter()
                    .all(|o| has_video(s, o.2, o.3) && has_tone(s, o.4 as f32))
            },
        )
        .await;
        eprintln!(
            "{} received: {:?}",
            PEOPLE[i].0,
            got.iter()
                .map(|s| (s.kind, s.width, s.height, s.dominant_hz as u32))
                .collect::<Vec<_>>()
        );
    }
    m.end().await;
}
