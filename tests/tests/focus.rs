//! The real focus (`sfu`'s library, in process) against a real Prosody:
//! a guest asks for a conference and joins; malformed requests get the right
//! XMPP errors and nothing else is disturbed; `/health` follows the XMPP link.

use std::time::Duration;

use jid::{BareJid, Jid};
use proto::focus::ConferenceIq;
use tests::{Prosody, ProsodyOptions, RawXmpp};
use tokio::sync::mpsc::UnboundedReceiver;
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_session::{Event, IqKind, Security, SessionConfig, XmppConfig};

const WAIT: Duration = Duration::from_secs(10);

struct Stack {
    prosody: Prosody,
    http: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_stack() -> Stack {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("prosody starts");
    let account = prosody.register_service("focus").expect("register focus");
    let mut config = sfu::Config::default();
    config.xmpp.server = prosody.c2s_addr().to_string();
    config.xmpp.domain = prosody.domain().into();
    config.xmpp.password = account.password.clone();
    config.xmpp.security = Security::Plaintext;
    config.xmpp.reconnect_min_ms = 200;
    config.media.bind = "127.0.0.1:0".into();
    config.apply_env();
    service::Validate::validate(&config).expect("valid config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sfu::run_with_listener(config, listener, async move {
        let _ = stopped.await;
    }));
    Stack {
        prosody,
        http,
        stop: Some(stop),
        task,
    }
}

fn guest_config(prosody: &Prosody) -> XmppConfig {
    XmppConfig {
        server: prosody.c2s_addr().to_string(),
        domain: prosody.domain().to_owned(),
        security: Security::Plaintext,
        ..XmppConfig::default()
    }
}

async fn online(events: &mut UnboundedReceiver<Event>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::Online { .. })) => return,
            Ok(Some(_)) => continue,
            other => panic!("guest never came online: {other:?}"),
        }
    }
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

/// Polls `/health` until it answers `want` (the focus logs in asynchronously).
async fn health_becomes(addr: std::net::SocketAddr, want: u16) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (code, body) = http_get(addr, "/health").await;
        if code == want {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/health stayed {code}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_gets_a_conference_and_malformed_requests_are_refused() {
    tests::init_logs();
    let mut stack = start_stack().await;
    health_becomes(stack.http, 200).await;
    let focus = Jid::new(&format!("focus@auth.{}/focus", stack.prosody.domain())).unwrap();
    let room = BareJid::new(&format!("standup@{}", stack.prosody.conference_domain())).unwrap();

    let (guest, mut events, _task) =
        xmpp_session::spawn(guest_config(&stack.prosody), SessionConfig::default()).unwrap();
    online(&mut events).await;

    // Malformed requests, each answered with its condition.
    let cases: [(&str, DefinedCondition); 5] = [
        ("<conference xmlns='http://jitsi.org/protocol/focus'/>", DefinedCondition::BadRequest),
        ("<conference xmlns='http://jitsi.org/protocol/focus' room='x@elsewhere.test'/>", DefinedCondition::BadRequest),
        ("<jibri xmlns='http://jitsi.org/protocol/jibri' action='explode'/>", DefinedCondition::FeatureNotImplemented),
        ("<conference xmlns='http://jitsi.org/protocol/focus' room='r@conference.meet.test'><property value='garbage'/></conference>", DefinedCondition::BadRequest),
        ("<query xmlns='urn:example:unknown'/>", DefinedCondition::ServiceUnavailable),
    ];
    for (xml, want) in cases {
        let payload = proto::parse_xml(xml).unwrap();
        let err = guest
            .iq(Some(focus.clone()), IqKind::Set, payload, None)
            .await
            .expect_err(xml);
        assert_eq!(err.condition(), Some(&want), "{xml}: {err}");
    }

    // An IQ that is not even a valid stanza (no payload), sent raw.
    let mut raw = RawXmpp::login_anonymous(stack.prosody.c2s_addr(), stack.prosody.domain())
        .await
        .unwrap();
    raw.send(&format!("<iq type='set' id='raw1' to='{focus}'/>"))
        .await
        .unwrap();
    let answer = raw.read_until("</iq>", WAIT).await.unwrap();
    assert!(
        answer.contains("id='raw1'") || answer.contains("id=\"raw1\""),
        "{answer}"
    );
    assert!(
        answer.contains("type='error'") || answer.contains("type=\"error\""),
        "{answer}"
    );
    assert!(answer.contains("<bad-request"), "{answer}");

    // The focus survived all of that: a good request still works.
    let reply = guest
        .iq(
            Some(focus.clone()),
            IqKind::Set,
            ConferenceIq::request(room.clone()).into(),
            None,
        )
        .await
        .expect("conference request answered")
        .expect("with a payload");
    assert_eq!(ConferenceIq::try_from(&reply).unwrap().ready, Some(true));
    guest.join_room(room.clone(), "g1", vec![]);
    let deadline = tokio::time::Instant::now() + WAIT;
    let focus_occupant = loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::OccupantJoined { occupant, .. })) if occupant.nick == "focus" => {
                break occupant
            }
            Ok(Some(_)) => continue,
            other => panic!("focus not seen in the room: {other:?}"),
        }
    };
    assert_eq!(
        focus_occupant.affiliation,
        xmpp_parsers::muc::user::Affiliation::Owner
    );
    // A Jibri request from inside the room reaches the focus's checks.
    let start = proto::parse_xml(
        "<jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='file'/>",
    )
    .unwrap();
    let to_focus = Jid::new(&format!("{room}/focus")).unwrap();
    let err = guest
        .iq(Some(to_focus), IqKind::Set, start, None)
        .await
        .expect_err("no recorder pool");
    assert_eq!(
        err.condition(),
        Some(&DefinedCondition::ServiceUnavailable),
        "{err}"
    );

    let (_, metrics) = http_get(stack.http, "/metrics").await;
    assert!(metrics.contains("sfu_rooms 1"), "{metrics}");
    assert!(metrics.contains("sfu_participants 1"), "{metrics}");

    // Losing XMPP shows in /health.
    stack.prosody.stop().unwrap();
    health_becomes(stack.http, 503).await;

    guest.shutdown().await;
    let _ = stack.stop.take().map(|s| s.send(()));
    tokio::time::timeout(WAIT, &mut stack.task)
        .await
        .expect("sfu stops")
        .unwrap()
        .unwrap();
}
