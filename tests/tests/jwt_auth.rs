//! Token sign-in (HS256 JWT) against a real Prosody in token mode: bad
//! tokens are refused at login with their reason (mod_auth_jwt), over TCP
//! and WebSocket; a token keeps its holder to its room and
//! `moderator: true` makes owners (mod_muc_jwt); service accounts are
//! untouched; the real focus with `auto_owner = false` takes its moderators
//! from those affiliations; neither tokens nor the secret reach the log.
//! Tokens are minted with `sfu::token`, the code behind `sfu token`.

use std::time::{Duration, SystemTime};

use sfu::token::{sign, Grant, Secret};
use tests::{JwtOptions, Prosody, ProsodyOptions, RawXmpp};
use xmpp_session::Security;

const WAIT: Duration = Duration::from_secs(10);
const SECRET: &str = "jwt-test-secret-0123456789abcdefghij";

async fn start(opts: ProsodyOptions) -> Prosody {
    tests::init_logs();
    Prosody::start_async(opts).await.expect("prosody starts")
}

fn secret() -> Secret {
    Secret::new(SECRET).unwrap()
}

/// A token for `grant`, issued now with the test secret.
fn token(grant: Grant) -> String {
    sign(&grant.claims(SystemTime::now()).unwrap(), &secret())
}

