//! The media plane alone, in process, with its bridge channel served on
//! loopback (for tests that bring their own participants).

use std::net::SocketAddr;

use anyhow::Result;
use sfu::channel::Channels;
use sfu::plane::{self, PlaneConfig, PlaneEvents, PlaneHandle};

/// Starts the plane on 127.0.0.1 with `audio_slots`/`video_slots` and its
/// bridge channel on a free HTTP port (returned).
pub async fn start_with_channels(
    audio_slots: usize,
    video_slots: usize,
) -> Result<(PlaneHandle, PlaneEvents, Channels, SocketAddr)> {
    let channels = Channels::new("sfu-test");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http = listener.local_addr()?;
    let app = channels.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (plane, events, _task) = plane::start_with_channels(
        PlaneConfig {
            bind: "127.0.0.1:0".parse()?,
            audio_slots,
            video_slots,
            ..PlaneConfig::default()
        },
        channels.clone(),
    )
    .await?;
    Ok((plane, events, channels, http))
}
