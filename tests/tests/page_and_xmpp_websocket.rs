//! The meeting page's way in, through the real `sfu` (in process): XMPP over
//! WebSocket relayed to a real Prosody at `/xmpp-websocket` (a guest signs
//! in and binds; an unreachable Prosody closes the socket with a reason; the
//! query string, the subprotocol and close frames pass through), and the
//! page's static files from `web_root` (content types, exact bytes, room
//! paths, precedence of the other routes, no escape from the root).

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tests::http::Answer;
use tests::{Prosody, ProsodyOptions};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use xmpp_session::Security;

const WAIT: Duration = Duration::from_secs(10);

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The sfu, running in this process.
struct Sfu {
    http: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Sfu {
    async fn start(mut config: sfu::Config) -> Sfu {
        config.media.bind = "127.0.0.1:0".into();
        config.apply_env();
        service::Validate::validate(&config).expect("valid config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sfu::run_with_listener(config, listener, async move {
            let _ = stopped.await;
        }));
        Sfu { http, stop, task }
    }

    async fn end(self) {
        let _ = self.stop.send(());
        let ended = tokio::time::timeout(WAIT, self.task).await;
        assert!(ended.is_ok(), "the sfu did not stop");
    }
}

/// The sfu's config as the focus of `prosody`.
fn focus_config(prosody: &Prosody) -> sfu::Config {
    let account = prosody.register_service("focus").expect("register focus");
    let mut config = sfu::Config::default();
    config.xmpp.server = prosody.c2s_addr().to_string();
    config.xmpp.domain = prosody.domain().into();
    config.xmpp.password = account.password;
    config.xmpp.security = Security::Plaintext;
    config
}

/// A config whose XMPP server is nowhere (the HTTP side still runs).
fn offline_config() -> sfu::Config {
    let mut config = sfu::Config::default();
    config.xmpp.server = format!("127.0.0.1:{}", tests::free_port().unwrap());
    config.xmpp.password = "unused".into();
    config.xmpp.security = Security::Plaintext;
    config.media.enabled = false;
    config
}

/// An HTTP/1.1 answer, read raw so that nothing normalises the path.
async fn get(addr: SocketAddr, path: &str) -> Answer {
    tests::http::get(addr, path).await.unwrap()
}

/// Opens `url` as a browser would for XMPP (subprotocol `xmpp`); returns the
/// socket and the subprotocol the server chose.
async fn open_xmpp_socket(url: &str) -> (Client, Option<String>) {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "xmpp".parse().unwrap());
    let (ws, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("the upgrade in time")
        .expect("the upgrade");
    let protocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    (ws, protocol)
}

/// Sends `xml` and reads text frames until `until` has arrived.
async fn exchange(ws: &mut Client, xml: &str, until: &str) -> String {
    ws.send(Message::text(xml)).await.unwrap();
    let mut received = String::new();
    while !received.contains(until) {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => received.push_str(&text),
            other => panic!("no {until:?} in {received:?}: {other:?}"),
        }
    }
    received
}

/// The next close frame, skipping anything else, within `WAIT`.
async fn next_close(ws: &mut Client) -> Option<CloseFrame> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    }
}

