// The call: camera and microphone, and the one RTCPeerConnection that
// answers the focus's offer. Our own lines are `audio` (sendrecv) and
// `video` (we send three simulcast layers, l/m/h at 1/4, 1/2 and full
// size); every other line is a receive slot whose content the bridge
// channel names (see bridge.js).

import { offerFromJingle, contentsFromAnswer, NS } from './jingle.js';
import { peerConnectionConfig } from './e2ee.js';

/**
 * The simulcast layers we send, by rid: l at 180p and m at 360p (0.2 and
 * 0.6 Mbit/s), h at the camera's own size (2.5 Mbit/s up to 720p, 4.5
 * Mbit/s above, e.g. with the 1080p option). The scales come from the size
 * the camera really gives.
 */
function layers(cameraHeight) {
  const height = cameraHeight || 720;
  const scale = (target) => Math.max(1, height / target);
  return {
    l: [scale(180), 200_000],
    m: [scale(360), 600_000],
    h: [1, height > 720 ? 4_500_000 : 2_500_000],
  };
}

/** Opus bit rate with the high-quality audio option (stereo): the offer's
 *  maxaveragebitrate sets it (see stereoOpus). */
const HQ_AUDIO_BITRATE = 128_000;

/**
 * Options of a call: `hqAudio` (no echo cancellation, noise suppression or
 * gain control; stereo Opus at 128 kbit/s), `height` (720 or 1080), `e2ee`
 * (an E2ee instance, or null).
 */
export const DEFAULT_OPTIONS = { hqAudio: false, height: 720, e2ee: null };

/** Camera and microphone (either may be missing). */
export async function openMedia(options = DEFAULT_OPTIONS) {
  const processing = !options.hqAudio;
  const full = options.height === 1080;
  const want = {
    audio: {
      echoCancellation: processing,
      noiseSuppression: processing,
      autoGainControl: processing,
      ...(processing ? {} : { channelCount: { ideal: 2 } }),
    },
    video: {
      width: { ideal: full ? 1920 : 1280 },
      height: { ideal: full ? 1080 : 720 },
      frameRate: { ideal: 30 },
    },
  };
  try {
    return await navigator.mediaDevices.getUserMedia(want);
  } catch (e) {
    // One device may be missing or refused: take what there is.
    for (const only of [{ audio: want.audio }, { video: want.video }]) {
      try {
        return await navigator.mediaDevices.getUserMedia(only);
      } catch { /* try the next */ }
    }
    throw e;
  }
}

export class Call extends EventTarget {
  /** Events: 'track' {mid, kind, track}, 'state' {state}. */
  constructor(media, options = DEFAULT_OPTIONS) {
    super();
    this.media = media;
    this.options = { ...DEFAULT_OPTIONS, ...options };
    this.pc = null;
    this.sid = null;
    this.tracks = new Map();
  }

