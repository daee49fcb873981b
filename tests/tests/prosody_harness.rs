//! The Prosody harness and the deployment config it renders: the XMPP
//! layout (who may log in how, who owns rooms, who may enter breweries),
//! the HTTP endpoints, restart on the same ports, and cleanup.

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use tests::raw_xmpp::between;
use tests::{Prosody, ProsodyOptions, RawXmpp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(5);

fn init_tracing() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
}

async fn start() -> Prosody {
    init_tracing();
    let started = Instant::now();
    let prosody = Prosody::start_async(ProsodyOptions::default())
        .await
        .expect("prosody starts");
    eprintln!("timing: start to ready {:?}", started.elapsed());
    prosody
}

/// Sends a MUC join presence and returns the first presence that answers
/// for `to`, either an error or our own presence (status 110).
async fn join(client: &mut RawXmpp, to: &str) -> String {
    client
        .send(&format!(
            "<presence to='{to}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await
        .unwrap();
    loop {
        let presence = client.read_until("</presence>", WAIT).await.unwrap();
        let from_room_nick = presence.contains(&format!("from='{to}'"));
        if from_room_nick && (presence.contains("type='error'") || presence.contains("code='110'"))
        {
            return presence;
        }
    }
}

/// Leaves a room and waits for the server's confirmation (own presence,
/// type unavailable).
async fn leave(client: &mut RawXmpp, from: &str) {
    client
        .send(&format!("<presence to='{from}' type='unavailable'/>"))
        .await
        .unwrap();
    loop {
        let presence = client.read_until("</presence>", WAIT).await.unwrap();
        if presence.contains(&format!("from='{from}'"))
            && presence.contains("type='unavailable'")
            && presence.contains("code='110'")
        {
            return;
        }
    }
}

#[tokio::test]
async fn stream_features_offer_plain_on_auth_and_anonymous_on_the_domain() {
    let prosody = start().await;

    let (guest, features) = RawXmpp::connect(prosody.c2s_addr(), prosody.domain())
        .await
        .unwrap();
    assert!(
        features.contains("<mechanism>ANONYMOUS</mechanism>"),
        "{features}"
    );
    assert!(
        !features.contains("<mechanism>PLAIN</mechanism>"),
        "{features}"
    );
    // No certificates on loopback: STARTTLS must not be offered.
    assert!(!features.contains("starttls"), "{features}");
    guest.close().await.unwrap();

    for host in [prosody.auth_domain(), prosody.recorder_domain()] {
        let (service, features) = RawXmpp::connect(prosody.c2s_addr(), &host).await.unwrap();
        assert!(
            features.contains("<mechanism>PLAIN</mechanism>"),
            "{host}: {features}"
        );
        assert!(
            !features.contains("<mechanism>ANONYMOUS</mechanism>"),
            "{host}: {features}"
        );
        service.close().await.unwrap();
    }
}

#[tokio::test]
async fn accounts_survive_a_restart_on_the_same_ports() {
    let mut prosody = start().await;
    let t = Instant::now();
    let focus = prosody.register_service("focus").unwrap();
    eprintln!("timing: register {:?}", t.elapsed());
    assert_eq!(focus.jid(), "focus@auth.meet.test");

    let mut client = prosody.login(&focus).await.unwrap();
    assert!(client.jid().unwrap().starts_with("focus@auth.meet.test/"));
    let wrong = RawXmpp::login_plain(prosody.c2s_addr(), &focus.host, "focus", "wrong").await;
    assert!(wrong.unwrap_err().to_string().contains("not-authorized"));

    let (addr, http, pid) = (
        prosody.c2s_addr(),
        prosody.http_port(),
        prosody.pid().unwrap(),
    );
    let t = Instant::now();
    prosody.stop_async().await.unwrap();
    eprintln!("timing: stop {:?}", t.elapsed());
    assert!(!prosody.is_running());
    assert!(
        TcpStream::connect(addr).is_err(),
        "c2s still accepts after stop"
    );
    // Connected clients are told why the server went away.
    let bye = client.read_until("</stream:stream>", WAIT).await.unwrap();
    assert!(bye.contains("system-shutdown"), "{bye}");

    let t = Instant::now();
    prosody.start_again_async().await.unwrap();
    eprintln!("timing: start_again to ready {:?}", t.elapsed());
    assert_eq!(prosody.c2s_addr(), addr);
    assert_eq!(prosody.http_port(), http);
    assert_ne!(prosody.pid().unwrap(), pid);

    let again = RawXmpp::login_plain(addr, &focus.host, &focus.username, &focus.password)
        .await
        .unwrap();
    assert!(again.jid().unwrap().starts_with("focus@auth.meet.test/"));
    again.close().await.unwrap();

    // Restarting a running server also works (it stops first).
    prosody.start_again_async().await.unwrap();
    assert!(prosody.is_running());
}

#[tokio::test]
async fn two_instances_run_side_by_side() {
    init_tracing();
    let (a, b) = tokio::join!(
        Prosody::start_async(ProsodyOptions::default()),
        Prosody::start_async(ProsodyOptions::for_domain("other.test")),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.c2s_addr(), b.c2s_addr());
    assert_ne!(a.http_port(), b.http_port());
    let ports = [
        a.c2s_addr().port(),
        a.http_port(),
        b.c2s_addr().port(),
        b.http_port(),
    ];
    assert!(
        ports
            .iter()
            .all(|p| ports.iter().filter(|q| *q == p).count() == 1),
        "{ports:?}"
    );
    assert_ne!(a.data_dir(), b.data_dir());

    for p in [&a, &b] {
        let (client, features) = RawXmpp::connect(p.c2s_addr(), p.domain()).await.unwrap();
        assert!(features.contains("ANONYMOUS"), "{features}");
        client.close().await.unwrap();
    }
    // Each serves only its own domain.
    let (mut client, _) = RawXmpp::connect(b.c2s_addr(), "other.test").await.unwrap();
    client.send("</stream:stream>").await.unwrap();
    let answer = RawXmpp::connect(b.c2s_addr(), "meet.test").await;
    assert!(answer.unwrap_err().to_string().contains("host-unknown"));
}

#[tokio::test]
async fn internal_muc_admits_service_accounts_only() {
    let prosody = start().await;
    let focus = prosody.register_service("focus").unwrap();
    let recorder = prosody.register_recorder("recorder1").unwrap();
    let internal = prosody.internal_domain();

    // A service account creates the brewery and is its owner.
    let mut service = prosody.login(&focus).await.unwrap();
    let joined = join(&mut service, &format!("recorders@{internal}/focus")).await;
    assert!(
        joined.contains("code='110'") && joined.contains("affiliation='owner'"),
        "{joined}"
    );

    // A guest can join neither the existing brewery nor a new room.
    let mut guest = RawXmpp::login_anonymous(prosody.c2s_addr(), prosody.domain())
        .await
        .unwrap();
    for room in ["recorders", "newroom"] {
        let refused = join(&mut guest, &format!("{room}@{internal}/guest")).await;
        assert!(refused.contains("type='error'"), "{refused}");
        assert!(
            refused.contains("<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
            "{refused}"
        );
        assert!(refused.contains("type='auth'"), "{refused}");
    }

    // Neither can the recorder's meeting identity (only auth.DOMAIN may).
    let mut hidden = prosody.login(&recorder).await.unwrap();
    let refused = join(&mut hidden, &format!("recorders@{internal}/rec")).await;
    assert!(refused.contains("<forbidden"), "{refused}");

    // A second service account gets in.
    let gateway = prosody.register_service("gateway1").unwrap();
    let mut other = prosody.login(&gateway).await.unwrap();
    let joined = join(&mut other, &format!("recorders@{internal}/gw")).await;
    assert!(joined.contains("code='110'"), "{joined}");
}

#[tokio::test]
async fn the_focus_owns_rooms_and_sees_real_jids() {
    let prosody = start().await;
    let focus = prosody.register_service("focus").unwrap();
    let room = format!("standup@{}", prosody.conference_domain());

    // A guest creates the room: it is usable at once (no locking).
    let mut guest = RawXmpp::login_anonymous(prosody.c2s_addr(), prosody.domain())
        .await
        .unwrap();
    let guest_jid = guest.jid().unwrap().to_owned();
    let joined = join(&mut guest, &format!("{room}/guest")).await;
    assert!(joined.contains("code='201'"), "room not created: {joined}");
    guest
        .send(&format!(
            "<message to='{room}' type='groupchat'><body>hi</body></message>"
        ))
        .await
        .unwrap();
    // (after the room's empty <subject/> message)
    let echo = guest.read_until("<body>hi</body>", WAIT).await.unwrap();
    assert!(!echo.contains("type='error'"), "{echo}");

    // The focus joins later and is owner anyway; it sees the guest's real JID.
    let mut service = prosody.login(&focus).await.unwrap();
    service
        .send(&format!(
            "<presence to='{room}/focus'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await
        .unwrap();
    let mut presences = service.read_until("code='110'", WAIT).await.unwrap();
    presences += &service.read_until("</presence>", WAIT).await.unwrap();
    let own = &presences[presences.rfind("<presence").unwrap()..];
    assert!(
        own.contains("affiliation='owner'") && own.contains("role='moderator'"),
        "{own}"
    );
    assert!(
        presences.contains(&format!("jid='{guest_jid}'")),
        "real JID hidden: {presences}"
    );

    // Owner rights for real: the focus may read the owner configuration form.
    service
        .send(&format!(
            "<iq type='get' id='cfg1' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"
        ))
        .await
        .unwrap();
    let form = service.read_until("</iq>", WAIT).await.unwrap();
    assert!(
        form.contains("type='result'") && form.contains("jabber:x:data"),
        "{form}"
    );

    // The room disappears when its last occupant leaves, and the name can be
    // used again at once.
    leave(&mut service, &format!("{room}/focus")).await;
    leave(&mut guest, &format!("{room}/guest")).await;
    let mut again = RawXmpp::login_anonymous(prosody.c2s_addr(), prosody.domain())
        .await
        .unwrap();
    let joined = join(&mut again, &format!("{room}/again")).await;
    assert!(
        joined.contains("code='201'") && !joined.contains("type='error'"),
        "{joined}"
    );
}

/// One HTTP/1.1 request on a fresh connection; returns the response text
/// received within a second (WebSocket upgrades keep the connection open).
async fn http(port: u16, request: String) -> String {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if text.contains("</body>")
            || (text.starts_with("HTTP/1.1 101") && text.contains("\r\n\r\n"))
        {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn http_serves_websocket_and_bosh() {
    let prosody = start().await;
    let port = prosody.http_port();
    assert_eq!(
        prosody.websocket_url(),
        format!("ws://127.0.0.1:{port}/xmpp-websocket")
    );
    assert_eq!(
        prosody.bosh_url(),
        format!("http://127.0.0.1:{port}/http-bind")
    );

    let upgrade = http(
        port,
        format!(
            "GET /xmpp-websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Protocol: xmpp\r\nOrigin: http://example.org\r\n\r\n"
        ),
    )
    .await;
    assert!(upgrade.starts_with("HTTP/1.1 101"), "{upgrade}");
    assert!(
        upgrade.contains("Sec-WebSocket-Protocol: xmpp"),
        "{upgrade}"
    );

    let body = "<body rid='1' to='meet.test' xml:lang='en' wait='5' hold='1' ver='1.6' xmpp:version='1.0' \
                xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>";
    let bosh = http(
        port,
        format!(
            "POST /http-bind HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://example.org\r\n\
             Content-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(bosh.starts_with("HTTP/1.1 200"), "{bosh}");
    // Cross-origin allowed (the page may be served from another origin).
    assert!(
        bosh.contains("Access-Control-Allow-Origin: http://example.org"),
        "{bosh}"
    );
    assert!(bosh.contains("<mechanism>ANONYMOUS</mechanism>"), "{bosh}");
    assert!(between(&bosh, "secure='", "'") == Some("true"), "{bosh}");
}

/// Both sign-in modes: anonymous (the default) and tokens.
#[tokio::test]
async fn the_rendered_config_passes_prosodyctl_check() {
    init_tracing();
    for opts in [
        ProsodyOptions::default(),
        ProsodyOptions::with_jwt("check-config-secret-0123456789"),
    ] {
        let mode = if opts.jwt.is_some() {
            "jwt"
        } else {
            "anonymous"
        };
        let prosody = Prosody::start_async(opts).await.expect("prosody starts");
        let config = std::fs::read_to_string(prosody.config_path()).unwrap();
        assert!(
            config.contains(&format!("authentication = \"{mode}\"")),
            "{mode}"
        );
        let out = Command::new("prosodyctl")
            .arg("--config")
            .arg(prosody.config_path())
            .args(["check", "config"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("All checks passed"), "{mode}: {text}");
        // Nothing in the start-up log above "info".
        let log = std::fs::read_to_string(prosody.log_path()).unwrap();
        let bad: Vec<_> = log
            .lines()
            .filter(|l| l.contains("\twarn\t") || l.contains("\terror\t"))
            .collect();
        assert!(bad.is_empty(), "{mode}: {bad:#?}");
    }
}

#[tokio::test]
async fn dropping_kills_prosody_and_removes_its_folder() {
    let prosody = start().await;
    let dir = prosody.data_dir().to_path_buf();
    let pid = prosody.pid().unwrap();
    let addr = prosody.c2s_addr();
    assert!(dir.join("prosody.pid").is_file());
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(prosody);
    assert!(!dir.exists(), "{} left behind", dir.display());
    // Reaped, so the pid is gone (not a zombie).
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(TcpStream::connect(addr).is_err());
}

#[tokio::test]
async fn bad_options_fail_with_a_clear_error() {
    let err = Prosody::start_async(ProsodyOptions::for_domain("not a domain"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid domain"), "{err:#}");

    let opts = ProsodyOptions {
        prosody_bin: "/nonexistent/prosody".into(),
        ..Default::default()
    };
    let err = Prosody::start_async(opts).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("spawning /nonexistent/prosody"),
        "{err:#}"
    );

    let prosody = start().await;
    let err = prosody.register("x", "nowhere.test", "pw").unwrap_err();
    assert!(
        err.to_string()
            .contains("prosodyctl register x nowhere.test failed"),
        "{err:#}"
    );
}
