// Browsers on the meeting page, for tests/tests/meeting_page.rs.
//
// One headless Chromium (fake camera and microphone), one page per name:
// each opens URL, types its name into the lobby and presses Join, as a
// person would. The page is not changed for the test: an init script only
// keeps a reference to each RTCPeerConnection the page makes, so that its
// getStats can be read.
//
// Usage: node page_meeting.mjs URL NAME...
// stdout (JSON lines):
//   {"type":"ready","version":..}
//   {"type":"joined","page":i}
//   {"type":"stats","page":i,"t":ms,"state":..,"inbound":[..],"tiles":[..],"error":..}
//   {"type":"screenshot","page":i,"path":..}
//   {"type":"error","page":i?,"what":..,"message":..}
// stdin: {"type":"screenshot","page":i,"path":"..."} | {"type":"quit"}

import { chromium } from 'playwright-core';
import readline from 'node:readline';

const STATS_MS = 500;
const [url, ...names] = process.argv.slice(2);
if (!url || names.length === 0) {
  console.error('usage: node page_meeting.mjs URL NAME...');
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

// Runs in each page before its own scripts: remember its peer connections.
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

// Runs in the page: what the test checks.
async function observe() {
  const pc = window.__pcs[window.__pcs.length - 1];
  const inbound = [];
  if (pc) {
    const report = await pc.getStats();
    for (const s of report.values()) {
      if (s.type !== 'inbound-rtp') continue;
      inbound.push({
        kind: s.kind, mid: s.mid, packetsReceived: s.packetsReceived,
        framesDecoded: s.framesDecoded, frameWidth: s.frameWidth, frameHeight: s.frameHeight,
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
      videoWidth: video ? video.videoWidth : 0,
      videoHeight: video ? video.videoHeight : 0,
    };
  });
  const error = document.getElementById('lobby-error');
  return {
    state: pc ? pc.connectionState : 'none',
    inbound,
    tiles,
    error: error && !error.hidden ? error.textContent : null,
    ended: !document.getElementById('ended').hidden,
  };
}

const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
await context.addInitScript(keepPeerConnections);
const pages = [];
let closing = false;

for (const [i, name] of names.entries()) {
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') emit({ type: 'log', page: i, text: m.text() });
  });
  page.on('pageerror', (e) => emit({ type: 'error', page: i, what: 'page', message: String(e) }));
  pages.push(page);
  try {
    await page.goto(url);
    await page.fill('#display-name', name);
    await page.click('#join');
    await page.waitForSelector('#meeting:not([hidden])', { timeout: 15000 });
    emit({ type: 'joined', page: i });
  } catch (e) {
    emit({ type: 'error', page: i, what: 'join', message: String(e.message || e) });
  }
}

const start = Date.now();
for (const [i, page] of pages.entries()) {
  const once = async () => {
    if (closing) return;
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

async function quit() {
  if (closing) return;
  closing = true;
  // Leave as a person would: the Leave button.
  await Promise.all(pages.map((p) => p.click('#leave', { timeout: 2000 }).catch(() => {})));
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
  if (cmd.type === 'screenshot') {
    try {
      await pages[cmd.page].screenshot({ path: cmd.path });
      emit({ type: 'screenshot', page: cmd.page, path: cmd.path });
    } catch (e) {
      emit({ type: 'error', page: cmd.page, what: 'screenshot', message: String(e) });
    }
  } else if (cmd.type === 'quit') {
    quit();
  }
});
input.on('close', quit);
