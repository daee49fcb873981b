// People on the meeting page, for the browser tests in tests/tests/meeting_*.rs
// (driven from Rust by tests::browsers::Browsers).
//
// One headless Chromium (fake camera), one page per entry of the spec:
// each opens its URL, types its name into the lobby (unless its token names
// it), sets the lobby options it is given and presses Join, as a person
// would. The page itself is not changed for the test. Two init scripts run
// before its own scripts:
// - keep a reference to each RTCPeerConnection the page makes, so that its
//   getStats can be read;
// - the microphone: getUserMedia's audio track is replaced by a sine tone
//   (the page's `tone` Hz) whose loudness the test sets (`gain`), so that a
//   test can make one person talk and the others fall silent.
//
// Usage: node meeting_pages.mjs SPEC_JSON
//   SPEC: {"pages":[{"url":..,"name":..|null,"passphrase":..|null,
//           "tone":440,"gain":0.5,"options":{"hqAudio":bool,"hd":bool}}]}
// stdout (JSON lines):
//   {"type":"ready","version":..}
//   {"type":"joined","page":i} | {"type":"refused","page":i,"message":..}
//   {"type":"stats","page":i,"t":ms,...observe()}
//   {"type":"done","id":..}   (a command finished)
//   {"type":"error","page":i?,"what":..,"message":..}
// stdin (JSON lines), each with an "id" echoed by "done":
//   {"type":"screenshot","page":i,"path":..}
//   {"type":"gain","page":i,"gain":0..1}
//   {"type":"tile-action","page":i,"nick":..,"action":"mute"|"kick"}
//   {"type":"click","page":i,"selector":..}
//   {"type":"fill","page":i,"selector":..,"value":..}
//   {"type":"eval","page":i,"expr":..}  (the value comes back in "done")
//   {"type":"quit"}

import { chromium } from 'playwright-core';
import readline from 'node:readline';

const STATS_MS = 250;
const spec = JSON.parse(process.argv[2] || '{}');
if (!Array.isArray(spec.pages) || spec.pages.length === 0) {
  console.error('usage: node meeting_pages.mjs \'{"pages":[{"url":..,"name":..}]}\'');
  process.exit(2);
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run',
         '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
         '--autoplay-policy=no-user-gesture-required',
         '--disable-renderer-backgrounding', '--disable-background-timer-throttling',
         '--disable-backgrounding-occluded-windows'],
});
emit({ type: 'ready', version: browser.version() });

// In the page, before its scripts: remember its peer connections.
function keepPeerConnections() {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) {
      super(...args);
      window.__pcs.push(this);
    }
  };
}

// In the page, before its scripts: the microphone is a tone of `mic.tone`
// Hz at `mic.gain`; window.__setGain changes it.
function toneMicrophone(mic) {
  const devices = navigator.mediaDevices;
  const original = devices.getUserMedia.bind(devices);
  let gainNode = null;
  let gain = mic.gain;
  window.__setGain = (g) => {
    gain = g;
    if (gainNode) gainNode.gain.setValueAtTime(g, gainNode.context.currentTime);
  };
  devices.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    if (!constraints || !constraints.audio) return stream;
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    osc.frequency.value = mic.tone;
    gainNode = ctx.createGain();
    gainNode.gain.value = gain;
    const out = ctx.createMediaStreamDestination();
    osc.connect(gainNode).connect(out);
    osc.start();
    for (const t of stream.getAudioTracks()) {
      stream.removeTrack(t);
      t.stop();
    }
    stream.addTrack(out.stream.getAudioTracks()[0]);
    return stream;
  };
}

// In the page: what the tests check, read from getStats and the DOM.
async function observe() {
  const pc = window.__pcs[window.__pcs.length - 1];
  const inbound = [];
  const outbound = [];
  if (pc && pc.connectionState !== 'closed') {
    const report = await pc.getStats();
    for (const s of report.values()) {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        outbound.push({
          rid: s.rid, framesSent: s.framesSent, frameHeight: s.frameHeight,
          qualityLimitationReason: s.qualityLimitationReason,
        });
      }
      if (s.type !== 'inbound-rtp') continue;
      inbound.push({
        kind: s.kind, mid: s.mid, packetsReceived: s.packetsReceived, bytesReceived: s.bytesReceived,
        framesReceived: s.framesReceived, framesDecoded: s.framesDecoded, framesDropped: s.framesDropped,
        keyFramesDecoded: s.keyFramesDecoded, frameWidth: s.frameWidth, frameHeight: s.frameHeight,
        totalAudioEnergy: s.totalAudioEnergy,
      });
    }
  }
  const tiles = Array.from(document.querySelectorAll('#grid .tile')).map((t) => {
    const video = t.querySelector('video');
    return {
      nick: t.dataset.nick,
      remote: 'remote' in t.dataset,
      name: t.querySelector('.name')?.textContent || '',
      hasVideo: t.classList.contains('has-video'),
      stage: t.classList.contains('stage'),
      speaking: t.classList.contains('speaking'),
      audioMuted: t.classList.contains('audio-muted'),
      phone: t.classList.contains('phone'),
      videoWidth: video ? video.videoWidth : 0,
      videoHeight: video ? video.videoHeight : 0,
    };
  });
  const shown = (id) => {
    const el = document.getElementById(id);
    return Boolean(el && !el.hidden);
  };
  const text = (id) => (shown(id) ? document.getElementById(id).textContent.trim() : null);
  return {
    state: pc ? pc.connectionState : 'none',
    inbound,
    outbound,
    tiles,
    error: text('lobby-error'),
    ended: shown('ended'),
    endedWhy: text('ended-why'),
    inMeeting: shown('meeting'),
    moderatorControls: shown('moderation'),
    badge: text('rec-badge'),
    e2eeBadge: shown('e2ee-badge'),
    micOn: document.getElementById('toggle-mic')?.getAttribute('aria-pressed') === 'true',
    notices: Array.from(document.querySelectorAll('#notices .notice'), (n) => n.textContent),
    dialIn: document.getElementById('invite-dialog')?.open ? {
      numbers: Array.from(document.querySelectorAll('#dial-in-numbers li'), (li) => li.textContent),
      pin: document.getElementById('dial-in-pin').textContent,
    } : null,
  };
}

