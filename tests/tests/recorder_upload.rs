//! Recording storage against real servers: `recorder::upload` into moto
//! (S3 multipart) and a local folder, its failures (unreachable endpoint,
//! missing bucket, abandoned recording), and the RTMP ingest harness
//! (nginx-rtmp recording a GStreamer publish).

use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use bytes::Bytes;
use recorder::upload::{
    metadata_key, Destination, RecordingNames, Storage, StorageKind, UploadError, UploadOptions,
    UploadSender, UploadSummary,
};
use tests::moto::Moto;
use tests::rtmp::Rtmp;

const MIB: usize = 1024 * 1024;

/// Deterministic, non-repeating test bytes (xorshift).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Feeds `data` in uneven chunks (1 B to ~700 KiB) from a plain thread, as
/// an appsink callback would, then finishes.
async fn feed(tx: UploadSender, data: Vec<u8>) {
    tokio::task::spawn_blocking(move || {
        let data = Bytes::from(data);
        let sizes = [1, 4096, 700_001, 33, 123_457, 65_536, 512_000, 7];
        let (mut at, mut i) = (0, 0);
        while at < data.len() {
            let end = (at + sizes[i % sizes.len()]).min(data.len());
            tx.send(data.slice(at..end)).expect("send");
            at = end;
            i += 1;
        }
        tx.finish();
    })
    .await
    .expect("feeder thread");
}

fn s3_destination(endpoint: &str, bucket: &str) -> Destination {
    Destination {
        kind: StorageKind::S3,
        endpoint: Some(endpoint.to_owned()),
        region: Moto::REGION.into(),
        bucket: bucket.into(),
        path_style: true,
        ..Destination::default()
    }
}

fn moto_options() -> UploadOptions {
    UploadOptions {
        credentials: Some(Moto::credentials()),
        ..UploadOptions::default()
    }
}

