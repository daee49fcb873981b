//! The `sfu` binary (a separate process, so its memory is its own) does not
//! keep what a meeting used: three webrtcbin participants meet, exchange
//! media, leave; three times over. The resident size after the later rooms
//! must not grow past the level after the first one (which warms up the
//! allocator, TLS and codec tables).

use std::io::Write;
use std::time::Duration;

use jid::{BareJid, Jid};
use tests::meeting::{has_video, until, xmpp, PEOPLE};
use tests::webrtc::{MediaConfig, WebrtcParticipant};
use tests::{Prosody, ProsodyOptions};

/// The sfu binary built beside this test (target/<profile>/sfu).
fn sfu_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join("sfu");
    assert!(
        bin.is_file(),
        "{} is missing: build the workspace binaries first (scripts/test does)",
        bin.display()
    );
    bin
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn one_room(prosody: &Prosody, round: usize) {
    let focus = Jid::new(&format!("focus@auth.{}/focus", prosody.domain())).unwrap();
    let room = BareJid::new(&format!("round{round}@{}", prosody.conference_domain())).unwrap();
    let mut people = Vec::new();
    for (nick, pattern, width, height, tone_hz) in PEOPLE {
        let media = MediaConfig {
            video_pattern: pattern,
            width,
            height,
            tone_hz,
        };
        people.push(
            WebrtcParticipant::join(xmpp(prosody), focus.clone(), room.clone(), nick, media)
                .await
                .unwrap(),
        );
    }
    for (i, p) in people.iter().enumerate() {
        let other = PEOPLE[(i + 1) % 3];
        until(p, "media flows", 30, |s| has_video(s, other.2, other.3)).await;
    }
    for p in people {
        p.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meetings_leave_no_memory_behind() {
    tests::init_logs();
    tests::webrtc::init().unwrap();
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let focus = prosody.register_service("focus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let http = tests::free_port().unwrap();
    let config = dir.path().join("sfu.toml");
    let mut f = std::fs::File::create(&config).unwrap();
    writeln!(
        f,
        "[xmpp]\nserver = \"{}\"\ndomain = \"{}\"\nsecurity = \"plaintext\"\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n[media]\nbind = \"127.0.0.1:0\"\n",
        prosody.c2s_addr(),
        prosody.domain()
    )
    .unwrap();
    let mut child = tokio::process::Command::new(sfu_binary())
        .arg("--config")
        .arg(&config)
        .env("SFU_XMPP_PASSWORD", &focus.password)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    tests::wait_healthy(
        format!("127.0.0.1:{http}").parse().unwrap(),
        Duration::from_secs(15),
    )
    .await;
    let idle = rss_kib(pid);
    let mut after = Vec::new();
    for round in 0..3 {
        one_room(&prosody, round).await;
        // The focus leaves the room when the last participant does.
        tokio::time::sleep(Duration::from_secs(2)).await;
        after.push(rss_kib(pid));
    }
    eprintln!("sfu RSS: idle {idle} KiB, after each room {after:?} KiB");
    let growth = after[2].saturating_sub(after[0]);
    assert!(
        growth < 2048,
        "the sfu grew by {growth} KiB between the first and third room: {after:?}"
    );
    child.kill().await.unwrap();
}
