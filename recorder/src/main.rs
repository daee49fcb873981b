//! `recorder`: records and streams meetings, a member of the recorder pool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Records meetings to files (S3 or a local folder) or streams them to RTMP
/// ingests, joining each as a hidden participant.
#[derive(Debug, Parser)]
#[command(name = "recorder", version)]
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
        recorder::Config::apply_env,
        |c| &c.log,
        recorder::run,
    )
    .await
}
