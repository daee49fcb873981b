//! Tests of [`super`] (allocation.rs), kept apart for size.

use proto::bridge_channel::{BridgeMessage, VideoConstraints};

use super::*;

fn layer(index: usize, height: u32, kbps: u64, active: bool) -> LayerOffer {
    LayerOffer {
        index,
        height,
        bitrate_bps: kbps * 1000,
        active,
    }
}

/// Three layers: 180p 150k, 360p 500k, 720p 1500k; `active` per layer.
fn sim_with(name: &str, active: [bool; 3]) -> SourceOffer {
    SourceOffer {
        name: name.into(),
        layers: vec![
            layer(0, 180, 150, active[0]),
            layer(1, 360, 500, active[1]),
            layer(2, 720, 1500, active[2]),
        ],
    }
}

fn sim(name: &str) -> SourceOffer {
    sim_with(name, [true; 3])
}

fn abc() -> Vec<SourceOffer> {
    vec![sim("A"), sim("B"), sim("C")]
}

fn msg() -> ReceiverVideoConstraints {
    ReceiverVideoConstraints::default()
}

fn heights(pairs: &[(&str, i32)]) -> Option<BTreeMap<String, VideoConstraints>> {
    Some(
        pairs
            .iter()
            .map(|(n, h)| (n.to_string(), VideoConstraints::max_height(*h)))
            .collect(),
    )
}

fn list(names: &[&str]) -> Option<Vec<String>> {
    Some(names.iter().map(|s| s.to_string()).collect())
}