/// The value of an unlabelled metric.
async fn metric(addr: SocketAddr, name: &str) -> u64 {
    let answer = get(addr, "/metrics").await;
    let text = String::from_utf8(answer.body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_signs_in_and_binds_through_the_relay() {
    tests::init_logs();
    let prosody = Prosody::start_async(ProsodyOptions::default())
        .await
        .expect("prosody starts");
    let mut config = focus_config(&prosody);
    config.http.xmpp_websocket = prosody.websocket_url();
    let sfu = Sfu::start(config).await;
    tests::wait_healthy(sfu.http, WAIT).await;

    let url = format!("ws://{}/xmpp-websocket", sfu.http);
    let (mut ws, protocol) = open_xmpp_socket(&url).await;
    assert_eq!(protocol.as_deref(), Some("xmpp"));

    let domain = prosody.domain();
    let open =
        format!("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='{domain}' version='1.0'/>");
    let features = exchange(&mut ws, &open, "</stream:features>").await;
    assert!(
        features.contains("<mechanism>ANONYMOUS</mechanism>"),
        "{features}"
    );
    let auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>";
    let success = exchange(&mut ws, auth, "<success").await;
    assert!(success.contains("<success"), "{success}");
    let features = exchange(&mut ws, &open, "</stream:features>").await;
    assert!(
        features.contains("urn:ietf:params:xml:ns:xmpp-bind"),
        "{features}"
    );
    // Over WebSocket each stanza is a document of its own: it names its
    // namespace (RFC 7395, 3.3.3).
    let bind = "<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>";
    let bound = exchange(&mut ws, bind, "</iq>").await;
    assert!(bound.contains("type='result'"), "{bound}");
    assert!(bound.contains("<bind"), "{bound}");
    let jid = tests::raw_xmpp::between(&bound, "<jid>", "</jid>")
        .unwrap_or_else(|| panic!("no jid in {bound}"));
    assert!(jid.contains(&format!("@{domain}/")), "{jid}");

    assert_eq!(metric(sfu.http, "sfu_xmpp_websocket_connections").await, 1);
    assert_eq!(
        metric(sfu.http, "sfu_xmpp_websocket_connections_total").await,
        1
    );

    // RFC 7395's goodbye: <close/>, then Prosody closes the socket, and the
    // relay passes its close frame on.
    ws.send(Message::text(
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
    ))
    .await
    .unwrap();
    let _ = next_close(&mut ws).await;
    // Reading on sends our close reply, as a browser does at once.
    while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, ws.next()).await {}
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(sfu.http, "sfu_xmpp_websocket_connections").await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay stayed open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sfu.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_prosody_closes_the_socket_with_a_reason() {
    tests::init_logs();
    let prosody = Prosody::start_async(ProsodyOptions::default())
        .await
        .expect("prosody starts");
    let mut config = focus_config(&prosody);
    let nobody = tests::free_port().unwrap();
    config.http.xmpp_websocket = format!("ws://127.0.0.1:{nobody}/xmpp-websocket");
    let sfu = Sfu::start(config).await;
    tests::wait_healthy(sfu.http, WAIT).await;

    let url = format!("ws://{}/xmpp-websocket", sfu.http);
    let started = tokio::time::Instant::now();
    let (mut ws, protocol) = open_xmpp_socket(&url).await;
    assert_eq!(protocol.as_deref(), Some("xmpp"));
    let frame = next_close(&mut ws)
        .await
        .expect("a close frame with a code");
    assert!(started.elapsed() < Duration::from_secs(3), "{started:?}");
    assert_eq!(
        frame.code,
        CloseCode::from(sfu::xmpp_proxy::TRY_AGAIN_LATER),
        "{frame:?}"
    );
    assert_eq!(frame.reason.as_str(), "XMPP server unreachable");

    let health = get(sfu.http, "/health").await;
    assert_eq!(health.status, 200, "{}", health.head);
    assert_eq!(
        metric(sfu.http, "sfu_xmpp_websocket_failures_total").await,
        1
    );
    assert_eq!(metric(sfu.http, "sfu_xmpp_websocket_connections").await, 0);
    sfu.end().await;
}

/// What the stand-in for Prosody saw of one connection.
#[derive(Debug, Default)]
struct Seen {
    uri: String,
    protocol: String,
    close: Option<CloseFrame>,
}

/// A WebSocket server standing in for Prosody: says `hello`, echoes text,
/// and with `?hangup` in the query closes at once with code 4001.
async fn fake_prosody() -> (String, tokio::sync::mpsc::UnboundedReceiver<Seen>) {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut seen = Seen::default();
                // The error type is tungstenite's (an HTTP response).
                #[allow(clippy::result_large_err)]
                let callback = |req: &Request, mut res: Response| {
                    seen.uri = req.uri().to_string();
                    seen.protocol = req
                        .headers()
                        .get("Sec-WebSocket-Protocol")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    res.headers_mut()
                        .insert("Sec-WebSocket-Protocol", "xmpp".parse().unwrap());
                    Ok(res)
                };
                let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
                    .await
                    .unwrap();
                if seen.uri.contains("hangup") {
                    let bye = CloseFrame {
                        code: CloseCode::from(4001),
                        reason: "stream ended".into(),
                    };
                    let _ = ws.send(Message::Close(Some(bye))).await;
                } else {
                    ws.send(Message::text("hello")).await.unwrap();
                }
                while let Some(Ok(message)) = ws.next().await {
                    match message {
                        Message::Text(t) => {
                            let _ = ws.send(Message::text(format!("echo: {t}"))).await;
                        }
                        Message::Close(frame) => seen.close = frame,
                        _ => {}
                    }
                }
                let _ = tx.send(seen);
            });
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_subprotocol_and_close_frames_pass_through() {
    tests::init_logs();
    let (upstream, mut seen) = fake_prosody().await;
    let mut config = offline_config();
    config.http.xmpp_websocket = upstream;
    let sfu = Sfu::start(config).await;
    let url = format!("ws://{}/xmpp-websocket", sfu.http);

    // Text both ways; the browser's close frame reaches the server.
    let (mut ws, _) = open_xmpp_socket(&format!("{url}?token=abc%2Fdef&room=x")).await;
    match tokio::time::timeout(WAIT, ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => assert_eq!(t.as_str(), "hello"),
        other => panic!("no hello: {other:?}"),
    }
    let echoed = exchange(&mut ws, "<presence/>", "echo: <presence/>").await;
    assert_eq!(echoed, "echo: <presence/>");
    let leaving = CloseFrame {
        code: CloseCode::from(4000),
        reason: "leaving".into(),
    };
    ws.send(Message::Close(Some(leaving))).await.unwrap();
    let seen_first = tokio::time::timeout(WAIT, seen.recv())
        .await
        .expect("the server saw the connection end")
        .unwrap();
    assert_eq!(seen_first.uri, "/ws?token=abc%2Fdef&room=x");
    assert_eq!(seen_first.protocol, "xmpp");
    let close = seen_first.close.expect("the browser's close frame");
    assert_eq!(u16::from(close.code), 4000);
    assert_eq!(close.reason.as_str(), "leaving");

    // The server's close frame reaches the browser.
    let (mut ws, _) = open_xmpp_socket(&format!("{url}?hangup")).await;
    let frame = next_close(&mut ws).await.expect("the server's close frame");
    assert_eq!(u16::from(frame.code), 4001);
    assert_eq!(frame.reason.as_str(), "stream ended");

    // Without the xmpp subprotocol there is no XMPP stream (RFC 7395).
    let plain = tokio_tungstenite::connect_async(url.as_str()).await;
    match plain {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 400)
        }
        other => panic!("expected 400: {other:?}"),
    }
    sfu.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_files_are_served_from_web_root() {
    tests::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(root.join("assets/empty")).unwrap();
    let index = b"<!doctype html><title>Meeting</title><script src=/app.js></script>\n";
    let app = b"console.log(\"\xe2\x9c\x93 app\");\n";
    std::fs::write(root.join("index.html"), index).unwrap();
    std::fs::write(root.join("app.js"), app).unwrap();
    std::fs::write(root.join("assets/style.css"), b"body{}").unwrap();
    // Outside the root: must never be served.
    std::fs::write(dir.path().join("secret.txt"), b"SECRET-OUTSIDE-THE-ROOT").unwrap();

    let mut config = offline_config();
    config.http.web_root = root.to_str().unwrap().into();
    let sfu = Sfu::start(config).await;
    let http = sfu.http;

    let js = get(http, "/app.js").await;
    assert_eq!(js.status, 200, "{}", js.head);
    let kind = js.header("content-type").unwrap_or_default();
    assert!(
        kind.starts_with("text/javascript") || kind.starts_with("application/javascript"),
        "{kind}"
    );
    assert_eq!(js.body, app);

    let css = get(http, "/assets/style.css").await;
    assert_eq!(css.status, 200, "{}", css.head);
    assert!(css
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/css"));

    for path in ["/", "/myroom", "/index.html"] {
        let page = get(http, path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.head);
        assert!(
            page.header("content-type")
                .unwrap_or_default()
                .starts_with("text/html"),
            "{path}: {}",
            page.head
        );
        assert_eq!(page.body, index, "{path}");
    }

    // The other routes come first.
    let health = get(http, "/health").await;
    assert_eq!(health.status, 503, "{}", health.head);
    assert_eq!(health.header("content-type"), Some("application/json"));
    assert!(String::from_utf8_lossy(&health.body).contains("\"xmpp\":false"));
    let metrics = get(http, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(String::from_utf8_lossy(&metrics.body).contains("sfu_xmpp_websocket_connections"));

    // Missing files deeper than one segment, and folders: 404, no listing.
    for path in [
        "/no/such.js",
        "/assets/",
        "/assets/empty/",
        "/assets/nothing.css",
    ] {
        let answer = get(http, path).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.head);
        assert!(
            !String::from_utf8_lossy(&answer.body).contains("style.css"),
            "{path}"
        );
    }

    // Nothing escapes the root, however the path is spelled.
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/assets/../../secret.txt",
        "/..%5csecret.txt",
    ] {
        let answer = get(http, path).await;
        assert!(
            !String::from_utf8_lossy(&answer.body).contains("SECRET-OUTSIDE"),
            "{path} escaped: {}",
            answer.head
        );
        assert!(
            answer.status == 404 || answer.status == 400 || answer.body == index,
            "{path}: {}",
            answer.head
        );
    }
    sfu.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_built_page_the_root_is_the_status_page() {
    tests::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut config = offline_config();
    // A folder without index.html is not a built page.
    config.http.web_root = dir.path().to_str().unwrap().into();
    std::fs::write(dir.path().join("app.js"), b"1").unwrap();
    let sfu = Sfu::start(config).await;
    let root = get(sfu.http, "/").await;
    assert_eq!(root.status, 200, "{}", root.head);
    assert!(String::from_utf8_lossy(&root.body).contains("Meetings server"));
    assert_eq!(get(sfu.http, "/app.js").await.status, 404);
    sfu.end().await;
}
