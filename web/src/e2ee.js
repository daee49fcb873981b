// End-to-end encryption of media frames (encoded transforms), so that the
// SFU forwards media it cannot read while still seeing what it needs.
//
// FRAME FORMAT (what goes into RTP in place of the encoded frame):
//
//   [clear prefix][AES-GCM ciphertext of the rest + 16-byte tag][IV, 12 bytes][trailer, 1 byte = 12]
//
// - Clear prefix, chosen from the frame's codec (see CODEC below) and its
//   first byte:
//     VP8 key frame (bit 0 of byte 0 is 0): 10 bytes (frame tag, start code
//       9d 01 2a, width and height): the SFU reads the key-frame bit and the
//       frame size there.
//     VP8 delta frame: 3 bytes (the frame tag).
//     Opus: 1 byte (the TOC byte).
//     Any other codec (H.264, VP9, AV1, telephone-event, ...): NOT ENCRYPTED
//       AT ALL, the frame passes in clear both ways (counted as `skipped`).
//       The SFU offers Opus, VP8 and H.264 and prefers VP8, so media is
//       encrypted as long as the answer keeps VP8 first; a caller that must
//       never send clear media should remove H.264 from what it accepts.
//   A frame shorter than its prefix is all prefix (empty ciphertext).
// - The ciphertext: AES-GCM (256-bit key, 128-bit tag) of every byte after
//   the prefix, with the prefix as additional authenticated data, so the
//   clear header cannot be altered either.
// - IV: 12 random bytes from crypto.getRandomValues for every frame, written
//   after the ciphertext. (96 random bits: a repeat within one key is
//   negligible for the number of frames a meeting sends; no counter state,
//   so simulcast layers and restarts need no coordination.)
// - Trailer: one byte, the IV length (12), so the receiver can find the IV;
//   any other value makes the frame undecryptable.
// Overhead: 29 bytes a frame.
//
// RECEIVING: a frame that does not decrypt (wrong key, not encrypted,
// tampered, or too short to carry tag + IV + trailer) is dropped, never
// given to the decoder, and counted as `failed`.
//
// KEY: PBKDF2-SHA-256, 200,000 iterations, over the UTF-8 passphrase with the
// UTF-8 room name as salt, giving an AES-GCM-256 key (WebCrypto,
// non-extractable). Everyone in the room with the same passphrase gets the
// same key. WebCrypto needs a secure context (https, or http on localhost).
//
// CODEC of a frame: `frame.getMetadata().mimeType` where the browser gives it
// (Chromium does for audio and video; 'video/VP8' and 'audio/opus' are
// handled, anything else passes in clear). Where it does not: an audio frame
// is taken to be Opus (the only audio codec the SFU offers); for video, each
// payload type (`getMetadata().payloadType`) is classified from its key
// frames (VP8 when the clear bytes 3..5 are the start code 9d 01 2a) and
// video frames of a payload type not classified yet are dropped, not sent in
// clear.
//
// PATHS: createEncodedStreams (the readable/writable pair is transferred to
// the worker) where the browser has it, else the standard
// RTCRtpScriptTransform (the worker gets `rtctransform` events). The older
// API comes first on purpose: Chromium 156 has both, and with a script
// transform on a simulcast sender it sent every video frame unencrypted
// (the transform saw audio only; tests/tests/meeting_e2ee.rs found it),
// while createEncodedStreams covers every layer. Firefox and Safari have
// only the standard API. The worker is
// '/e2ee-worker.js' on the page's own origin (web/build.mjs bundles it into
// dist/).
//
// FOR THE CALLER:
// - Create the RTCPeerConnection with {...yourConfig, ...peerConnectionConfig()}:
//   on the createEncodedStreams path it must have encodedInsertableStreams:
//   true, else the streams cannot be taken, and every sender and receiver
//   must then be attached (one left out sends or receives nothing).
// - Attach every sender and receiver once, before media flows through it:
//   senders right after the transceiver exists (after setRemoteDescription /
//   addTrack, before or right after replaceTrack), receivers as soon as their
//   transceiver exists (after setRemoteDescription, or synchronously in
//   `ontrack`). Frames that pass an unattached sender leave IN CLEAR; frames
//   a receiver gets before its attach reach the decoder undecrypted (and
//   fail to decode). On the createEncodedStreams path the streams must be
//   taken at once (createEncodedStreams can be called only once per
//   object). Attaching the same object again to the same E2ee is a no-op
//   (returns false); to another E2ee, or one that already has a transform,
//   an error.
// - close() after (or with) pc.close(): once the worker is gone, attached
//   senders and receivers pass no frames at all.

const WORKER_URL = '/e2ee-worker.js';
const PBKDF2_ITERATIONS = 200_000;
const WORKER_START_TIMEOUT_MS = 10_000;

