// The meeting page at /<room>: lobby (name, preview, Join), then the call.
// Glue between the XMPP signalling, the call, the bridge channel and the grid.

import { Signalling } from './xmpp.js';
import { Call, openMedia } from './call.js';
import { BridgeChannel } from './bridge.js';
import { bridgeChannelUrl } from './jingle.js';
import { Grid } from './ui.js';

const $ = (id) => document.getElementById(id);

const state = {
  room: '',
  config: null,
  media: null,
  sig: null,
  call: null,
  bridge: null,
  grid: null,
  videoSlots: new Map(), // mid -> owner nick
  audio: new Map(), // mid -> <audio>
  speaker: null,
  /** The dominant speaker, then the previous ones (nicks, newest first). */
  speakers: [],
  micOn: true,
  camOn: true,
  ended: false,
};

function roomFromUrl() {
  let room = decodeURIComponent(location.pathname.replace(/^\/+|\/+$/g, '')).toLowerCase();
  room = room.replace(/[^a-z0-9._-]/g, '');
  if (!room) {
    room = `meeting-${Math.random().toString(36).slice(2, 8)}`;
    history.replaceState(null, '', `/${room}`);
  }
  return room;
}

function startClock() {
  const tick = () => {
    $('clock').textContent = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  };
  tick();
  setInterval(tick, 10000);
}

async function lobby() {
  state.room = roomFromUrl();
  document.title = `${state.room} · Meeting`;
  $('room-name').textContent = state.room;
  $('lobby-room').textContent = `Meeting room “${state.room}”`;
  const name = $('display-name');
  name.value = localStorage.getItem('meet.name') || `Guest ${Math.floor(1000 + Math.random() * 9000)}`;
  startClock();
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    join(name.value.trim() || 'Guest');
  });
  $('rejoin').addEventListener('click', () => location.reload());
  try {
    state.config = await (await fetch('/config.json', { cache: 'no-store' })).json();
  } catch (e) {
    showError(`This server does not say how to join (${e.message}).`);
    $('join').disabled = true;
  }
  try {
    state.media = await openMedia();
    $('preview').srcObject = state.media;
    $('preview-off').hidden = state.media.getVideoTracks().length > 0;
  } catch (e) {
    $('preview-off').hidden = false;
    $('preview-off').textContent = 'No camera or microphone';
  }
}

function showError(text) {
  const el = $('lobby-error');
  el.textContent = text;
  el.hidden = false;
}

async function join(name) {
  localStorage.setItem('meet.name', name);
  $('join').disabled = true;
  $('join').textContent = 'Joining…';
  const sig = new Signalling(state.config, state.room);
  state.sig = sig;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const token = new URLSearchParams(location.search).get('jwt');
  try {
    await sig.connect(`${scheme}://${location.host}/xmpp-websocket`, token);
    await sig.requestConference();
  } catch (e) {
    showError(`Could not join: ${e.message}`);
    $('join').disabled = false;
    $('join').textContent = 'Join meeting';
    return;
  }
  state.grid = new Grid($('grid'));
  const me = state.grid.tile(sig.nick, true);
  state.grid.setName(sig.nick, `${name} (you)`);
  if (state.media?.getVideoTracks()[0]) {
    me.video.srcObject = state.media;
    me.el.classList.add('has-video');
  }
  state.call = new Call(state.media);
  state.call.addEventListener('track', onTrack);
  state.call.addEventListener('state', (e) => {
    if (e.detail.state === 'failed') end('The connection to the meeting was lost.');
  });
  sig.addEventListener('occupant', (e) => onOccupant(e.detail));
  sig.addEventListener('left', (e) => {
    state.grid.remove(e.detail.nick);
    refresh();
  });
  sig.addEventListener('jingle', (e) => onJingle(e.detail));
  sig.addEventListener('disconnected', () => end('Disconnected from the server.'));
  sig.join(name);
  $('lobby').hidden = true;
  $('meeting').hidden = false;
  $('controls').hidden = false;
  $('people').hidden = false;
  refresh();
}

