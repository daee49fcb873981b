//! Tests of [`super`] (speaker.rs), kept apart for size.

use super::*;

/// Speech at `level`, with one quiet frame every 500 ms (a pause between
/// words, which is what the noise floor learns from).
fn speech(level: u8, t: u64) -> Option<u8> {
    Some(if t.is_multiple_of(500) { 100 } else { level })
}

/// A steady noise around -50 dBov.
fn noise(t: u64) -> Option<u8> {
    Some(48 + (t / 20 % 5) as u8)
}

fn silence(_: u64) -> Option<u8> {
    Some(127)
}

type Script = Box<dyn Fn(&str, u64) -> Option<u8>>;

/// Steps simulated time in 20 ms packets from `from` to `to` (ms), calling
/// `handle_timeout` whenever due; returns the changes with their time.
fn simulate(
    det: &mut SpeakerDetector,
    t0: Instant,
    names: &[&str],
    from: u64,
    to: u64,
    script: &Script,
) -> Vec<(u64, SpeakerChange)> {
    let mut changes = Vec::new();
    let mut t = from;
    while t < to {
        let now = t0 + Duration::from_millis(t);
        if det.poll_timeout().is_some_and(|due| due <= now) {
            if let Some(c) = det.handle_timeout(now) {
                changes.push((t, c));
            }
        }
        for name in names {
            if let Some(level) = script(name, t) {
                if let Some(c) = det.on_audio_level(name, level, now) {
                    changes.push((t, c));
                }
            }
        }
        t += 20;
    }
    changes
}

fn detector(names: &[&str]) -> SpeakerDetector {
    let mut det = SpeakerDetector::default();
    for n in names {
        det.add(EndpointId::from(*n));
    }
    det
}

fn ids(v: &[&str]) -> Vec<EndpointId> {
    v.iter().map(|s| EndpointId::from(*s)).collect()
}

/// (time ms, dominant, silence) of each change.
fn summary(changes: &[(u64, SpeakerChange)]) -> Vec<(u64, String, bool)> {
    changes
        .iter()
        .map(|(t, c)| (*t, c.dominant.to_string(), c.silence))
        .collect()
}