#[test]
fn allocation_table() {
    struct Case {
        name: &'static str,
        msg: ReceiverVideoConstraints,
        sources: Vec<SourceOffer>,
        bwe_kbps: u64,
        /// (source, layer) in priority order.
        want: Vec<(&'static str, Option<usize>)>,
    }
    let cases = vec![
        Case {
            name: "defaults: every source at 180p",
            msg: msg(),
            sources: abc(),
            bwe_kbps: 10_000,
            want: vec![("A", Some(0)), ("B", Some(0)), ("C", Some(0))],
        },
        Case {
            name: "on-stage source first, at its constraint",
            msg: ReceiverVideoConstraints {
                on_stage_sources: list(&["C"]),
                constraints: heights(&[("C", 720)]),
                ..msg()
            },
            sources: abc(),
            bwe_kbps: 10_000,
            want: vec![("C", Some(2)), ("A", Some(0)), ("B", Some(0))],
        },
        Case {
            name: "budget cuts the lowest ranked",
            msg: msg(),
            sources: abc(),
            bwe_kbps: 400,
            want: vec![("A", Some(0)), ("B", Some(0)), ("C", None)],
        },
        Case {
            name: "lastN 1",
            msg: ReceiverVideoConstraints {
                last_n: Some(1),
                ..msg()
            },
            sources: abc(),
            bwe_kbps: 10_000,
            want: vec![("A", Some(0)), ("B", None), ("C", None)],
        },
        Case {
            name: "lastN 0",
            msg: ReceiverVideoConstraints {
                last_n: Some(0),
                ..msg()
            },
            sources: abc(),
            bwe_kbps: 10_000,
            want: vec![("A", None), ("B", None), ("C", None)],
        },
        Case {
            name: "selected before speaker order",
            msg: ReceiverVideoConstraints {
                last_n: Some(2),
                selected_sources: list(&["C"]),
                ..msg()
            },
            sources: abc(),
            bwe_kbps: 10_000,
            want: vec![("C", Some(0)), ("A", Some(0)), ("B", None)],
        },
        Case {
            name: "on stage before selected, each placed once, unknown names ignored",
            msg: ReceiverVideoConstraints {
                selected_sources: list(&["X", "B", "C"]),
                on_stage_sources: list(&["C", "Y"]),
                ..msg()
            },
            sources: abc(),
            bwe_kbps: 10_000,
            want: vec![("C", Some(0)), ("B", Some(0)), ("A", Some(0))],
        },
        Case {
            name: "maxHeight 0 disables without taking a lastN slot",
            msg: ReceiverVideoConstraints {
                last_n: Some(2),
                constraints: heights(&[("A", 0)]),
                ..msg()
            },
            sources: abc(),
            bwe_kbps: 10_000,
            want: vec![("A", None), ("B", Some(0)), ("C", Some(0))],
        },
        Case {
            name: "no active layer: not forwarded, no lastN slot",
            msg: ReceiverVideoConstraints {
                last_n: Some(1),
                ..msg()
            },
            sources: vec![sim_with("A", [false; 3]), sim("B"), sim("C")],
            bwe_kbps: 10_000,
            want: vec![("A", None), ("B", Some(0)), ("C", None)],
        },
        Case {
            name: "on-stage source keeps its lowest layer over budget",
            msg: ReceiverVideoConstraints {
                on_stage_sources: list(&["B"]),
                constraints: heights(&[("B", 720)]),
                ..msg()
            },
            sources: abc(),
            bwe_kbps: 100,
            want: vec![("B", Some(0)), ("A", None), ("C", None)],
        },
        Case {
            name: "on stage raised before thumbnails",
            msg: ReceiverVideoConstraints {
                on_stage_sources: list(&["A"]),
                default_constraints: Some(VideoConstraints::max_height(360)),
                constraints: heights(&[("A", 720)]),
                ..msg()
            },
            sources: abc(),
            bwe_kbps: 2000,
            want: vec![("A", Some(2)), ("B", Some(0)), ("C", Some(0))],
        },
        Case {
            name: "on stage takes the best layer that fits",
            msg: ReceiverVideoConstraints {
                on_stage_sources: list(&["A"]),
                constraints: heights(&[("A", -1)]),
                ..msg()
            },
            sources: abc(),
            bwe_kbps: 1200,
            want: vec![("A", Some(1)), ("B", Some(0)), ("C", Some(0))],
        },
        Case {
            name: "others raised round-robin",
            msg: ReceiverVideoConstraints {
                default_constraints: Some(VideoConstraints::max_height(720)),
                ..msg()
            },
            sources: abc(),
            bwe_kbps: 1500,
            want: vec![("A", Some(1)), ("B", Some(1)), ("C", Some(1))],
        },
        Case {
            name: "negative maxHeight: no limit",
            msg: ReceiverVideoConstraints {
                default_constraints: Some(VideoConstraints::max_height(-1)),
                ..msg()
            },
            sources: abc(),
            bwe_kbps: 10_000,
            want: vec![("A", Some(2)), ("B", Some(2)), ("C", Some(2))],
        },
        Case {
            name: "inactive layers are skipped",
            msg: ReceiverVideoConstraints {
                on_stage_sources: list(&["A"]),
                constraints: heights(&[("A", 720)]),
                ..msg()
            },
            sources: vec![
                sim_with("A", [true, true, false]),
                sim_with("B", [false, true, true]),
            ],
            bwe_kbps: 10_000,
            want: vec![("A", Some(1)), ("B", Some(1))],
        },
        Case {
            name: "a single high layer exceeds a low constraint when it fits",
            msg: msg(),
            sources: vec![SourceOffer {
                name: "A".into(),
                layers: vec![layer(0, 720, 1000, true)],
            }],
            bwe_kbps: 10_000,
            want: vec![("A", Some(0))],
        },
        Case {
            name: "a single high layer that does not fit",
            msg: msg(),
            sources: vec![SourceOffer {
                name: "A".into(),
                layers: vec![layer(0, 720, 1000, true)],
            }],
            bwe_kbps: 500,
            want: vec![("A", None)],
        },
        Case {
            name: "no sources",
            msg: msg(),
            sources: vec![],
            bwe_kbps: 500,
            want: vec![],
        },
    ];
    for case in cases {
        let mut c = ReceiverConstraints::new();
        c.apply(&case.msg);
        let a = allocate(&c, &case.sources, case.bwe_kbps * 1000);
        let got: Vec<(&str, Option<usize>)> = a
            .sources
            .iter()
            .map(|s| (s.name.as_str(), s.layer))
            .collect();
        assert_eq!(got, case.want, "{}", case.name);
        let forwarded: Vec<&str> = case
            .want
            .iter()
            .filter(|(_, l)| l.is_some())
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(
            a.forwarded_sources().forwarded_sources,
            forwarded,
            "{}",
            case.name
        );
        let total: u64 = a.sources.iter().map(|s| s.bitrate_bps).sum();
        assert_eq!(a.total_bps, total, "{}", case.name);
        let over_budget = total > case.bwe_kbps * 1000;
        assert_eq!(a.oversending, over_budget, "{}", case.name);
        if over_budget {
            // Only the on-stage source's lowest layer may exceed the estimate.
            assert_eq!(a.forwarded.len(), 1, "{}", case.name);
            assert!(c.on_stage().contains(&a.forwarded[0]), "{}", case.name);
        }
    }
}

#[test]
fn effective_max_height() {
    let mut c = ReceiverConstraints::new();
    c.apply(&ReceiverVideoConstraints {
        last_n: Some(1),
        constraints: heights(&[("A", 720), ("C", 0)]),
        ..msg()
    });
    let a = allocate(&c, &abc(), 10_000_000);
    let got: Vec<(&str, i32)> = a
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.max_height))
        .collect();
    assert_eq!(got, vec![("A", 720), ("B", 0), ("C", 0)]);
    assert_eq!(a.layer("A"), Some(2));
    assert_eq!(a.layer("B"), None);
    assert_eq!(a.layer("nobody"), None);
}