  /** Answers a session-initiate `<jingle>`; returns the session-accept tree. */
  async answer(jingle, responder) {
    this.sid = jingle.getAttribute('sid');
    const e2ee = this.options.e2ee;
    const pc = new RTCPeerConnection({
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
      ...(e2ee ? peerConnectionConfig() : {}),
    });
    this.pc = pc;
    pc.ontrack = (e) => {
      const mid = e.transceiver.mid;
      this.tracks.set(mid, e.track);
      this.dispatchEvent(new CustomEvent('track', { detail: { mid, kind: e.track.kind, track: e.track } }));
    };
    pc.onconnectionstatechange = () => {
      this.dispatchEvent(new CustomEvent('state', { detail: { state: pc.connectionState } }));
    };
    let offer = offerFromJingle(jingle);
    if (this.options.hqAudio) offer = stereoOpus(offer);
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    if (e2ee) {
      // Every receiver decrypts, before any media flows.
      for (const t of pc.getTransceivers()) e2ee.attachReceiver(t.receiver, t.receiver.track.kind);
    }
    const byMid = (mid) => pc.getTransceivers().find((t) => t.mid === mid);
    const audio = byMid('audio');
    const video = byMid('video');
    const mic = this.media?.getAudioTracks()[0] || null;
    const cam = this.media?.getVideoTracks()[0] || null;
    if (audio) {
      audio.direction = 'sendrecv';
      // Encrypt before the first frame goes out.
      if (e2ee) e2ee.attachSender(audio.sender, 'audio');
      await audio.sender.replaceTrack(mic);
      if (this.media) audio.sender.setStreams(this.media);
    }
    if (video) {
      video.direction = 'sendonly';
      if (e2ee) {
        e2ee.attachSender(video.sender, 'video');
        // Only VP8 frames are encrypted (see e2ee.js): send nothing else.
        preferVp8(video);
      }
      await video.sender.replaceTrack(cam);
      if (this.media) video.sender.setStreams(this.media);
      // The offer asks for the rids l, m, h; say which size each one is.
      const sizes = layers(cam?.getSettings().height);
      const params = video.sender.getParameters();
      for (const e of params.encodings || []) {
        if (!(e.rid in sizes)) continue;
        [e.scaleResolutionDownBy, e.maxBitrate] = sizes[e.rid];
      }
      await video.sender.setParameters(params).catch((e) => console.warn('simulcast layers:', e));
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    const { contents, groups } = contentsFromAnswer(pc.localDescription.sdp);
    return {
      name: 'jingle',
      attrs: {
        xmlns: NS.JINGLE,
        action: 'session-accept',
        sid: this.sid,
        initiator: jingle.getAttribute('initiator') || undefined,
        responder,
      },
      children: [...contents, ...groups],
      text: null,
    };
  }

  /** Turns the microphone on or off (the line stays; it sends silence). */
  setMic(on) {
    for (const t of this.media?.getAudioTracks() || []) t.enabled = on;
  }

  /** Turns the camera on or off (black frames while off). */
  setCamera(on) {
    for (const t of this.media?.getVideoTracks() || []) t.enabled = on;
  }

  close() {
    this.options.e2ee?.close();
    if (this.pc) this.pc.close();
    this.pc = null;
    for (const t of this.media?.getTracks() || []) t.stop();
  }
}

/** Limits a video transceiver to VP8 (and its retransmissions). */
function preferVp8(transceiver) {
  const caps = RTCRtpSender.getCapabilities?.('video');
  if (!caps || !transceiver.setCodecPreferences) return;
  const keep = caps.codecs.filter((c) => /^video\/(vp8|rtx)$/i.test(c.mimeType));
  try {
    transceiver.setCodecPreferences(keep);
  } catch (e) {
    console.warn('VP8 only:', e);
  }
}

/**
 * Asks for stereo Opus at the high-quality rate on our own `audio` line:
 * the offer is what the browser sends to, so its fmtp decides whether the
 * browser encodes stereo (`stereo=1`) and how many bits it may use.
 */
export function stereoOpus(sdp) {
  const lines = sdp.split('\r\n');
  const start = lines.indexOf('a=mid:audio');
  if (start < 0) return sdp;
  let end = lines.findIndex((l, i) => i > start && l.startsWith('m='));
  if (end < 0) end = lines.length;
  const section = lines.slice(start, end);
  const rtpmap = section.findIndex((l) => /^a=rtpmap:\d+ opus\/48000/i.test(l));
  if (rtpmap < 0) return sdp;
  const pt = section[rtpmap].match(/^a=rtpmap:(\d+)/)[1];
  const prefix = `a=fmtp:${pt} `;
  const at = section.findIndex((l) => l.startsWith(prefix));
  const params = new Map(at < 0 ? [] : section[at].slice(prefix.length).split(';')
    .filter(Boolean).map((kv) => kv.split('=')));
  params.set('stereo', '1');
  params.set('sprop-stereo', '1');
  params.set('maxaveragebitrate', String(HQ_AUDIO_BITRATE));
  const fmtp = prefix + Array.from(params, ([k, v]) => `${k}=${v}`).join(';');
  if (at < 0) section.splice(rtpmap + 1, 0, fmtp);
  else section[at] = fmtp;
  return [...lines.slice(0, start), ...section, ...lines.slice(end)].join('\r\n');
}
