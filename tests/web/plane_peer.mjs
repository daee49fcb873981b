// Chromium participants for the media-plane test (tests/tests/chromium_plane.rs).
//
// One headless Chromium with fake camera (1280x720) and microphone; one page
// per participant. Talks JSON lines: commands on stdin, reports on stdout.
//
// stdin:
//   {"type":"offer","peer":"alice","sdp":"..."}    answer the plane's offer
//   {"type":"channel","peer":"bob","url":"ws://..."} open the bridge channel
//   {"type":"send","peer":"bob","message":{...}}   send on the bridge channel
//   {"type":"quit"} (or end of input)              close Chromium, exit 0
// stdout:
//   {"type":"ready"}
//   {"type":"answer","peer":..,"sdp":..,"encodings":{"before":[..],"after":[..]},
//    "degradationPreference":..}  (video sender encodings before and after
//                                  setParameters)
//   {"type":"channel","peer":..,"open":true}
//   {"type":"stats","peer":..,"t":ms,"state":..,"outbound":[..],"inbound":[..]}
//   {"type":"error","peer":..,"what":..,"message":..}
// The page polls getStats every STATS_MS once it has answered.

import { chromium } from 'playwright-core';
import http from 'node:http';
import readline from 'node:readline';

const STATS_MS = 100;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// getUserMedia needs a secure context: a blank page from http://127.0.0.1.
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<!doctype html><title>plane peer</title><body></body>');
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run',
         '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
         '--autoplay-policy=no-user-gesture-required',
         '--disable-renderer-backgrounding', '--disable-background-timer-throttling',
         '--disable-backgrounding-occluded-windows'],
});
browser.on('disconnected', () => {
  emit({ type: 'error', what: 'browser', message: 'Chromium went away' });
});

// Code that runs in each page.
const PAGE = {
  // Answers `offer`: camera on the `video` line with the offered simulcast,
  // microphone on `audio`; returns the answer and the video encodings.
  answer: async function answer(offer) {
    const media = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: { exact: 1280 }, height: { exact: 720 }, frameRate: 30 },
    });
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    window.pc = pc;
    window.sinks = [];
    pc.ontrack = (e) => {
      // Remote tracks are played (audio needs a sink to be pulled from
      // the jitter buffer; video is decoded either way).
      const el = document.createElement(e.track.kind === 'audio' ? 'audio' : 'video');
      el.muted = e.track.kind === 'video';
      el.autoplay = true;
      el.srcObject = new MediaStream([e.track]);
      document.body.appendChild(el);
      el.play().catch(() => {});
      window.sinks.push(el);
    };
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    const byMid = (mid) => pc.getTransceivers().find((t) => t.mid === mid);
    const audio = byMid('audio');
    const video = byMid('video');
    if (!audio || !video) throw new Error(`no audio/video transceiver: ${pc.getTransceivers().map((t) => t.mid)}`);
    audio.direction = 'sendrecv';
    await audio.sender.replaceTrack(media.getAudioTracks()[0]);
    audio.sender.setStreams(media);
    video.direction = 'sendonly';
    await video.sender.replaceTrack(media.getVideoTracks()[0]);
    video.sender.setStreams(media);
    // Chromium makes one encoding per offered rid (l, m, h) without a
    // scale; say the sizes, and keep them under CPU load (the test checks
    // them; two browsers encoding 720p share two cores).
    const params = video.sender.getParameters();
    const before = params.encodings.map((e) => ({ ...e }));
    const scale = { l: 4, m: 2, h: 1 };
    for (const e of params.encodings) {
      if (e.rid in scale) e.scaleResolutionDownBy = scale[e.rid];
    }
    params.degradationPreference = 'maintain-resolution';
    await video.sender.setParameters(params);
    const after = video.sender.getParameters().encodings.map((e) => ({ ...e }));
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    return {
      sdp: pc.localDescription.sdp,
      encodings: { before, after },
      degradationPreference: video.sender.getParameters().degradationPreference,
    };
  },

  // The figures the test checks, from getStats.
  stats: async function stats() {
    const pc = window.pc;
    const report = await pc.getStats();
    const outbound = [];
    const inbound = [];
    let pair = null;
    for (const s of report.values()) {
      if (s.type === 'outbound-rtp') {
        outbound.push({
          kind: s.kind, mid: s.mid, rid: s.rid, ssrc: s.ssrc, active: s.active,
          codec: report.get(s.codecId)?.mimeType,
          framesEncoded: s.framesEncoded, frameWidth: s.frameWidth, frameHeight: s.frameHeight,
          framesSent: s.framesSent, packetsSent: s.packetsSent, bytesSent: s.bytesSent,
          keyFramesEncoded: s.keyFramesEncoded, pliCount: s.pliCount, firCount: s.firCount,
          nackCount: s.nackCount,
          qualityLimitationReason: s.qualityLimitationReason,
          scalabilityMode: s.scalabilityMode, encoderImplementation: s.encoderImplementation,
          targetBitrate: s.targetBitrate,
        });
      } else if (s.type === 'inbound-rtp') {
        inbound.push({
          kind: s.kind, mid: s.mid, ssrc: s.ssrc, packetsReceived: s.packetsReceived,
          codec: report.get(s.codecId)?.mimeType,
          bytesReceived: s.bytesReceived, packetsLost: s.packetsLost,
          framesDecoded: s.framesDecoded, frameWidth: s.frameWidth, frameHeight: s.frameHeight,
          keyFramesDecoded: s.keyFramesDecoded, pliCount: s.pliCount, firCount: s.firCount,
          audioLevel: s.audioLevel, totalAudioEnergy: s.totalAudioEnergy,
          totalSamplesReceived: s.totalSamplesReceived,
        });
      } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
        const local = report.get(s.localCandidateId);
        const remote = report.get(s.remoteCandidateId);
        pair = {
          local: local && `${local.address}:${local.port}`,
          remote: remote && `${remote.address}:${remote.port}`,
          availableOutgoingBitrate: s.availableOutgoingBitrate,
        };
      }
    }
    return {
      state: pc.connectionState, ice: pc.iceConnectionState, pair, outbound, inbound,
    };
  },

  openChannel: function openChannel(url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      window.channel = ws;
      window.channelIn = [];
      ws.onmessage = (e) => window.channelIn.push(e.data);
      ws.onopen = () => resolve(true);
      ws.onerror = () => reject(new Error(`bridge channel ${url} failed`));
    });
  },
};

