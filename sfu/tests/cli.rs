//! The `sfu` command line: --help, config errors that name the key,
//! --print-config that reads back; `sfu token`.

#[test]
fn command_line() {
    service::cli_check::check(env!("CARGO_BIN_EXE_sfu"));
}

/// `sfu token`: the secret comes from MEET_JWT_SECRET (or --secret), the
/// token carries the given claims, and mistakes are explained.
#[test]
fn token_command() {
    use base64::Engine;
    use std::process::Command;

    let bin = env!("CARGO_BIN_EXE_sfu");
    let secret = "cli-test-secret-0123456789abcdef";
    let run = |args: &[&str], env_secret: Option<&str>| {
        let mut cmd = Command::new(bin);
        cmd.args(args).env_remove("MEET_JWT_SECRET");
        if let Some(s) = env_secret {
            cmd.env("MEET_JWT_SECRET", s);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, help, _) = run(&["token", "--help"], Some(secret));
    assert_eq!(code, Some(0));
    assert!(help.contains("MEET_JWT_SECRET"), "{help}");
    assert!(!help.contains(secret), "--help shows the secret: {help}");

    let args = [
        "token",
        "--room",
        "standup",
        "--name",
        "Ada",
        "--moderator",
        "--ttl",
        "600",
    ];
    let (code, out, err) = run(&args, Some(secret));
    assert_eq!(code, Some(0), "{err}");
    let token = out.trim();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["room"], "standup");
    assert_eq!(claims["moderator"], true);
    assert_eq!(claims["context"]["user"]["name"], "Ada");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        600
    );
    // The secret itself is printed nowhere.
    assert!(!out.contains(secret) && !err.contains(secret));

    let (code, _, err) = run(&["token", "--room", "r", "--name", "n"], None);
    assert_ne!(code, Some(0));
    assert!(err.contains("--secret"), "{err}");

    let (code, _, err) = run(&["token", "--room", "r", "--name", "n"], Some("short"));
    assert_eq!(code, Some(2));
    assert!(err.contains("at least 16"), "{err}");
    assert!(!err.contains("Stack backtrace"), "{err}");

    let (code, _, err) = run(&["token", "--room", "a b", "--name", "n"], Some(secret));
    assert_eq!(code, Some(2));
    assert!(err.contains("invalid room"), "{err}");

    let (code, out, _) = run(
        &["token", "--room", "r", "--name", "n", "--secret", secret],
        None,
    );
    assert_eq!(code, Some(0));
    assert_eq!(out.trim().split('.').count(), 3);
}
