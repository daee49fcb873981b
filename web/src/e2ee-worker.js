// The end-to-end encryption worker, bundled on its own into dist/e2ee-worker.js
// and started by e2ee.js (one worker per E2ee instance). It encrypts the
// encoded frames our senders produce and decrypts the ones our receivers get;
// the frame format, the key and the codec rules are documented at the top of
// e2ee.js. This file is a classic worker script with no imports.
//
// Messages in (from e2ee.js):
//   {type: 'key', key: CryptoKey}                    the AES-GCM key, sent first
//   {type: 'streams', op, kind, readable, writable}  createEncodedStreams path
//   {type: 'stats', id}                              answered by {type: 'stats', id, stats}
// Events in: 'rtctransform' (RTCRtpScriptTransform path; transformer.options
// is {op: 'encrypt'|'decrypt', kind: 'audio'|'video'}).
// Message out at start: {type: 'ready'}.

const IV_LENGTH = 12;
const TAG_LENGTH = 16; // bytes: AES-GCM's 128-bit tag
const TRAILER = IV_LENGTH; // the trailer byte says how long the IV before it is
const OVERHEAD = TAG_LENGTH + IV_LENGTH + 1;

const VP8_KEY_CLEAR = 10; // frame tag (3), start code 9d 01 2a, width, height
const VP8_DELTA_CLEAR = 3; // frame tag
const OPUS_CLEAR = 1; // TOC byte

const counts = { encrypted: 0, decrypted: 0, failed: 0, skipped: 0, dropped: 0 };

let key = null;
let keyArrived;
const keyReady = new Promise((resolve) => { keyArrived = resolve; });

self.onmessage = (e) => {
  const m = e.data || {};
  if (m.type === 'key') {
    key = m.key;
    keyArrived();
  } else if (m.type === 'streams') {
    run(m.readable, m.writable, m.op, m.kind);
  } else if (m.type === 'stats') {
    self.postMessage({ type: 'stats', id: m.id, stats: { ...counts } });
  }
};

self.addEventListener('rtctransform', (e) => {
  const t = e.transformer;
  const { op, kind } = t.options || {};
  run(t.readable, t.writable, op, kind);
});

function run(readable, writable, op, kind) {
  // Payload types seen to carry VP8 (or not), for browsers whose frames have
  // no metadata mimeType: learnt from key frames, whose first 10 bytes are
  // in clear on both sides. One map per stream.
  const learnt = new Map();
  const step = op === 'encrypt' ? encrypt : decrypt;
  const transform = new TransformStream({
    async transform(frame, controller) {
      if (!key) await keyReady;
      const codec = codecOf(frame, kind, learnt);
      if (codec === 'unknown') {
        counts.dropped++; // video we cannot classify yet: never send it in clear
        return;
      }
      if (codec === 'other') {
        counts.skipped++; // a codec we do not handle passes in clear, both ways
        controller.enqueue(frame);
        return;
      }
      if (await step(frame, codec)) controller.enqueue(frame);
    },
  });
  readable
    .pipeThrough(transform)
    .pipeTo(writable)
    .catch((err) => console.warn(`e2ee ${op} ${kind}: stream ended:`, err));
}

/** 'vp8', 'opus', 'other' (not handled: passes in clear) or 'unknown' (drop). */
function codecOf(frame, kind, learnt) {
  let meta = null;
  try { meta = frame.getMetadata(); } catch { /* no metadata */ }
  const mime = typeof meta?.mimeType === 'string' ? meta.mimeType.toLowerCase() : '';
  if (mime) {
    if (mime === 'video/vp8') return 'vp8';
    if (mime === 'audio/opus') return 'opus';
    return 'other';
  }
  // No mimeType in this browser's metadata.
  if (kind === 'audio') return 'opus'; // the only audio codec the product offers
  const pt = meta?.payloadType ?? 'any';
  if (frame.type === 'key') learnt.set(pt, looksLikeVp8Key(new Uint8Array(frame.data)) ? 'vp8' : 'other');
  return learnt.get(pt) || 'unknown';
}

function looksLikeVp8Key(b) {
  return b.length >= 10 && (b[0] & 1) === 0 && b[3] === 0x9d && b[4] === 0x01 && b[5] === 0x2a;
}

/** Bytes left in clear at the start of a frame whose plaintext is `length` long. */
function clearLength(codec, data, length) {
  let n = 0;
  if (codec === 'vp8') n = length > 0 && (data[0] & 1) === 0 ? VP8_KEY_CLEAR : VP8_DELTA_CLEAR;
  else if (codec === 'opus') n = OPUS_CLEAR;
  return Math.min(n, length);
}

async function encrypt(frame, codec) {
  const data = new Uint8Array(frame.data);
  const n = clearLength(codec, data, data.length);
  const iv = crypto.getRandomValues(new Uint8Array(IV_LENGTH));
  const clear = data.subarray(0, n);
  let sealed;
  try {
    sealed = new Uint8Array(await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: clear, tagLength: TAG_LENGTH * 8 },
      key,
      data.subarray(n),
    ));
  } catch (err) {
    console.warn('e2ee: encrypt failed, frame dropped:', err);
    counts.failed++;
    return false;
  }
  const out = new Uint8Array(n + sealed.length + IV_LENGTH + 1);
  out.set(clear, 0);
  out.set(sealed, n);
  out.set(iv, n + sealed.length);
  out[out.length - 1] = TRAILER;
  frame.data = out.buffer;
  counts.encrypted++;
  return true;
}

async function decrypt(frame, codec) {
  const data = new Uint8Array(frame.data);
  if (data.length < OVERHEAD || data[data.length - 1] !== TRAILER) {
    counts.failed++;
    return false;
  }
  const n = clearLength(codec, data, data.length - OVERHEAD);
  const ivAt = data.length - 1 - IV_LENGTH;
  const clear = data.subarray(0, n);
  let body;
  try {
    body = new Uint8Array(await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: data.subarray(ivAt, ivAt + IV_LENGTH), additionalData: clear, tagLength: TAG_LENGTH * 8 },
      key,
      data.subarray(n, ivAt),
    ));
  } catch {
    counts.failed++; // wrong key, or not encrypted at all: never reaches the decoder
    return false;
  }
  const out = new Uint8Array(n + body.length);
  out.set(clear, 0);
  out.set(body, n);
  frame.data = out.buffer;
  counts.decrypted++;
  return true;
}

self.postMessage({ type: 'ready' });
