//! `sfu`: the conference focus and media plane; `sfu token` mints sign-in
//! tokens for token mode.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand};
use sfu::token::{Grant, Secret};

/// The conference service: joins each meeting room as its owner, runs the
/// Jingle session with every participant and forwards their media.
#[derive(Debug, Parser)]
#[command(name = "sfu", version, args_conflicts_with_subcommands = true)]
struct Args {
    /// Config file (TOML). Without it, the defaults are used.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective config (defaults, file, environment) and exit.
    #[arg(long)]
    print_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a sign-in token (HS256 JWT) for Prosody's token mode.
    ///
    /// The token lets its holder join one room (or every room with
    /// `--room '*'`) on the participants' domain; `--moderator` makes the
    /// holder an owner of the room. The secret is the `jwt_secret` Prosody
    /// is configured with. Pass it in the environment variable
    /// MEET_JWT_SECRET rather than with --secret: a command-line argument is
    /// visible to other users in the process list and stays in the shell
    /// history.
    Token(TokenArgs),
}

/// `sfu token`'s arguments.
#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The room's name (the local part of room@conference.DOMAIN), or `*`.
    #[arg(long)]
    room: String,
    /// The user's display name (context.user.name).
    #[arg(long)]
    name: String,
    /// Make the user an owner (moderator) of the room.
    #[arg(long)]
    moderator: bool,
    /// Seconds the token stays valid.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    ttl: u64,
    /// `iss` claim; must match Prosody's jwt_issuer when that is set.
    #[arg(long)]
    issuer: Option<String>,
    /// `aud` claim; must match Prosody's jwt_audience when that is set.
    #[arg(long)]
    audience: Option<String>,
    /// The shared secret (prefer the environment variable).
    #[arg(long, env = "MEET_JWT_SECRET", hide_env_values = true)]
    secret: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Token(t)) = args.command {
        return token(t);
    }
    let config = args.config.as_deref();
    service::main(
        config,
        args.print_config,
        sfu::Config::apply_env,
        |c| &c.log,
        sfu::run,
    )
    .await
}

fn token(args: TokenArgs) -> ExitCode {
    let grant = Grant {
        room: args.room,
        name: args.name,
        moderator: args.moderator,
        ttl: Duration::from_secs(args.ttl),
        issuer: args.issuer,
        audience: args.audience,
    };
    let made = Secret::new(args.secret).and_then(|secret| {
        let claims = grant.claims(SystemTime::now())?;
        Ok(sfu::token::sign(&claims, &secret))
    });
    match made {
        Ok(token) => {
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{token}") {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sfu token: writing the token: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("sfu token: {e}");
            ExitCode::from(2)
        }
    }
}
