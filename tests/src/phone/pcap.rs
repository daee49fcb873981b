//! RTP in pcap files: a G.711 tone writer for sipp's `play_pcap_audio`, and a
//! small reader for the RTP in such files (ours and Debian's sip-tester ones).
//!
//! Contract: [`write_tone_pcap`] writes a classic libpcap file (microsecond
//! timestamps, link type Ethernet) of IPv4/UDP packets from
//! 192.0.2.1:4000 to 192.0.2.2:6000 (sipp keeps only the UDP payload and the
//! timing; it rewrites addresses and ports), each carrying one RTP packet of
//! 20 ms of G.711: 160 samples, sequence +1 and timestamp +160 per packet
//! starting at 0, SSRC [`TONE_SSRC`], marker on the first packet, capture
//! times 20 ms apart. sipp sends the RTP bytes as they are, so every play of
//! one file repeats the same sequence numbers and SSRC.
//!
//! [`read_rtp_pcap`] reads classic pcap (either byte order, micro- or
//! nanosecond timestamps) with Ethernet or Linux-cooked link types, keeps
//! the IPv4/UDP packets that parse as RTP, and refuses anything else.

use std::io;
use std::path::Path;
use std::time::Duration;

use super::g711::Law;
use super::rtp::{self, Rtp};

/// The SSRC of every packet [`write_tone_pcap`] writes.
pub const TONE_SSRC: u32 = 0x7E57_7011;
/// G.711 samples per second.
pub const SAMPLE_RATE: u32 = 8_000;
/// Samples per 20 ms packet.
const SAMPLES_PER_PACKET: usize = 160;

const PCAP_MAGIC_MICROS: u32 = 0xA1B2_C3D4;
const PCAP_MAGIC_NANOS: u32 = 0xA1B2_3C4D;
const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_LINUX_SLL: u32 = 113;
const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;
/// Documentation addresses (RFC 5737) and ports for the written packets.
const FROM: ([u8; 4], u16) = ([192, 0, 2, 1], 4000);
const TO: ([u8; 4], u16) = ([192, 0, 2, 2], 6000);

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