#[test]
fn scenarios() {
    struct Case {
        name: &'static str,
        /// Who speaks when; A has been speaking alone for 3 s before.
        script: Script,
        /// Allowed (from, to] ms window of each change after t = 3000, in order.
        want: Vec<(&'static str, bool, u64, u64)>,
    }
    let cases = vec![
        Case {
            name: "B louder while A goes on: switch within ~1 s",
            script: Box::new(|n, t| match n {
                "A" => speech(40, t),
                "B" if t >= 3000 => speech(20, t),
                _ => silence(t),
            }),
            want: vec![("B", false, 3000, 4100)],
        },
        Case {
            name: "B takes over as A stops",
            script: Box::new(|n, t| match n {
                "A" if t < 3000 => speech(40, t),
                "B" if t >= 3000 => speech(40, t),
                _ => silence(t),
            }),
            want: vec![("B", false, 3000, 3800)],
        },
        Case {
            name: "short loud bursts do not switch",
            script: Box::new(|n, t| match n {
                "A" => speech(40, t),
                "C" if t % 2000 >= 1050 && t % 2000 < 1350 => Some(0),
                _ => silence(t),
            }),
            want: vec![],
        },
        Case {
            name: "short bursts in a silent room do not switch either",
            script: Box::new(|n, t| match n {
                "A" if t < 3000 => speech(40, t),
                "C" if t % 2000 >= 1050 && t % 2000 < 1350 => Some(0),
                _ => silence(t),
            }),
            want: vec![],
        },
        Case {
            name: "a similar voice does not take over",
            script: Box::new(|n, t| match n {
                "A" => speech(40, t),
                "B" if t >= 3000 => speech(35, t),
                _ => silence(t),
            }),
            want: vec![],
        },
        Case {
            name: "steady background noise never wins",
            script: Box::new(|n, t| match n {
                "A" if t < 3000 => speech(40, t),
                "N" => noise(t),
                _ => silence(t),
            }),
            want: vec![("A", true, 5900, 6100)],
        },
        Case {
            name: "all silent: one silence report, no flapping",
            script: Box::new(|n, t| match n {
                "A" if t < 3000 => speech(40, t),
                _ => silence(t),
            }),
            want: vec![("A", true, 5900, 6100)],
        },
        Case {
            name: "no packets at all is silence too",
            script: Box::new(|n, t| match n {
                "A" if t < 3000 => speech(40, t),
                _ => None,
            }),
            want: vec![("A", true, 5900, 6100)],
        },
        Case {
            name: "the dominant speaker resuming ends the silence",
            script: Box::new(|n, t| match n {
                "A" if !(3000..8000).contains(&t) => speech(40, t),
                _ => silence(t),
            }),
            want: vec![("A", true, 5900, 6100), ("A", false, 8000, 8200)],
        },
    ];
    let names = ["A", "B", "C", "N"];
    for case in cases {
        let t0 = Instant::now();
        let mut det = detector(&names);
        let warmup: Script = Box::new(|n, t| match n {
            "A" => speech(40, t),
            "N" => noise(t),
            _ => silence(t),
        });
        let first = simulate(&mut det, t0, &names, 0, 3000, &warmup);
        assert_eq!(
            summary(&first),
            vec![(600, "A".into(), false)],
            "{}",
            case.name
        );
        let changes = simulate(&mut det, t0, &names, 3000, 12_000, &case.script);
        let got = summary(&changes);
        assert_eq!(got.len(), case.want.len(), "{}: {got:?}", case.name);
        for ((t, who, silence), (want_who, want_silence, from, to)) in got.iter().zip(&case.want) {
            assert_eq!(
                (who.as_str(), *silence),
                (*want_who, *want_silence),
                "{}: {got:?}",
                case.name
            );
            assert!(
                *from < *t && *t <= *to,
                "{}: at {t} ms, want ({from}, {to}]",
                case.name
            );
        }
    }
}

#[test]
fn muted_participants_are_ignored() {
    let t0 = Instant::now();
    let names = ["A", "C"];
    let mut det = detector(&names);
    det.set_muted("C", true);
    let script: Script = Box::new(|n, t| if n == "C" { speech(0, t) } else { silence(t) });
    assert_eq!(simulate(&mut det, t0, &names, 0, 3000, &script), vec![]);
    assert_eq!(det.dominant(), None);
    det.set_muted("C", false);
    let changes = simulate(&mut det, t0, &names, 3000, 4000, &script);
    assert_eq!(summary(&changes), vec![(3600, "C".into(), false)]);
}

#[test]
fn previous_speakers_and_removal() {
    let t0 = Instant::now();
    let names = ["A", "B", "C", "D", "E"];
    let mut det = SpeakerDetector::new(SpeakerSettings {
        max_previous: 2,
        ..SpeakerSettings::default()
    });
    for n in names {
        det.add(n.into());
    }
    det.add("A".into());
    let mut previous = Vec::new();
    for (i, who) in ["A", "B", "C", "D"].into_iter().enumerate() {
        let from = i as u64 * 2000;
        let script: Script =
            Box::new(move |n, t| if n == who { speech(40, t) } else { silence(t) });
        let changes = simulate(&mut det, t0, &names, from, from + 2000, &script);
        assert_eq!(changes.len(), 1, "{who}: {changes:?}");
        assert_eq!(changes[0].1.dominant.as_str(), who);
        previous.push(changes[0].1.previous.clone());
    }
    let want: [&[&str]; 4] = [&[], &["A"], &["B", "A"], &["C", "B"]];
    for (got, want) in previous.iter().zip(want) {
        assert_eq!(*got, ids(want));
    }
    assert_eq!(
        det.ranking().cloned().collect::<Vec<_>>(),
        ids(&["D", "C", "B", "A", "E"])
    );

    assert_eq!(det.remove("E"), None);
    assert_eq!(det.remove("nobody"), None);
    let c = det.remove("D").unwrap();
    assert_eq!((c.dominant.as_str(), c.previous), ("C", ids(&["B", "A"])));
    assert_eq!(det.dominant().map(EndpointId::as_str), Some("C"));

    let event = DominantSpeakerEndpointChangeEvent::from(det.remove("C").unwrap());
    assert_eq!(event.dominant_speaker_endpoint, "B");
    assert_eq!(event.previous_speakers, Some(vec!["A".to_owned()]));
    assert_eq!(event.silence, Some(false));
}

#[test]
fn timeouts_and_long_gaps() {
    let t0 = Instant::now();
    let mut det = detector(&["A"]);
    assert_eq!(det.poll_timeout(), None);
    assert_eq!(det.handle_timeout(t0), None);
    assert_eq!(det.poll_timeout(), Some(t0 + Duration::from_millis(100)));
    let script: Script = Box::new(|_, t| speech(40, t));
    let changes = simulate(&mut det, t0, &["A"], 0, 1000, &script);
    assert_eq!(summary(&changes), vec![(600, "A".into(), false)]);
    // A day without any call: one silence report, and the ticks catch up.
    let later = t0 + Duration::from_secs(86_400);
    let c = det.handle_timeout(later).unwrap();
    assert!(c.silence);
    assert_eq!(det.poll_timeout(), Some(later + Duration::from_millis(100)));
    assert_eq!(det.handle_timeout(later + Duration::from_secs(5)), None);
}
