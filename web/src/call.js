// The call: camera and microphone, and the one RTCPeerConnection that
// answers the focus's offer. Our own lines are `audio` (sendrecv) and
// `video` (we send three simulcast layers, l/m/h at 1/4, 1/2 and full
// size); every other line is a receive slot whose content the bridge
// channel names (see bridge.js).

import { offerFromJingle, contentsFromAnswer, NS } from './jingle.js';

const LAYER_SCALE = { l: 4, m: 2, h: 1 };

/** Camera and microphone (either may be missing). */
export async function openMedia() {
  const want = {
    audio: { echoCancellation: true, noiseSuppression: true },
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
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
  constructor(media) {
    super();
    this.media = media;
    this.pc = null;
    this.sid = null;
    this.tracks = new Map();
  }

  /** Answers a session-initiate `<jingle>`; returns the session-accept tree. */
  async answer(jingle, responder) {
    this.sid = jingle.getAttribute('sid');
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    this.pc = pc;
    pc.ontrack = (e) => {
      const mid = e.transceiver.mid;
      this.tracks.set(mid, e.track);
      this.dispatchEvent(new CustomEvent('track', { detail: { mid, kind: e.track.kind, track: e.track } }));
    };
    pc.onconnectionstatechange = () => {
      this.dispatchEvent(new CustomEvent('state', { detail: { state: pc.connectionState } }));
    };
    await pc.setRemoteDescription({ type: 'offer', sdp: offerFromJingle(jingle) });
    const byMid = (mid) => pc.getTransceivers().find((t) => t.mid === mid);
    const audio = byMid('audio');
    const video = byMid('video');
    const mic = this.media?.getAudioTracks()[0] || null;
    const cam = this.media?.getVideoTracks()[0] || null;
    if (audio) {
      audio.direction = 'sendrecv';
      await audio.sender.replaceTrack(mic);
      if (this.media) audio.sender.setStreams(this.media);
    }
    if (video) {
      video.direction = 'sendonly';
      await video.sender.replaceTrack(cam);
      if (this.media) video.sender.setStreams(this.media);
      // The offer asks for the rids l, m, h; say which size each one is.
      const params = video.sender.getParameters();
      for (const e of params.encodings || []) {
        if (e.rid in LAYER_SCALE) e.scaleResolutionDownBy = LAYER_SCALE[e.rid];
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
    if (this.pc) this.pc.close();
    this.pc = null;
    for (const t of this.media?.getTracks() || []) t.stop();
  }
}