async function onJingle({ action, jingle }) {
  if (action === 'session-initiate') {
    try {
      const accept = await state.call.answer(jingle, state.sig.conn.jid);
      await state.sig.sendJingle(accept);
    } catch (e) {
      console.error('session-initiate:', e);
      end(`The call could not start: ${e.message}`);
      return;
    }
    const url = bridgeChannelUrl(jingle);
    if (url) openBridge(url);
  } else if (action === 'session-terminate') {
    end('The meeting ended for you.');
  }
}

function openBridge(url) {
  const bridge = new BridgeChannel(url);
  state.bridge = bridge;
  bridge.addEventListener('video-map', (e) => {
    state.videoSlots = e.detail.slots;
    refresh();
  });
  bridge.addEventListener('speaker', (e) => {
    state.speaker = e.detail.nick;
    state.speakers = [e.detail.nick, ...e.detail.previous];
    refresh();
  });
  refresh();
}

function onTrack({ detail: { mid, kind, track } }) {
  if (kind === 'audio') {
    // Every audio slot plays; the SFU forwards the current speakers.
    let el = state.audio.get(mid);
    if (!el) {
      el = document.createElement('audio');
      el.autoplay = true;
      el.dataset.mid = mid;
      document.body.append(el);
      state.audio.set(mid, el);
    }
    el.srcObject = new MediaStream([track]);
    el.play().catch(() => {});
  }
  refresh();
}

function onOccupant(o) {
  state.grid.setName(o.nick, o.name);
  state.grid.setMuted(o.nick, o.audioMuted);
  refresh();
}

/** Puts every remote video track on its owner's tile; updates the stage
 *  and the constraints we send. */
function refresh() {
  if (!state.grid || !state.sig) return;
  const remotes = Array.from(state.sig.occupants.values());
  for (const o of remotes) {
    let track = null;
    for (const [mid, owner] of state.videoSlots) {
      if (owner === o.nick && state.call?.tracks.get(mid)) track = state.call.tracks.get(mid);
    }
    state.grid.setVideo(o.nick, track, !o.videoMuted);
  }
  const count = remotes.length + 1;
  $('people').textContent = `${count} ${count === 1 ? 'person' : 'people'}`;
  const speaker = state.speaker && state.sig.occupants.has(state.speaker) ? state.speaker : null;
  // The stage shows the most recent speaker other than us (we never see
  // ourselves large), else the first of the others.
  const others = state.speakers.filter((n) => state.sig.occupants.has(n));
  const stage = count > 2 ? (others[0] ?? remotes[0]?.nick ?? null) : null;
  state.grid.setSpeaker(speaker, stage);
  state.bridge?.setConstraints(stage);
}

function setMic(on) {
  state.micOn = on;
  state.call?.setMic(on);
  $('toggle-mic').setAttribute('aria-pressed', String(on));
  $('toggle-mic').title = on ? 'Mute microphone' : 'Unmute microphone';
  state.grid.setMuted(state.sig.nick, !on);
  state.sig.setMuted(!state.micOn, !state.camOn);
}

function setCam(on) {
  state.camOn = on;
  state.call?.setCamera(on);
  $('toggle-cam').setAttribute('aria-pressed', String(on));
  $('toggle-cam').title = on ? 'Turn camera off' : 'Turn camera on';
  const me = state.grid.tiles.get(state.sig.nick);
  me?.el.classList.toggle('has-video', on && Boolean(state.media?.getVideoTracks()[0]));
  state.sig.setMuted(!state.micOn, !state.camOn);
}

async function leave() {
  await end('');
}

async function end(why) {
  if (state.ended) return;
  state.ended = true;
  state.bridge?.close();
  const sid = state.call?.sid;
  state.call?.close();
  for (const el of state.audio.values()) el.remove();
  await state.sig?.leave(sid).catch(() => {});
  $('meeting').hidden = true;
  $('controls').hidden = true;
  $('people').hidden = true;
  $('ended').hidden = false;
  $('ended-why').textContent = why || `You can rejoin “${state.room}” at any time.`;
}

$('toggle-mic').addEventListener('click', () => setMic(!state.micOn));
$('toggle-cam').addEventListener('click', () => setCam(!state.camOn));
$('leave').addEventListener('click', leave);
window.addEventListener('pagehide', () => {
  if (!state.ended && state.sig) state.sig.leave(state.call?.sid);
});

lobby();
