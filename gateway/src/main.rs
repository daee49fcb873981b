//! `gateway`: the SIP gateway, a member of the gateway pool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Lets phone users dial in to meetings and moderators dial out, bridging
/// audio between SIP calls and the room.
#[derive(Debug, Parser)]
#[command(name = "gateway", version)]
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
        gateway::Config::apply_env,
        |c| &c.log,
        gateway::run,
    )
    .await
}