#[test]
fn constraints_update_only_present_fields() {
    let mut c = ReceiverConstraints::default();
    assert_eq!((c.last_n(), c.default_max_height()), (-1, 180));
    assert_eq!(c.max_height("A"), 180);

    let parse = |json: &str| match BridgeMessage::parse(json).unwrap() {
        BridgeMessage::ReceiverVideoConstraints(m) => m,
        other => panic!("not constraints: {other:?}"),
    };
    // (message, changed, lastN, default, A's maxHeight, B's, on stage, selected)
    type Row = (
        &'static str,
        bool,
        i32,
        i32,
        i32,
        i32,
        &'static [&'static str],
        &'static [&'static str],
    );
    let table: &[Row] = &[
        (
            r#"{"colibriClass":"ReceiverVideoConstraints","lastN":20,"onStageSources":["A-v0"],"defaultConstraints":{"maxHeight":180},"constraints":{"A-v0":{"maxHeight":720}}}"#,
            true,
            20,
            180,
            720,
            180,
            &["A-v0"],
            &[],
        ),
        (
            r#"{"colibriClass":"ReceiverVideoConstraints","lastN":20}"#,
            false,
            20,
            180,
            720,
            180,
            &["A-v0"],
            &[],
        ),
        (
            r#"{"colibriClass":"ReceiverVideoConstraints","selectedSources":["B-v0"],"defaultConstraints":{"maxFrameRate":15}}"#,
            true,
            20,
            180,
            720,
            180,
            &["A-v0"],
            &["B-v0"],
        ),
        (
            r#"{"colibriClass":"ReceiverVideoConstraints","defaultConstraints":{"maxHeight":360},"constraints":{"A-v0":{"maxFrameRate":30},"B-v0":{"maxHeight":0}}}"#,
            true,
            20,
            360,
            360,
            0,
            &["A-v0"],
            &["B-v0"],
        ),
        (
            r#"{"colibriClass":"ReceiverVideoConstraints","onStageSources":[],"constraints":{}}"#,
            true,
            20,
            360,
            360,
            360,
            &[],
            &["B-v0"],
        ),
    ];
    for (i, (json, changed, last_n, default, a, b, on_stage, selected)) in table.iter().enumerate()
    {
        assert_eq!(c.apply(&parse(json)), *changed, "row {i}");
        assert_eq!(c.last_n(), *last_n, "row {i}");
        assert_eq!(c.default_max_height(), *default, "row {i}");
        assert_eq!(
            (c.max_height("A-v0"), c.max_height("B-v0")),
            (*a, *b),
            "row {i}"
        );
        let s = |v: &[SourceName]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(s(c.on_stage()), *on_stage, "row {i}");
        assert_eq!(s(c.selected()), *selected, "row {i}");
    }

    assert!(c.set_last_n(3));
    assert!(!c.set_last_n(3));
    assert!(c.apply(&ReceiverVideoConstraints {
        assumed_bandwidth_bps: Some(1_000_000),
        ..msg()
    }));
    assert_eq!(c.assumed_bandwidth_bps(), Some(1_000_000));
    assert!(c.apply(&ReceiverVideoConstraints {
        assumed_bandwidth_bps: Some(-1),
        ..msg()
    }));
    assert_eq!(c.assumed_bandwidth_bps(), None);
}
