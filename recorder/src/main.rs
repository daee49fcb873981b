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
    service::exit_code(
        async {
            let config = service::prepare(
                args.config.as_deref(),
                args.print_config,
                recorder::Config::apply_env,
                |c: &recorder::Config| &c.log,
            )?;
            match config {
                Some(config) => recorder::run(config, service::shutdown_signal()).await,
                None => Ok(()),
            }
        }
        .await,
    )
}
