//! Token sign-in on the meeting page, in real browsers: a private Prosody in
//! token mode (mod_auth_jwt, mod_muc_jwt), the real `sfu` in process with
//! `auto_owner = false` serving the page, and five pages of one headless
//! Chromium (tests/web/meeting_pages.mjs) opening `/review?jwt=TOKEN` with
//! tokens minted by `sfu::token` (the code behind `sfu token`):
//!
//! - a moderator's token: joins under the token's name (the lobby does not
//!   ask) and gets the moderator controls;
//! - a guest's token for the same room: joins, sees the moderator by name,
//!   and has no moderator controls;
//! - an expired token, a token signed with another secret, and a token for
//!   another room: refused, each with a visible message that says why.

use std::time::{Duration, SystemTime};

use anyhow::{ensure, Result};
use sfu::token::{sign, Grant, Secret};
use tests::browsers::{Browsers, Outcome, PageSpec};
use tests::meeting::InProcessSfu;
use tests::{Prosody, ProsodyOptions};

const SECRET: &str = "page-token-secret-0123456789abcdefghij";
const ROOM: &str = "review";

fn token(grant: &Grant, issued: SystemTime, secret: &str) -> String {
    sign(
        &grant.claims(issued).unwrap(),
        &Secret::new(secret).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_decide_who_joins_and_who_moderates() -> Result<()> {
    tests::init_logs();
    let prosody = Prosody::start_async(ProsodyOptions::with_jwt(SECRET)).await?;
    let sfu = InProcessSfu::with_page(&prosody, |c| {
        c.focus.auto_owner = false;
    })
    .await?;

    let now = SystemTime::now();
    let moderator = Grant {
        moderator: true,
        ..Grant::new(ROOM, "Maria Moderator")
    };
    let guest = Grant::new(ROOM, "Gustav Guest");
    let tokens = [
        token(&moderator, now, SECRET),
        token(&guest, now, SECRET),
        // Issued two hours ago for one hour.
        token(&guest, now - Duration::from_secs(7200), SECRET),
        token(&guest, now, "another-secret-0123456789abcdefghijkl"),
        token(&Grant::new("elsewhere", "Gustav Guest"), now, SECRET),
    ];
    let pages: Vec<PageSpec> = tokens
        .iter()
        .map(|t| PageSpec {
            url: format!("http://{}/{ROOM}?jwt={t}", sfu.http),
            ..PageSpec::default()
        })
        .collect();
    let (mut browsers, outcomes) = Browsers::start(&pages).await?;
    tracing::info!(?outcomes, "how each page came out of the lobby");

    ensure!(
        outcomes[0] == Outcome::Joined,
        "the moderator's token: {:?}",
        outcomes[0]
    );
    ensure!(
        outcomes[1] == Outcome::Joined,
        "the guest's token: {:?}",
        outcomes[1]
    );
    for (page, why) in [
        (2, "token expired"),
        (3, "bad token signature"),
        (4, "this token is for room elsewhere"),
    ] {
        match &outcomes[page] {
            Outcome::Refused(message) => ensure!(
                message.contains(why),
                "page {page} should say \"{why}\", says \"{message}\""
            ),
            Outcome::Joined => anyhow::bail!("page {page} ({why}) joined"),
        }
    }

    // Only the moderator has the controls; both joined under their tokens'
    // names.
    browsers
        .until("controls and names", Duration::from_secs(20), |h| {
            let m = h.get(&0)?.last()?;
            let g = h.get(&1)?.last()?;
            let own = |s: &tests::browsers::Stats| {
                s.tiles.iter().find(|t| !t.remote).map(|t| t.name.clone())
            };
            let sees = |s: &tests::browsers::Stats, name: &str| {
                s.tiles.iter().any(|t| t.remote && t.name == name)
            };
            (m.moderator_controls
                && !g.moderator_controls
                && own(m)? == "Maria Moderator (you)"
                && own(g)? == "Gustav Guest (you)"
                && sees(m, "Gustav Guest")
                && sees(g, "Maria Moderator"))
            .then_some(())
        })
        .await?;
    // Each refused page keeps showing its reason (read from its own
    // reports, which may come in after the joined pages' ones).
    let refused = browsers
        .until(
            "the refused pages keep their reasons on screen",
            Duration::from_secs(10),
            |h| {
                (2..5)
                    .map(|p| h.get(&p)?.last()?.error.clone())
                    .collect::<Option<Vec<String>>>()
            },
        )
        .await?;
    tracing::info!(?refused, "what the refused pages show");

    browsers.quit();
    sfu.end().await;
    Ok(())
}
