use super::*;
use xmpp_session::IqKind;

const FOCUS: &str = "focus@auth.meet.test/focus";

fn req(xml: &str) -> IncomingIq {
    IncomingIq {
        from: Some(Jid::new(FOCUS).unwrap()),
        to: None,
        id: "q1".into(),
        kind: IqKind::Set,
        payload: proto::parse_xml(xml).unwrap(),
    }
}

fn start_file(session: &str) -> IncomingIq {
    req(&format!(
        "<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='file' \
         session_id='{session}' room='standup@conference.meet.test'/>"
    ))
}

fn drain(m: &mut Member) -> Vec<Output> {
    std::iter::from_fn(|| m.poll()).collect()
}

fn busy_in(o: &Output) -> Option<BusyStatus> {
    let Output::Presence(p) = o else { return None };
    p.iter()
        .find_map(|e| JibriStatus::try_from(e).ok())
        .and_then(|s| s.busy)
}

fn refused(o: &Output) -> Option<(DefinedCondition, String)> {
    match o {
        Output::Reply { result: Err(e), .. } => Some(e.clone()),
        _ => None,
    }
}

#[test]
fn a_start_is_pending_then_on_then_off_and_presence_follows_the_load() {
    let mut m = Member::new(1, vec![]);
    assert_eq!(busy_in(&drain(&mut m)[0]), Some(BusyStatus::Idle));
    m.handle_request(start_file("s1"));
    let out = drain(&mut m);
    match &out[..] {
        [Output::Reply {
            result: Ok(Some(answer)),
            ..
        }, Output::Start(start), presence] => {
            let a = JibriIq::try_from(answer).unwrap();
            assert_eq!(a.status, Some(Status::Pending));
            assert_eq!(start.session, "s1");
            assert_eq!(start.mode, RecordingMode::File);
            assert_eq!(start.room.to_string(), "standup@conference.meet.test");
            assert_eq!(busy_in(presence), Some(BusyStatus::Busy));
        }
        other => panic!("{other:?}"),
    }
    // Full: the next start is refused as busy.
    m.handle_request(start_file("s2"));
    let out = drain(&mut m);
    assert_eq!(
        refused(&out[0]),
        Some((DefinedCondition::ResourceConstraint, "busy".into()))
    );
    m.job_event("s1", JobEvent::On);
    match &drain(&mut m)[..] {
        [Output::Report { to, iq }] => {
            assert_eq!(to.to_string(), FOCUS);
            assert_eq!(iq.status, Some(Status::On));
            assert_eq!(iq.session_id.as_deref(), Some("s1"));
        }
        other => panic!("{other:?}"),
    }
    m.job_event(
        "s1",
        JobEvent::Failed {
            reason: FailureReason::Error,
            retry: false,
        },
    );
    match &drain(&mut m)[..] {
        [Output::Report { iq, .. }, presence] => {
            assert_eq!(iq.status, Some(Status::Off));
            assert_eq!(iq.failure_reason, Some(FailureReason::Error));
            assert_eq!(iq.should_retry, Some(false));
            assert_eq!(busy_in(presence), Some(BusyStatus::Idle));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.running(), 0);
}

#[test]
fn a_stop_names_a_running_session() {
    let mut m = Member::new(2, vec![]);
    drain(&mut m);
    m.handle_request(start_file("s1"));
    drain(&mut m);
    m.handle_request(req(
        "<jibri xmlns='http://jitsi.org/protocol/jibri' action='stop' session_id='nope'/>",
    ));
    assert_eq!(
        refused(&drain(&mut m)[0]).map(|e| e.0),
        Some(DefinedCondition::ItemNotFound)
    );
    m.handle_request(req(
        "<jibri xmlns='http://jitsi.org/protocol/jibri' action='stop' session_id='s1'/>",
    ));
    let out = drain(&mut m);
    assert!(
        matches!(&out[..], [Output::Reply { result: Ok(Some(_)), .. }, Output::Stop { session }] if session == "s1"),
        "{out:?}"
    );
    m.job_event("s1", JobEvent::Finished);
    let out = drain(&mut m);
    assert!(
        matches!(&out[..], [Output::Report { iq, .. }] if iq.status == Some(Status::Off) && iq.failure_reason.is_none()),
        "{out:?}"
    );
}

#[test]
fn malformed_and_unsupported_starts_are_refused_by_name() {
    let mut m = Member::new(1, vec!["a.rtmp.youtube.com".into()]);
    drain(&mut m);
    for (xml, condition) in [
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='file' room='r@conference.meet.test'/>", DefinedCondition::BadRequest),
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='file' session_id='x'/>", DefinedCondition::BadRequest),
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' sipaddress='sip:a@b' session_id='x' room='r@conference.meet.test'/>", DefinedCondition::FeatureNotImplemented),
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='stream' session_id='x' room='r@conference.meet.test'/>", DefinedCondition::BadRequest),
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='stream' streamid='rtmp://evil.example/live/k' session_id='x' room='r@conference.meet.test'/>", DefinedCondition::NotAllowed),
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='stream' streamid='not a key!' session_id='x' room='r@conference.meet.test'/>", DefinedCondition::BadRequest),
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='launch'/>", DefinedCondition::BadRequest),
        ("<jibri xmlns='http://jitsi.org/protocol/jibri'/>", DefinedCondition::BadRequest),
    ] {
        m.handle_request(req(xml));
        let out = drain(&mut m);
        assert_eq!(refused(&out[0]).map(|e| e.0), Some(condition), "{xml}: {out:?}");
    }
    assert_eq!(m.running(), 0);
    // A YouTube key on an allowed ingest starts.
    m.handle_request(req("<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='stream' streamid='abcd-efgh-ijkl' session_id='y' room='r@conference.meet.test'/>"));
    let out = drain(&mut m);
    assert!(
        matches!(&out[1], Output::Start(s) if s.stream_url.as_deref() == Some("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl")),
        "{out:?}"
    );
}

#[test]
fn stream_urls_are_checked_against_the_allow_list() {
    let allowed = vec!["127.0.0.1".to_string(), "*.example.com".to_string()];
    assert_eq!(
        stream_url("rtmp://127.0.0.1:1935/live/key", &allowed).as_deref(),
        Ok("rtmp://127.0.0.1:1935/live/key")
    );
    assert!(stream_url("rtmps://ingest.example.com/app/k", &allowed).is_ok());
    assert_eq!(
        stream_url("rtmp://example.com.evil.net/app/k", &allowed),
        Err(StreamIdError::HostNotAllowed("example.com.evil.net".into()))
    );
    assert_eq!(
        stream_url("rtmp://user@10.0.0.1/app/k", &allowed),
        Err(StreamIdError::HostNotAllowed("10.0.0.1".into()))
    );
    for bad in [
        "",
        "http://127.0.0.1/x",
        "rtmp://127.0.0.1",
        "rtmp:///x",
        "key with spaces",
    ] {
        assert!(stream_url(bad, &allowed).is_err(), "{bad}");
    }
    // A bare key goes to YouTube, which must be allowed.
    assert_eq!(
        stream_url("abcd-1234", &allowed),
        Err(StreamIdError::HostNotAllowed("a.rtmp.youtube.com".into()))
    );
}