fn bad_file(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// Writes `seconds` (rounded to whole 20 ms packets, at least one) of a sine
/// at `freq_hz` with peak `amplitude` (fraction of full scale, `0.0..=1.0`)
/// as G.711 RTP in a pcap at `path`. Returns the number of packets.
pub fn write_tone_pcap(
    path: impl AsRef<Path>,
    freq_hz: f64,
    seconds: f64,
    law: Law,
    amplitude: f64,
) -> io::Result<usize> {
    if !(freq_hz > 0.0 && freq_hz < f64::from(SAMPLE_RATE) / 2.0) {
        return Err(invalid(format!("tone of {freq_hz} Hz is not below 4 kHz")));
    }
    if !(0.0..=1.0).contains(&amplitude) {
        return Err(invalid(format!("amplitude {amplitude} is not in 0..=1")));
    }
    if !(seconds > 0.0 && seconds <= 3600.0) {
        return Err(invalid(format!("{seconds} s is not a tone length")));
    }
    let packets = ((seconds * 50.0).round() as usize).max(1);
    let step = 2.0 * std::f64::consts::PI * freq_hz / f64::from(SAMPLE_RATE);
    let peak = amplitude * f64::from(i16::MAX);

    let mut file = Vec::with_capacity(24 + packets * (16 + 42 + 12 + SAMPLES_PER_PACKET));
    write_file_header(&mut file);
    let mut payload = [0u8; SAMPLES_PER_PACKET];
    let mut datagram = Vec::with_capacity(12 + SAMPLES_PER_PACKET);
    for index in 0..packets {
        let first_sample = index * SAMPLES_PER_PACKET;
        for (i, code) in payload.iter_mut().enumerate() {
            let sample = (peak * (step * (first_sample + i) as f64).sin()).round() as i16;
            *code = law.encode(sample);
        }
        datagram.clear();
        rtp::write(
            &Rtp {
                marker: index == 0,
                payload_type: law.payload_type(),
                sequence: index as u16,
                timestamp: first_sample as u32,
                ssrc: TONE_SSRC,
                payload: &payload,
            },
            &mut datagram,
        );
        let at = Duration::from_millis(20 * index as u64);
        write_udp_record(&mut file, at, &datagram);
    }
    std::fs::write(path, file)?;
    Ok(packets)
}

fn write_file_header(out: &mut Vec<u8>) {
    out.extend_from_slice(&PCAP_MAGIC_MICROS.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // GMT
    out.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snapshot length
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
}

/// One record: pcap header, Ethernet, IPv4, UDP, `payload`.
fn write_udp_record(out: &mut Vec<u8>, at: Duration, payload: &[u8]) {
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let frame_len = 14 + ip_len;
    out.extend_from_slice(&(at.as_secs() as u32).to_le_bytes());
    out.extend_from_slice(&at.subsec_micros().to_le_bytes());
    out.extend_from_slice(&(frame_len as u32).to_le_bytes()); // captured
    out.extend_from_slice(&(frame_len as u32).to_le_bytes()); // on the wire

    out.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // destination MAC
    out.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // source MAC
    out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());

    let mut ip = [0u8; 20];
    ip[0] = 0x45; // version 4, 5 words
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = IPPROTO_UDP;
    ip[12..16].copy_from_slice(&FROM.0);
    ip[16..20].copy_from_slice(&TO.0);
    let checksum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    out.extend_from_slice(&ip);

    out.extend_from_slice(&FROM.1.to_be_bytes());
    out.extend_from_slice(&TO.1.to_be_bytes());
    out.extend_from_slice(&(udp_len as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes()); // no checksum (IPv4 allows it; sipp computes its own)
    out.extend_from_slice(payload);
}

/// The ones' complement sum of the header's 16-bit words, complemented.
fn ipv4_checksum(header: &[u8; 20]) -> u16 {
    let mut sum: u32 = header
        .chunks_exact(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// One RTP packet found in a pcap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapRtp {
    /// Capture time since the file's first packet.
    pub at: Duration,
    /// The UDP destination port it was captured with.
    pub dst_port: u16,
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// The RTP packets of a pcap file, in file order (see the module contract).
pub fn read_rtp_pcap(path: impl AsRef<Path>) -> io::Result<Vec<PcapRtp>> {
    let path = path.as_ref();
    let data = std::fs::read(path)?;
    let header = data
        .get(..24)
        .ok_or_else(|| bad_file(path, "shorter than a pcap header"))?;
    let magic_le = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let magic_be = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let (little, nanos) = match (magic_le, magic_be) {
        (PCAP_MAGIC_MICROS, _) => (true, false),
        (PCAP_MAGIC_NANOS, _) => (true, true),
        (_, PCAP_MAGIC_MICROS) => (false, false),
        (_, PCAP_MAGIC_NANOS) => (false, true),
        _ => return Err(bad_file(path, "not a classic pcap file")),
    };
    let word = |bytes: &[u8]| -> u32 {
        let b: [u8; 4] = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let ethertype_at = match word(&header[20..24]) {
        LINKTYPE_ETHERNET => 12,
        LINKTYPE_LINUX_SLL => 14,
        other => return Err(bad_file(path, &format!("link type {other} unsupported"))),
    };

    let mut packets = Vec::new();
    let mut first: Option<Duration> = None;
    let mut offset = 24;
    while offset < data.len() {
        let record = data
            .get(offset..offset + 16)
            .ok_or_else(|| bad_file(path, "truncated record header"))?;
        let fraction = word(&record[4..8]);
        let time = Duration::from_secs(u64::from(word(&record[0..4])))
            + if nanos {
                Duration::from_nanos(u64::from(fraction))
            } else {
                Duration::from_micros(u64::from(fraction))
            };
        let captured = word(&record[8..12]) as usize;
        let frame = data
            .get(offset + 16..offset + 16 + captured)
            .ok_or_else(|| bad_file(path, "truncated packet"))?;
        offset += 16 + captured;
        let start = *first.get_or_insert(time);
        if let Some(mut packet) = udp_rtp(frame, ethertype_at) {
            packet.at = time.saturating_sub(start);
            packets.push(packet);
        }
    }
    Ok(packets)
}

/// The RTP in an IPv4/UDP frame whose EtherType is at `ethertype_at`.
fn udp_rtp(frame: &[u8], ethertype_at: usize) -> Option<PcapRtp> {
    let ethertype = frame.get(ethertype_at..ethertype_at + 2)?;
    if u16::from_be_bytes([ethertype[0], ethertype[1]]) != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ethertype_at + 2..)?;
    let header_len = usize::from(ip.first()? & 0x0F) * 4;
    if ip.first()? >> 4 != 4 || *ip.get(9)? != IPPROTO_UDP {
        return None;
    }
    let udp = ip.get(header_len..)?;
    let udp_len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    let packet = rtp::parse(udp.get(8..udp_len)?)?;
    Some(PcapRtp {
        at: Duration::ZERO,
        dst_port: u16::from_be_bytes([udp[2], udp[3]]),
        marker: packet.marker,
        payload_type: packet.payload_type,
        sequence: packet.sequence,
        timestamp: packet.timestamp,
        ssrc: packet.ssrc,
        payload: packet.payload.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::analysis;
    use super::*;

    fn decode(packets: &[PcapRtp], law: Law) -> Vec<i16> {
        packets
            .iter()
            .flat_map(|p| p.payload.iter().map(move |&c| law.decode(c)))
            .collect()
    }

    #[test]
    fn a_tone_pcap_reads_back_as_paced_g711_rtp_at_its_frequency() {
        let dir = tempfile::tempdir().unwrap();
        for (law, hz, amplitude) in [(Law::Pcmu, 1000.0, 0.5), (Law::Pcma, 440.0, 0.25)] {
            let path = dir.path().join(format!("{law:?}.pcap"));
            let written = write_tone_pcap(&path, hz, 1.0, law, amplitude).unwrap();
            assert_eq!(written, 50);
            let packets = read_rtp_pcap(&path).unwrap();
            assert_eq!(packets.len(), 50);
            for (i, p) in packets.iter().enumerate() {
                assert_eq!(p.payload_type, law.payload_type());
                assert_eq!(p.marker, i == 0);
                assert_eq!(p.sequence, i as u16);
                assert_eq!(p.timestamp, 160 * i as u32);
                assert_eq!(p.ssrc, TONE_SSRC);
                assert_eq!(p.payload.len(), 160);
                assert_eq!(p.at, Duration::from_millis(20 * i as u64));
                assert_eq!(p.dst_port, TO.1);
            }
            let pcm = decode(&packets, law);
            let got = analysis::dominant_hz(&pcm).unwrap();
            assert!((got - hz).abs() <= 15.0, "{law:?}: {got} Hz for {hz} Hz");
            let rms = analysis::rms(&pcm);
            let expected = amplitude * f64::from(i16::MAX) / 2f64.sqrt();
            assert!(
                (rms - expected).abs() < expected * 0.05,
                "{law:?}: rms {rms}, expected {expected}"
            );
        }
    }

    #[test]
    fn written_frames_have_valid_ip_headers_and_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        write_tone_pcap(&path, 700.0, 0.04, Law::Pcmu, 0.1).unwrap();
        let data = std::fs::read(&path).unwrap();
        // Two records of 16 + 14 + 20 + 8 + 12 + 160 bytes.
        assert_eq!(data.len(), 24 + 2 * 230);
        let ip: [u8; 20] = data[24 + 16 + 14..24 + 16 + 34].try_into().unwrap();
        // A header with its checksum in place sums to 0xFFFF, i.e. checks to 0.
        assert_eq!(ipv4_checksum(&ip), 0);
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 200);
    }

    #[test]
    fn impossible_tones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        for (hz, secs, amp) in [(4000.0, 1.0, 0.5), (440.0, 0.0, 0.5), (440.0, 1.0, 1.5)] {
            let err = write_tone_pcap(&path, hz, secs, Law::Pcmu, amp).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{hz} {secs} {amp}");
        }
        assert!(!path.exists());
    }

    #[test]
    fn files_that_are_not_pcap_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pcap");
        std::fs::write(&path, b"definitely not a capture file").unwrap();
        let err = read_rtp_pcap(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
