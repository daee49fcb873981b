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
    service::exit_code(
        async {
            let config = service::prepare(
                args.config.as_deref(),
                args.print_config,
                sfu::Config::apply_env,
                |c: &sfu::Config| &c.log,
            )?;
            match config {
                Some(config) => sfu::run(config, service::shutdown_signal()).await,
                None => Ok(()),
            }
        }
        .await,
    )
}
