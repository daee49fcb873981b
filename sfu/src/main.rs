//! `sfu`: the conference focus and media plane.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The conference service: joins each meeting room as its owner, runs the
/// Jingle session with every participant and forwards their media.
#[derive(Debug, Parser)]
#[command(name = "sfu", version)]
struct Args {
    /// Config file (TOML). Without it, the defaults are used.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective config (defaults, file, environment) and exit.
    #[arg(long)]
    print_config: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
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