fn names(session: &str) -> RecordingNames {
    RecordingNames::new("standup@conference.meet.test", session, SystemTime::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_multipart_upload_stores_every_byte_and_the_metadata() -> Result<()> {
    tests::init_logs();
    let moto = Moto::start_async().await?;
    moto.create_bucket("recordings").await?;
    let storage = Storage::connect_with(
        &s3_destination(moto.endpoint(), "recordings"),
        moto_options(),
    )
    .await?;
    storage.check().await?;

    let data = pattern(12 * MIB + 345_678, 1);
    let started = Instant::now();
    let (tx, task) = storage.start(&names("s3-a1")).await?;
    feed(tx, data.clone()).await;
    let summary: UploadSummary = task.await??;
    let took = started.elapsed();
    eprintln!(
        "s3 upload: {} bytes in {} parts, {took:?}, key {}",
        summary.bytes, summary.parts, summary.key
    );
    assert_eq!(summary.bytes, data.len() as u64);
    assert!(summary.parts >= 3, "{summary:?}");
    assert!(summary.key.starts_with("standup@conference.meet.test/"));
    assert!(summary.key.ends_with("-s3-a1.mp4"), "{}", summary.key);
    assert_eq!(summary.location, format!("s3://recordings/{}", summary.key));

    let stored = moto.get_object("recordings", &summary.key).await?;
    assert_eq!(stored.len(), data.len());
    assert!(stored == data, "stored bytes differ from the sent ones");

    let meta = serde_json::json!({"room": "standup", "participants": ["a", "b"]});
    let meta_key = storage.put_metadata(&summary.key, &meta).await?;
    assert_eq!(meta_key, metadata_key(&summary.key));
    assert!(meta_key.ends_with("-s3-a1.json"), "{meta_key}");
    let read: serde_json::Value =
        serde_json::from_slice(&moto.get_object("recordings", &meta_key).await?)?;
    assert_eq!(read, meta);

    let listed = moto.list("recordings").await?;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[&summary.key], data.len() as u64);
    assert!(moto.pending_uploads("recordings").await?.is_empty());

    let metrics = storage.metrics();
    assert_eq!(metrics.bytes(), data.len() as u64);
    assert_eq!((metrics.completed(), metrics.failures()), (1, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_s3_recording_leaves_nothing_behind() -> Result<()> {
    tests::init_logs();
    let moto = Moto::start_async().await?;
    moto.create_bucket("recordings").await?;
    let storage = Storage::connect_with(
        &s3_destination(moto.endpoint(), "recordings"),
        moto_options(),
    )
    .await?;
    let (tx, task) = storage.start(&names("gone")).await?;
    tokio::task::spawn_blocking(move || {
        // More than one part, so one part is stored before the abort.
        for chunk in pattern(7 * MIB, 2).chunks(MIB) {
            tx.send(Bytes::copy_from_slice(chunk)).expect("send");
        }
        drop(tx);
    })
    .await?;
    let err = task.await?.unwrap_err();
    assert!(matches!(err, UploadError::Abandoned), "{err:?}");
    assert!(moto.pending_uploads("recordings").await?.is_empty());
    assert!(moto.list("recordings").await?.is_empty());
    assert_eq!(storage.metrics().failures(), 0);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_start_quickly() -> Result<()> {
    tests::init_logs();
    // A free port nobody listens on: connections are refused.
    let port = tests::free_port()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let storage =
        Storage::connect_with(&s3_destination(&endpoint, "recordings"), moto_options()).await?;
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(20), storage.start(&names("x")))
        .await
        .expect("start hung for 20 s");
    let took = started.elapsed();
    let err = result.expect_err("start succeeded against a closed port");
    eprintln!("unreachable endpoint: failed in {took:?}: {err}");
    assert!(
        matches!(
            &err,
            UploadError::Unreachable {
                operation: "CreateMultipartUpload",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&endpoint), "{err}");
    assert!(err.is_retryable() && !err.is_destination_fault());
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(storage.metrics().failures(), 1);
    Ok(())
}

#[tokio::test]
async fn a_silent_endpoint_fails_start_within_the_control_timeout() -> Result<()> {
    tests::init_logs();
    // Accepts connections (the kernel does) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let endpoint = format!("http://{}", silent.local_addr()?);
    let storage =
        Storage::connect_with(&s3_destination(&endpoint, "recordings"), moto_options()).await?;
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(20), storage.start(&names("x")))
        .await
        .expect("start hung for 20 s");
    let took = started.elapsed();
    let err = result.expect_err("start succeeded against a silent server");
    eprintln!("silent endpoint: failed in {took:?}: {err}");
    assert!(matches!(&err, UploadError::Unreachable { .. }), "{err:?}");
    let limit = UploadOptions::default().control_timeout;
    assert!(took >= limit - Duration::from_secs(1), "took {took:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    drop(silent);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_named() -> Result<()> {
    tests::init_logs();
    let moto = Moto::start_async().await?;
    let storage =
        Storage::connect_with(&s3_destination(moto.endpoint(), "nope"), moto_options()).await?;
    let err = storage.check().await.unwrap_err();
    assert!(
        matches!(&err, UploadError::NoSuchBucket { bucket, .. } if bucket == "nope"),
        "{err:?}"
    );
    let started = Instant::now();
    let err = storage
        .start(&names("x"))
        .await
        .expect_err("start succeeded without a bucket");
    eprintln!("missing bucket: failed in {:?}: {err}", started.elapsed());
    assert!(
        matches!(&err, UploadError::NoSuchBucket { bucket, .. } if bucket == "nope"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("no such bucket: nope at {}", moto.endpoint())
    );
    assert!(err.is_destination_fault() && !err.is_retryable());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_destination_writes_the_file_and_its_metadata() -> Result<()> {
    tests::init_logs();
    let dir = tempfile::tempdir()?;
    let folder = dir.path().join("recordings");
    let storage = Storage::connect(&Destination::local(&folder)).await?;
    storage.check().await?;
    let data = pattern(3 * MIB + 17, 3);
    let (tx, task) = storage.start(&names("local-1")).await?;
    feed(tx, data.clone()).await;
    let summary = task.await??;
    eprintln!("local: {} bytes in {:?}", summary.bytes, summary.elapsed);
    let path = folder.join(&summary.key);
    assert_eq!(summary.location, path.display().to_string());
    assert_eq!((summary.bytes, summary.parts), (data.len() as u64, 0));
    assert!(std::fs::read(&path)? == data, "file content differs");

    let meta = serde_json::json!({"session": "local-1"});
    let meta_key = storage.put_metadata(&summary.key, &meta).await?;
    let read: serde_json::Value = serde_json::from_slice(&std::fs::read(folder.join(&meta_key))?)?;
    assert_eq!(read, meta);

    // Only the recording and its metadata: no temporary files left.
    let room_dir = path.parent().expect("the key has a folder");
    let mut names: Vec<String> = std::fs::read_dir(room_dir)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].ends_with("-local-1.json") && names[1].ends_with("-local-1.mp4"),
        "{names:?}"
    );
    assert_eq!(storage.metrics().bytes(), data.len() as u64);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_rtmp_records_a_gstreamer_publish() -> Result<()> {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    tests::init_logs();
    gst::init()?;
    let rtmp = Rtmp::start()?;
    let url = rtmp.url("smoke");
    let sink = if gst::ElementFactory::find("rtmpsink").is_some() {
        "rtmpsink"
    } else {
        "rtmp2sink"
    };
    let description = format!(
        "videotestsrc num-buffers=90 ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 \
         ! video/x-h264,profile=main ! h264parse ! flvmux streamable=true \
         ! {sink} location=\"{url} live=1\""
    );
    let started = Instant::now();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let pipeline = gst::parse::launch(&description)?;
        pipeline.set_state(gst::State::Playing)?;
        let bus = pipeline.bus().expect("a pipeline has a bus");
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        pipeline.set_state(gst::State::Null)?;
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => Ok(()),
            Some(gst::MessageView::Error(e)) => anyhow::bail!("publish failed: {}", e.error()),
            _ => anyhow::bail!("publish did not end within 30 s"),
        }
    })
    .await??;
    let published = started.elapsed();
    let path = rtmp
        .wait_recorded_async("smoke", Duration::from_secs(10))
        .await?;
    let flv = std::fs::read(&path)?;
    eprintln!(
        "rtmp: published with {sink} in {published:?}, recorded {} bytes after {:?}",
        flv.len(),
        started.elapsed()
    );
    assert!(flv.starts_with(b"FLV"), "not an FLV file");
    assert!(flv.len() > 10_000, "only {} bytes recorded", flv.len());
    Ok(())
}
