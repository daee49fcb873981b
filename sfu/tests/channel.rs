//! The bridge channel over real WebSockets: hello, relay between endpoints,
//! constraints delivered to the media plane, refusal of wrong tokens, and
//! malformed frames that do not end the socket.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use proto::bridge_channel::BridgeMessage;
use sfu::channel::Channels;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_message(ws: &mut Ws) -> BridgeMessage {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time");
        if let Some(Ok(Message::Text(t))) = frame {
            return BridgeMessage::parse(&t).expect("the bridge sends valid messages");
        }
    }
}

#[tokio::test]
async fn bridge_channel_relays_and_survives_garbage() {
    let channels = Channels::new("sfu-1");
    let mut inbound = channels.take_inbound().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = channels.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    channels.expect("room@conference.meet.test", "aaaa", "s3cret");
    channels.expect("room@conference.meet.test", "bbbb", "other");

    let url = |ep: &str, pwd: &str| {
        format!(
            "ws://{addr}{}",
            channels.path("room@conference.meet.test", ep, pwd)
        )
    };
    // A wrong token or an unknown endpoint is refused.
    assert!(tokio_tungstenite::connect_async(url("aaaa", "wrong"))
        .await
        .is_err());
    assert!(tokio_tungstenite::connect_async(url("cccc", "s3cret"))
        .await
        .is_err());

    // A message sent before the socket opens waits for it (the latest of
    // each class) and arrives after the hello.
    let early = BridgeMessage::parse(
        r#"{"colibriClass":"DominantSpeakerEndpointChangeEvent","dominantSpeakerEndpoint":"bbbb"}"#,
    )
    .unwrap();
    assert!(!channels.send("aaaa", &early), "not delivered yet");
    let (mut a, _) = tokio_tungstenite::connect_async(url("aaaa", "s3cret"))
        .await
        .expect("a connects");
    let (mut b, _) = tokio_tungstenite::connect_async(url("bbbb", "other"))
        .await
        .expect("b connects");
    assert!(matches!(
        next_message(&mut a).await,
        BridgeMessage::ServerHello(_)
    ));
    assert_eq!(
        next_message(&mut a).await,
        early,
        "the early message arrives on open"
    );
    assert!(matches!(
        next_message(&mut b).await,
        BridgeMessage::ServerHello(_)
    ));

    // Garbage, then a broadcast EndpointMessage from a: b gets it with `from`.
    for junk in [
        "not json",
        "{\"colibriClass\":\"Nope\"}",
        "[1,2]",
        "{\"colibriClass\":\"ReceiverVideoConstraints\",\"lastN\":\"x\"}",
    ] {
        a.send(Message::Text(junk.into())).await.unwrap();
    }
    let msg = r#"{"colibriClass":"EndpointMessage","to":"","msgPayload":{"type":"hi"}}"#;
    a.send(Message::Text(msg.into())).await.unwrap();
    match next_message(&mut b).await {
        BridgeMessage::EndpointMessage(m) => assert_eq!(m.from.as_deref(), Some("aaaa")),
        other => panic!("{other:?}"),
    }
    // Constraints go to the media plane.
    let c = r#"{"colibriClass":"ReceiverVideoConstraints","lastN":3,"defaultConstraints":{"maxHeight":180}}"#;
    b.send(Message::Text(c.into())).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), inbound.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.endpoint, "bbbb");
    assert!(matches!(
        got.message,
        BridgeMessage::ReceiverVideoConstraints(_)
    ));
    // The bridge can address one endpoint.
    let speaker = BridgeMessage::parse(
        r#"{"colibriClass":"DominantSpeakerEndpointChangeEvent","dominantSpeakerEndpoint":"aaaa"}"#,
    )
    .unwrap();
    assert!(channels.send("bbbb", &speaker));
    assert!(matches!(
        next_message(&mut b).await,
        BridgeMessage::DominantSpeakerEndpointChangeEvent(_)
    ));
}