/// An HS256 token over any JSON payload, for claims `sfu::token` would
/// never produce (no `exp`, wrong types, `aud` as an array).
fn sign_json(payload: serde_json::Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn moderator(room: &str, name: &str) -> Grant {
    Grant {
        moderator: true,
        ..Grant::new(room, name)
    }
}

/// Signs in on the participants' domain with `token` as the SASL PLAIN
/// password (the user name is the client's choice and is ignored).
async fn login(prosody: &Prosody, token: &str) -> anyhow::Result<RawXmpp> {
    RawXmpp::login_plain(prosody.c2s_addr(), prosody.domain(), "whoever", token).await
}

/// Sends a MUC join and returns the presence that answers it for `to`:
/// an error, or our own presence (status 110).
async fn join(client: &mut RawXmpp, to: &str) -> String {
    client
        .send(&format!(
            "<presence to='{to}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await
        .unwrap();
    loop {
        let presence = client.read_until("</presence>", WAIT).await.unwrap();
        if presence.contains(&format!("from='{to}'"))
            && (presence.contains("type='error'") || presence.contains("code='110'"))
        {
            return presence;
        }
    }
}

/// Reads until the IQ with `id` and returns it (self-closing or not).
async fn read_iq(client: &mut RawXmpp, id: &str) -> String {
    let before = client
        .read_until(&format!("id='{id}'"), WAIT)
        .await
        .unwrap();
    let mut iq = before[before.rfind("<iq").expect("an <iq> start tag")..].to_owned();
    let tag_end = client.read_until(">", WAIT).await.unwrap();
    iq += &tag_end;
    if !tag_end.ends_with("/>") {
        iq += &client.read_until("</iq>", WAIT).await.unwrap();
    }
    iq
}

/// A service account on auth.DOMAIN, logged in.
async fn service(prosody: &Prosody, name: &str) -> RawXmpp {
    let account = prosody.register_service(name).unwrap();
    prosody.login(&account).await.unwrap()
}

fn assert_refused_at_login(result: anyhow::Result<RawXmpp>, text: &str) {
    let err = result.expect_err(text).to_string();
    assert!(err.contains("<not-authorized/>"), "{text}: {err}");
    assert!(
        err.contains(&format!("<text>{text}</text>")),
        "{text}: {err}"
    );
}

fn assert_forbidden(presence: &str, text: &str) {
    assert!(presence.contains("type='error'"), "{presence}");
    assert!(
        presence.contains("<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
        "{presence}"
    );
    assert!(presence.contains("type='auth'"), "{presence}");
    assert!(presence.contains(&format!(">{text}</text>")), "{presence}");
}

fn assert_log_keeps_secrets(prosody: &Prosody, tokens: &[&str]) {
    let log = std::fs::read_to_string(prosody.log_path()).unwrap();
    assert!(!log.contains(SECRET), "the secret is in Prosody's log");
    for t in tokens {
        // Neither the signed part nor the signature belongs in a log.
        let (signed, signature) = t.rsplit_once('.').unwrap();
        assert!(!log.contains(signed), "a token is in Prosody's log");
        assert!(!log.contains(signature), "a signature is in Prosody's log");
    }
}

#[tokio::test]
async fn a_moderator_token_makes_its_holder_owner_of_its_room() {
    let prosody = start(ProsodyOptions::with_jwt(SECRET)).await;
    let room = format!("alpha@{}", prosody.conference_domain());

    // The domain offers PLAIN (the token) and no anonymous login.
    let (probe, features) = RawXmpp::connect(prosody.c2s_addr(), prosody.domain())
        .await
        .unwrap();
    assert!(
        features.contains("<mechanism>PLAIN</mechanism>"),
        "{features}"
    );
    assert!(!features.contains("ANONYMOUS"), "{features}");
    probe.close().await.unwrap();

    // The focus creates the room first, as in the normal flow.
    let mut focus = service(&prosody, "focus").await;
    let joined = join(&mut focus, &format!("{room}/focus")).await;
    assert!(joined.contains("code='201'"), "{joined}");

    let ada_token = token(moderator("alpha", "Ada"));
    let mut ada = login(&prosody, &ada_token).await.unwrap();
    // A fresh random JID, whatever user name the client sent.
    let ada_jid = ada.jid().unwrap().to_owned();
    let (ada_bare, _) = ada_jid.split_once('/').unwrap();
    let (ada_node, ada_host) = ada_bare.split_once('@').unwrap();
    assert_eq!(ada_host, prosody.domain());
    assert_ne!(ada_node, "whoever");

    let own = join(&mut ada, &format!("{room}/ada")).await;
    assert!(!own.contains("type='error'"), "{own}");
    assert!(
        own.contains("affiliation='owner'") && own.contains("role='moderator'"),
        "{own}"
    );
    // Everyone else sees it too, from the first presence on.
    let before = focus
        .read_until(&format!("from='{room}/ada'"), WAIT)
        .await
        .unwrap();
    let seen = before[before.rfind("<presence").unwrap()..].to_owned()
        + &focus.read_until("</presence>", WAIT).await.unwrap();
    assert!(seen.contains("affiliation='owner'"), "{seen}");

    // Someone with a plain token who sends the same user name gets another
    // JID, so Ada's ownership does not reach him.
    let mut bob = login(&prosody, &token(Grant::new("alpha", "Bob")))
        .await
        .unwrap();
    assert!(!bob.jid().unwrap().starts_with(ada_bare), "{:?}", bob.jid());
    let own = join(&mut bob, &format!("{room}/bob")).await;
    assert!(!own.contains("affiliation='owner'"), "{own}");

    // A moderator token also makes its holder owner of a room it creates.
    let mut carol = login(&prosody, &token(moderator("fresh", "Carol")))
        .await
        .unwrap();
    let own = join(
        &mut carol,
        &format!("fresh@{}/carol", prosody.conference_domain()),
    )
    .await;
    assert!(
        own.contains("code='201'") && own.contains("affiliation='owner'"),
        "{own}"
    );

    assert_log_keeps_secrets(&prosody, &[&ada_token]);
}

#[tokio::test]
async fn a_token_without_moderator_joins_as_a_plain_participant() {
    let prosody = start(ProsodyOptions::with_jwt(SECRET)).await;
    let conference = prosody.conference_domain();

    // First in a new room: XEP-0045 would make the creator owner; a token
    // without `moderator: true` must not.
    let mut dan = login(&prosody, &token(Grant::new("beta", "Dan")))
        .await
        .unwrap();
    let own = join(&mut dan, &format!("beta@{conference}/dan")).await;
    assert!(own.contains("code='201'"), "room not created: {own}");
    assert!(
        own.contains("affiliation='none'") && own.contains("role='participant'"),
        "{own}"
    );
    // Not owner for real either: the owner configuration form is refused.
    dan.send(&format!(
        "<iq type='get' id='cfg1' to='beta@{conference}'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"
    ))
    .await
    .unwrap();
    let form = read_iq(&mut dan, "cfg1").await;
    assert!(form.contains("type='error'"), "{form}");

    // In a room the focus made: none as well.
    let mut focus = service(&prosody, "focus").await;
    join(&mut focus, &format!("gamma@{conference}/focus")).await;
    let mut erin = login(&prosody, &token(Grant::new("gamma", "Erin")))
        .await
        .unwrap();
    let own = join(&mut erin, &format!("gamma@{conference}/erin")).await;
    assert!(
        own.contains("affiliation='none'") && !own.contains("affiliation='owner'"),
        "{own}"
    );
}

#[tokio::test]
async fn bad_tokens_are_refused_at_login_with_the_reason() {
    let prosody = start(ProsodyOptions {
        jwt: Some(JwtOptions {
            secret: SECRET.into(),
            issuer: "meet-issuer".into(),
            audience: "meet.test".into(),
        }),
        ..Default::default()
    })
    .await;
    let good = |g: Grant| Grant {
        issuer: Some("meet-issuer".into()),
        audience: Some("meet.test".into()),
        ..g
    };
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let signed_at = |g: Grant, at: SystemTime| sign(&g.claims(at).unwrap(), &secret());

    // A good token gets in (issuer and audience as configured).
    let valid = token(good(Grant::new("alpha", "Ada")));
    login(&prosody, &valid)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();

    // `aud` may also be an array that contains the audience.
    let exp = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 600;
    let aud_array = sign_json(serde_json::json!({
        "iss": "meet-issuer", "aud": ["other", "meet.test"], "exp": exp, "room": "alpha"
    }));
    login(&prosody, &aud_array)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();

    let other_key = Secret::new("another-secret-0123456789abcdef").unwrap();
    let no_room = {
        let mut claims = good(Grant::new("alpha", "Ada")).claims(now).unwrap();
        claims.room.clear();
        sign(&claims, &secret())
    };
    let (signed, _) = valid.rsplit_once('.').unwrap();
    let payload = signed.split('.').nth(1).unwrap();
    // {"alg":"none","typ":"JWT"}, no signature.
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    // {"alg":"HS512","typ":"JWT"}.
    let alg_hs512 = format!("eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.{payload}.c2ln");
    let tampered = {
        // Same signature, payload for another room.
        let other = token(good(Grant::new("beta", "Ada")));
        let (head, _) = other.rsplit_once('.').unwrap();
        format!("{head}.{}", valid.rsplit_once('.').unwrap().1)
    };
    let cases: Vec<(String, &str)> = vec![
        (
            signed_at(good(Grant::new("alpha", "Ada")), now - 2 * hour),
            "token expired",
        ),
        (
            signed_at(good(Grant::new("alpha", "Ada")), now + hour),
            "token not valid yet",
        ),
        (
            sign(
                &good(Grant::new("alpha", "Ada")).claims(now).unwrap(),
                &other_key,
            ),
            "bad token signature",
        ),
        (tampered, "bad token signature"),
        (
            token(Grant {
                issuer: Some("someone-else".into()),
                ..good(Grant::new("alpha", "Ada"))
            }),
            "token for another issuer",
        ),
        (
            token(Grant {
                issuer: None,
                ..good(Grant::new("alpha", "Ada"))
            }),
            "token for another issuer",
        ),
        (
            token(Grant {
                audience: Some("other.example".into()),
                ..good(Grant::new("alpha", "Ada"))
            }),
            "token for another audience",
        ),
        (no_room, "token names no room"),
        (
            sign_json(serde_json::json!({
                "iss": "meet-issuer", "aud": "meet.test", "room": "alpha"
            })),
            "token has no expiry",
        ),
        (
            sign_json(serde_json::json!({
                "iss": "meet-issuer", "aud": "meet.test", "exp": "later", "room": "alpha"
            })),
            "malformed token",
        ),
        (
            sign_json(serde_json::json!({
                "iss": "meet-issuer", "aud": "meet.test", "exp": exp, "room": 7
            })),
            "malformed token",
        ),
        (
            sign_json(serde_json::json!({
                "iss": "meet-issuer", "aud": ["other"], "exp": exp, "room": "alpha"
            })),
            "token for another audience",
        ),
        (alg_none, "malformed token"),
        (alg_hs512, "unsupported token algorithm"),
        ("not-a-token".into(), "malformed token"),
    ];
    for (t, reason) in &cases {
        assert_refused_at_login(login(&prosody, t).await, reason);
    }

    let mut all: Vec<&str> = cases.iter().map(|(t, _)| t.as_str()).collect();
    all.push(&valid);
    all.push(&aud_array);
    all.retain(|t| t.contains('.') && !t.ends_with('.'));
    assert_log_keeps_secrets(&prosody, &all);
}

#[tokio::test]
async fn a_token_for_one_room_cannot_join_another() {
    let prosody = start(ProsodyOptions::with_jwt(SECRET)).await;
    let conference = prosody.conference_domain();
    let mut focus = service(&prosody, "focus").await;
    join(&mut focus, &format!("beta@{conference}/focus")).await;

    let mut ada = login(&prosody, &token(moderator("alpha", "Ada")))
        .await
        .unwrap();
    // An existing room...
    let refused = join(&mut ada, &format!("beta@{conference}/ada")).await;
    assert_forbidden(&refused, "this token is for room alpha");
    // ...and a new one, which is then not created.
    let refused = join(&mut ada, &format!("delta@{conference}/ada")).await;
    assert_forbidden(&refused, "this token is for room alpha");
    let created = join(&mut focus, &format!("delta@{conference}/focus")).await;
    assert!(created.contains("code='201'"), "{created}");
    // The refused moderator did not become owner of beta on the way.
    focus
        .send(&format!(
            "<iq type='get' id='owners' to='beta@{conference}'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='owner'/></query></iq>"
        ))
        .await
        .unwrap();
    let owners = read_iq(&mut focus, "owners").await;
    assert!(owners.contains("type='result'"), "{owners}");
    assert!(
        !owners.contains(ada.jid().unwrap().split('/').next().unwrap()),
        "{owners}"
    );

    // Its own room is fine, whatever the case of the claim.
    let mut upper = login(&prosody, &token(Grant::new("Alpha", "Upper")))
        .await
        .unwrap();
    let own = join(&mut upper, &format!("alpha@{conference}/upper")).await;
    assert!(
        own.contains("code='110'") && !own.contains("type='error'"),
        "{own}"
    );

    // `*` opens every room.
    let mut any = login(&prosody, &token(Grant::new("*", "Any")))
        .await
        .unwrap();
    for room in ["alpha", "beta"] {
        let own = join(&mut any, &format!("{room}@{conference}/any")).await;
        assert!(!own.contains("type='error'"), "{room}: {own}");
    }
}

#[tokio::test]
async fn service_accounts_still_sign_in_with_passwords() {
    let prosody = start(ProsodyOptions::with_jwt(SECRET)).await;
    let conference = prosody.conference_domain();
    let focus = prosody.register_service("focus").unwrap();
    let recorder = prosody.register_recorder("rec1").unwrap();

    // Passwords, not tokens, on the service hosts.
    let wrong = RawXmpp::login_plain(prosody.c2s_addr(), &focus.host, "focus", "wrong").await;
    assert!(wrong.unwrap_err().to_string().contains("not-authorized"));
    let as_token = RawXmpp::login_plain(
        prosody.c2s_addr(),
        &focus.host,
        "focus",
        &token(moderator("*", "x")),
    )
    .await;
    assert!(as_token.is_err(), "a token is no password");

    let mut f = prosody.login(&focus).await.unwrap();
    assert!(f.jid().unwrap().starts_with("focus@auth."));
    let own = join(&mut f, &format!("omega@{conference}/focus")).await;
    assert!(own.contains("affiliation='owner'"), "{own}");

    // The recorder's identity joins any room, untouched by token rules.
    let mut r = prosody.login(&recorder).await.unwrap();
    let own = join(&mut r, &format!("omega@{conference}/rec")).await;
    assert!(
        own.contains("code='110'") && !own.contains("type='error'"),
        "{own}"
    );

    // The breweries stay closed to token users, even with `*`.
    let mut guest = login(&prosody, &token(moderator("*", "Guest")))
        .await
        .unwrap();
    let refused = join(
        &mut guest,
        &format!("recorders@{}/guest", prosody.internal_domain()),
    )
    .await;
    assert!(refused.contains("<forbidden"), "{refused}");
}

/// The real focus with `auto_owner = false`: the first participant is not
/// elected; a token moderator (owner by affiliation) may mute others, a
/// plain participant may not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_focus_takes_moderators_from_token_affiliations() {
    let prosody = start(ProsodyOptions::with_jwt(SECRET)).await;
    let account = prosody.register_service("focus").unwrap();
    let mut config = sfu::Config::default();
    config.xmpp.server = prosody.c2s_addr().to_string();
    config.xmpp.domain = prosody.domain().into();
    config.xmpp.password = account.password.clone();
    config.xmpp.security = Security::Plaintext;
    config.media.enabled = false;
    config.focus.auto_owner = false;
    config.apply_env();
    service::Validate::validate(&config).expect("valid config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sfu::run_with_listener(config, listener, async move {
        let _ = stopped.await;
    }));
    tests::wait_healthy(http, Duration::from_secs(10)).await;

    let room = format!("alpha@{}", prosody.conference_domain());
    let focus_jid = format!("focus@{}/focus", prosody.auth_domain());
    let conference = format!(
        "<iq type='set' id='conf1' to='{focus_jid}'><conference xmlns='http://jitsi.org/protocol/focus' room='{room}'/></iq>"
    );

    // A plain participant arrives first and asks for the conference.
    let mut guest = login(&prosody, &token(Grant::new("alpha", "Guest")))
        .await
        .unwrap();
    guest.send(&conference).await.unwrap();
    let ready = read_iq(&mut guest, "conf1").await;
    assert!(
        ready.contains("type='result'") && ready.contains("ready='true'"),
        "{ready}"
    );
    let own = join(&mut guest, &format!("{room}/guest")).await;
    assert!(own.contains("affiliation='none'"), "{own}");

    // The moderator joins: owner by its token.
    let mut ada = login(&prosody, &token(moderator("alpha", "Ada")))
        .await
        .unwrap();
    let own = join(&mut ada, &format!("{room}/ada")).await;
    assert!(own.contains("affiliation='owner'"), "{own}");

    let mute = |id: &str, target: &str| {
        format!(
            "<iq type='set' id='{id}' to='{room}/focus'><mute xmlns='http://jitsi.org/jitmeet/audio' jid='{room}/{target}'>true</mute></iq>"
        )
    };
    // The guest may not mute the moderator...
    guest.send(&mute("m1", "ada")).await.unwrap();
    let answer = read_iq(&mut guest, "m1").await;
    assert!(
        answer.contains("type='error'") && answer.contains("<forbidden"),
        "{answer}"
    );
    // ...the moderator may mute the guest.
    ada.send(&mute("m2", "guest")).await.unwrap();
    let answer = read_iq(&mut ada, "m2").await;
    assert!(answer.contains("type='result'"), "{answer}");

    // And the focus never made the first participant owner: a rejoin
    // still shows affiliation none.
    guest
        .send(&format!("<presence to='{room}/guest' type='unavailable'/>"))
        .await
        .unwrap();
    guest.read_until("type='unavailable'", WAIT).await.unwrap();
    let own = join(&mut guest, &format!("{room}/guest2")).await;
    assert!(own.contains("affiliation='none'"), "{own}");

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// Opens an XMPP-over-WebSocket stream (RFC 7395) and authenticates with
/// SASL PLAIN, `token` as the password (what strophe.js sends for
/// `connect(jid, token)`); returns everything the server sent up to the
/// SASL outcome.
async fn websocket_login(prosody: &Prosody, token: &str) -> String {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let mut request = prosody.websocket_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "xmpp".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let open = format!(
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='{}' version='1.0'/>",
        prosody.domain()
    );
    let creds = tests::raw_xmpp::base64(format!("\0browser\0{token}").as_bytes());
    let auth =
        format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>");
    let mut received = String::new();
    for (send, until) in [
        (open, &["</stream:features>"][..]),
        (auth, &["<success", "</failure>"]),
    ] {
        ws.send(Message::text(send)).await.unwrap();
        while !until.iter().any(|u| received.contains(u)) {
            match tokio::time::timeout(WAIT, ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => received.push_str(&text),
                other => panic!("no {until:?} in {received}: {other:?}"),
            }
        }
    }
    let _ = ws.close(None).await;
    received
}

/// The browser's way in: the same token rules over WebSocket.
#[tokio::test]
async fn a_token_signs_in_over_websocket() {
    let prosody = start(ProsodyOptions::with_jwt(SECRET)).await;

    let ok = websocket_login(&prosody, &token(moderator("alpha", "Ada"))).await;
    assert!(ok.contains("<mechanism>PLAIN</mechanism>"), "{ok}");
    assert!(!ok.contains("ANONYMOUS"), "{ok}");
    assert!(ok.contains("<success"), "{ok}");

    let expired = Grant::new("alpha", "Ada")
        .claims(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    let refused = websocket_login(&prosody, &sign(&expired, &secret())).await;
    assert!(
        refused.contains("<not-authorized/>") && refused.contains("<text>token expired</text>"),
        "{refused}"
    );
}