const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
await context.addInitScript(keepPeerConnections);
const pages = [];
let closing = false;

async function open(i, p) {
  const page = await context.newPage();
  pages[i] = page;
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') emit({ type: 'log', page: i, text: m.text() });
  });
  page.on('pageerror', (e) => emit({ type: 'error', page: i, what: 'page', message: String(e) }));
  // Confirmations (removing someone) are accepted, as the person would.
  page.on('dialog', (d) => d.accept().catch(() => {}));
  await page.addInitScript(toneMicrophone, { tone: p.tone ?? 440 + 110 * i, gain: p.gain ?? 0.5 });
  await page.goto(p.url);
  if (p.name) await page.fill('#display-name', p.name);
  const o = p.options || {};
  if (o.hqAudio || o.hd || p.passphrase) await page.click('.options summary');
  if (o.hqAudio) await page.check('#opt-hq-audio');
  if (o.hd) await page.check('#opt-1080');
  if (p.passphrase) {
    await page.check('#opt-e2ee');
    await page.fill('#opt-passphrase', p.passphrase);
  }
  await page.click('#join');
  const outcome = await Promise.race([
    page.waitForSelector('#meeting:not([hidden])', { timeout: 20000 }).then(() => null),
    page.waitForSelector('#lobby-error:not([hidden])', { timeout: 20000 })
      .then((el) => el.textContent()),
  ]);
  if (outcome === null) emit({ type: 'joined', page: i });
  else emit({ type: 'refused', page: i, message: outcome.trim() });
}

for (const [i, p] of spec.pages.entries()) {
  try {
    await open(i, p);
  } catch (e) {
    emit({ type: 'error', page: i, what: 'join', message: String(e.message || e) });
  }
}

const start = Date.now();
for (const [i, page] of pages.entries()) {
  const once = async () => {
    if (closing || !page) return;
    try {
      emit({ type: 'stats', page: i, t: Date.now() - start, ...(await page.evaluate(observe)) });
    } catch (e) {
      if (!closing) emit({ type: 'error', page: i, what: 'stats', message: String(e) });
      return;
    }
    setTimeout(once, STATS_MS);
  };
  once();
}

async function run(cmd) {
  const page = pages[cmd.page];
  switch (cmd.type) {
    case 'screenshot':
      await page.screenshot({ path: cmd.path });
      break;
    case 'gain':
      await page.evaluate((g) => window.__setGain(g), cmd.gain);
      break;
    case 'tile-action': {
      const tile = page.locator(`#grid .tile[data-nick="${cmd.nick}"]`);
      await tile.hover();
      await tile.locator(`button[data-action="${cmd.action}"]`).click({ timeout: 5000 });
      break;
    }
    case 'click':
      await page.click(cmd.selector, { timeout: 5000 });
      break;
    case 'eval':
      return page.evaluate(cmd.expr);
    case 'fill':
      await page.fill(cmd.selector, cmd.value, { timeout: 5000 });
      break;
    default:
      throw new Error(`unknown command ${cmd.type}`);
  }
}

async function quit() {
  if (closing) return;
  closing = true;
  // Leave as a person would: the Leave button.
  await Promise.all(pages.map((p) => p?.click('#leave', { timeout: 2000 }).catch(() => {})));
  await browser.close().catch(() => {});
  process.exit(0);
}

const input = readline.createInterface({ input: process.stdin });
input.on('line', async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    return;
  }
  if (cmd.type === 'quit') {
    quit();
    return;
  }
  try {
    const value = await run(cmd);
    emit({ type: 'done', id: cmd.id ?? null, value: value ?? null });
  } catch (e) {
    emit({ type: 'error', page: cmd.page, what: cmd.type, message: String(e.message || e) });
  }
});
input.on('close', quit);