/** Which E2ee each sender/receiver is attached to (attach once). */
const attachedTo = new WeakMap();

function hasScriptTransform() {
  return typeof globalThis.RTCRtpScriptTransform === 'function';
}

function hasEncodedStreams() {
  return typeof globalThis.RTCRtpSender === 'function'
    && typeof RTCRtpSender.prototype.createEncodedStreams === 'function';
}

/** True if this browser can encrypt frames (an encoded-transform API, WebCrypto and workers). */
export function e2eeSupported() {
  return (hasScriptTransform() || hasEncodedStreams())
    && typeof Worker === 'function'
    && !!globalThis.crypto?.subtle;
}

/** Fields to merge into the RTCConfiguration before creating the pc. */
export function peerConnectionConfig() {
  return hasEncodedStreams() ? { encodedInsertableStreams: true } : {};
}

async function deriveKey(passphrase, room) {
  const enc = new TextEncoder();
  const base = await crypto.subtle.importKey('raw', enc.encode(passphrase), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt: enc.encode(room), iterations: PBKDF2_ITERATIONS },
    base,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

function startWorker() {
  const worker = new Worker(WORKER_URL, { name: 'e2ee' });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`e2ee: ${WORKER_URL} did not start`)), WORKER_START_TIMEOUT_MS);
    const fail = (err) => {
      clearTimeout(timer);
      worker.terminate();
      reject(err);
    };
    worker.onerror = (e) => {
      e.preventDefault?.();
      fail(new Error(`e2ee: ${WORKER_URL} failed to load: ${e.message || 'error'}`));
    };
    worker.onmessage = (e) => {
      if (e.data?.type !== 'ready') return;
      clearTimeout(timer);
      resolve(worker);
    };
  });
}

const EMPTY_STATS = Object.freeze({ encrypted: 0, decrypted: 0, failed: 0, skipped: 0, dropped: 0 });

export class E2ee {
  #worker;
  #closed = false;
  #seq = 0;
  #pending = new Map();
  #last = EMPTY_STATS;

  /** Derives the key from `passphrase` and `room` and starts this instance's worker. */
  static async create(passphrase, room) {
    if (!e2eeSupported()) throw new Error('e2ee: not supported by this browser (or not a secure context)');
    if (typeof passphrase !== 'string' || passphrase === '') throw new Error('e2ee: empty passphrase');
    const key = await deriveKey(passphrase, String(room));
    const worker = await startWorker();
    return new E2ee(worker, key);
  }

  /** Use E2ee.create(). */
  constructor(worker, key) {
    this.#worker = worker;
    worker.onerror = (e) => console.warn('e2ee worker:', e.message || e);
    worker.onmessage = (e) => {
      const m = e.data || {};
      if (m.type !== 'stats') return;
      this.#last = m.stats;
      this.#pending.get(m.id)?.(m.stats);
      this.#pending.delete(m.id);
    };
    worker.postMessage({ type: 'key', key });
  }

  /** Encrypts what `sender` sends. `kind` is 'audio' or 'video'. */
  attachSender(sender, kind) {
    return this.#attach(sender, kind, 'encrypt');
  }

  /** Decrypts what `receiver` receives (undecryptable frames are dropped). */
  attachReceiver(receiver, kind) {
    return this.#attach(receiver, kind, 'decrypt');
  }

  #attach(target, kind, op) {
    if (this.#closed) throw new Error('e2ee: closed');
    if (kind !== 'audio' && kind !== 'video') throw new Error(`e2ee: kind must be 'audio' or 'video', not ${kind}`);
    const owner = attachedTo.get(target);
    if (owner === this) return false;
    if (owner) throw new Error('e2ee: already attached to another E2ee');
    if (hasEncodedStreams()) {
      // Throws unless the pc was created with encodedInsertableStreams: true,
      // or if the streams were already taken.
      const { readable, writable } = target.createEncodedStreams();
      this.#worker.postMessage({ type: 'streams', op, kind, readable, writable }, [readable, writable]);
    } else {
      if (target.transform) throw new Error('e2ee: it already has a transform');
      target.transform = new RTCRtpScriptTransform(this.#worker, { op, kind });
    }
    attachedTo.set(target, this);
    return true;
  }

  /**
   * Frame counts since create(): {encrypted, decrypted, failed} (plus
   * skipped: frames of unhandled codecs passed in clear; dropped: video not
   * yet classifiable, see CODEC). After close(), the last counts seen.
   */
  stats() {
    if (this.#closed) return Promise.resolve({ ...this.#last });
    const id = ++this.#seq;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#worker.postMessage({ type: 'stats', id });
    });
  }

  /** Stops the worker: attached senders and receivers pass no frames after this. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.terminate();
    for (const resolve of this.#pending.values()) resolve({ ...this.#last });
    this.#pending.clear();
  }
}