const pages = new Map();

function page(peer) {
  if (!pages.has(peer)) {
    pages.set(peer, (async () => {
      const p = await browser.newPage();
      p.on('console', (m) => {
        if (m.type() === 'error') emit({ type: 'log', peer, text: m.text() });
      });
      p.on('pageerror', (e) => emit({ type: 'error', peer, what: 'page', message: String(e) }));
      await p.goto(origin);
      return p;
    })());
  }
  return pages.get(peer);
}

// One report at a time per page, STATS_MS apart, in order.
function poll(peer, p) {
  const start = Date.now();
  const once = async () => {
    if (closing) return;
    try {
      const s = await p.evaluate(PAGE.stats);
      emit({ type: 'stats', peer, t: Date.now() - start, ...s });
    } catch (e) {
      if (!closing) emit({ type: 'error', peer, what: 'stats', message: String(e) });
      return;
    }
    setTimeout(once, STATS_MS);
  };
  once();
}

async function handle(cmd) {
  const p = await page(cmd.peer);
  if (cmd.type === 'offer') {
    try {
      const r = await p.evaluate(PAGE.answer, cmd.sdp);
      emit({ type: 'answer', peer: cmd.peer, ...r });
      poll(cmd.peer, p);
    } catch (e) {
      emit({ type: 'error', peer: cmd.peer, what: 'answer', message: String(e.message || e) });
    }
  } else if (cmd.type === 'channel') {
    try {
      await p.evaluate(PAGE.openChannel, cmd.url);
      emit({ type: 'channel', peer: cmd.peer, open: true });
    } catch (e) {
      emit({ type: 'error', peer: cmd.peer, what: 'channel', message: String(e.message || e) });
    }
  } else if (cmd.type === 'send') {
    await p.evaluate((m) => window.channel.send(m), JSON.stringify(cmd.message));
  }
}

let closing = false;

async function quit() {
  if (closing) return;
  closing = true;
  await browser.close().catch(() => {});
  server.close();
  process.exit(0);
}

emit({ type: 'ready', version: browser.version() });
const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    emit({ type: 'error', what: 'input', message: `not JSON: ${line.slice(0, 80)}` });
    return;
  }
  if (cmd.type === 'quit') {
    quit();
    return;
  }
  handle(cmd).catch((e) => emit({ type: 'error', peer: cmd.peer, what: cmd.type, message: String(e) }));
});
input.on('close', quit);
