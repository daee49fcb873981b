//! Per-call CPU of the audio chains, against bare libopus as the floor.
//!
//! `cargo test -p gateway --release --lib media::bench -- --ignored --nocapture`

use std::time::Instant;

use super::call::{PhoneToRoom, RoomToPhone, FRAME_8K};
use super::g711::Law;
use super::opus::{Layout, OpusDecoder, OpusEncoder, MAX_PACKET};
use super::resample::{Downsampler, PhoneRate, Upsampler};
use super::testutil::sine;
use super::FRAME_48K;

const SECONDS: usize = 20;

fn per_frame_us(start: Instant, frames: usize) -> f64 {
    start.elapsed().as_secs_f64() * 1e6 / frames as f64
}

#[test]
#[ignore = "benchmark; run with --release --ignored --nocapture"]
fn per_call_cpu() {
    let frames = SECONDS * 50;
    let tone8 = sine(8000, 440.0, 12000.0, frames * FRAME_8K);
    let tone48 = sine(48000, 440.0, 12000.0, frames * FRAME_48K);
    let mut g711 = vec![0u8; tone8.len()];
    Law::Pcmu.encode(&tone8, &mut g711);

    // Floor: bare libopus encode, then decode, of the same 48 kHz audio.
    let mut enc = OpusEncoder::new(Layout::Mono, 32000).unwrap();
    let mut packets = Vec::with_capacity(frames);
    let mut buf = [0u8; MAX_PACKET];
    let t = Instant::now();
    for f in tone48.chunks_exact(FRAME_48K) {
        let n = enc.encode(f, &mut buf).unwrap();
        packets.push(buf[..n].to_vec());
    }
    let opus_enc = per_frame_us(t, frames);
    let mut dec = OpusDecoder::new(Layout::Mono).unwrap();
    let mut pcm48 = [0i16; FRAME_48K];
    let t = Instant::now();
    for p in &packets {
        dec.decode(p, &mut pcm48).unwrap();
    }
    let opus_dec = per_frame_us(t, frames);

    // Phone → room: G.711 decode + 8→48 kHz + Opus encode.
    let mut up = PhoneToRoom::new(Law::Pcmu, 32000).unwrap();
    let t = Instant::now();
    for f in g711.chunks_exact(FRAME_8K) {
        std::hint::black_box(up.process(f, &mut buf).unwrap());
    }
    let uplink = per_frame_us(t, frames);

    // Room → phone: Opus decode + 48→8 kHz + G.711 encode.
    let mut dec = OpusDecoder::new(Layout::Mono).unwrap();
    let mut down = RoomToPhone::new(Law::Pcmu);
    let mut out = [0u8; FRAME_8K];
    let t = Instant::now();
    for p in &packets {
        dec.decode(p, &mut pcm48).unwrap();
        down.process(&pcm48, &mut out).unwrap();
        std::hint::black_box(&out);
    }
    let downlink = per_frame_us(t, frames);

    // The resamplers alone.
    let mut up8 = Upsampler::new(PhoneRate::Hz8000);
    let mut wide = [0i16; FRAME_48K];
    let t = Instant::now();
    for f in tone8.chunks_exact(FRAME_8K) {
        up8.process(f, &mut wide).unwrap();
        std::hint::black_box(&wide);
    }
    let upsample = per_frame_us(t, frames);
    let mut down8 = Downsampler::new(PhoneRate::Hz8000);
    let mut narrow = [0i16; FRAME_8K];
    let t = Instant::now();
    for f in tone48.chunks_exact(FRAME_48K) {
        down8.process(f, &mut narrow).unwrap();
        std::hint::black_box(&narrow);
    }
    let downsample = per_frame_us(t, frames);

    eprintln!("per 20 ms frame, {SECONDS} s of audio, mono 32 kbit/s Opus:");
    eprintln!("  8 → 48 kHz        {upsample:7.1} µs");
    eprintln!("  48 → 8 kHz        {downsample:7.1} µs");
    eprintln!("  bare opus encode  {opus_enc:7.1} µs");
    eprintln!(
        "  phone → room      {uplink:7.1} µs  ({:.2}× bare encode)",
        uplink / opus_enc
    );
    eprintln!("  bare opus decode  {opus_dec:7.1} µs");
    eprintln!(
        "  room → phone      {downlink:7.1} µs  ({:.2}× bare decode)",
        downlink / opus_dec
    );
    eprintln!(
        "  both directions   {:7.1} µs vs bare {:7.1} µs ({:.2}×); {:.2}% of one core per call",
        uplink + downlink,
        opus_enc + opus_dec,
        (uplink + downlink) / (opus_enc + opus_dec),
        (uplink + downlink) / 20_000.0 * 100.0
    );
}
