// The meeting page at /<room>: lobby (name, preview, Join), then the call.
// Glue between the XMPP signalling, the call, the bridge channel and the grid.

import { Signalling, SignInError } from './xmpp.js';
import { Call, openMedia, DEFAULT_OPTIONS } from './call.js';
import { BridgeChannel } from './bridge.js';
import { bridgeChannelUrl } from './jingle.js';
import { Grid, maskNumber } from './ui.js';
import { E2ee, e2eeSupported } from './e2ee.js';

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
  /** A phone participant's last call status (nick -> status). */
  phoneStatus: new Map(),
  micOn: true,
  camOn: true,
  ended: false,
  moderator: false,
  /** A moderator muted us: the SFU drops our audio until we unmute. */
  forceMuted: false,
  /** The focus's jibri-recording-status: {status, mode, failure}. */
  recording: { status: 'off', mode: 'file', failure: null },
  token: null,
  options: { ...DEFAULT_OPTIONS },
};

/** A short message at the bottom of the page for a few seconds. */
function notify(text, kind = 'info') {
  const el = document.createElement('div');
  el.className = `notice ${kind}`;
  el.textContent = text;
  $('notices').append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 9000 : 5000);
}

/** The claims of a JWT, read without checking it (the server checks). */
function tokenClaims(token) {
  try {
    const body = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(body), (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

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
  // A token that names its holder decides the name; otherwise we ask.
  state.token = new URLSearchParams(location.search).get('jwt');
  const tokenName = state.token && tokenClaims(state.token)?.context?.user?.name;
  if (tokenName) {
    name.value = tokenName;
    name.hidden = true;
    document.querySelector('label[for="display-name"]').hidden = true;
    $('token-name').textContent = `Joining as ${tokenName}`;
    $('token-name').hidden = false;
  }
  $('opt-e2ee').addEventListener('change', () => {
    $('opt-passphrase').hidden = !$('opt-e2ee').checked;
    $('opt-passphrase').required = $('opt-e2ee').checked;
  });
  if (!e2eeSupported()) {
    $('opt-e2ee').disabled = true;
    $('e2ee-unsupported').hidden = false;
  }
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

/** The lobby's options; reopens camera and microphone if they changed. */
async function applyOptions() {
  const options = {
    hqAudio: $('opt-hq-audio').checked,
    height: $('opt-1080').checked ? 1080 : 720,
    e2ee: null,
  };
  if ($('opt-e2ee').checked) {
    const passphrase = $('opt-passphrase').value;
    if (!passphrase) throw new Error('end-to-end encryption needs a passphrase');
    options.e2ee = await E2ee.create(passphrase, state.room);
  }
  if (options.hqAudio !== state.options.hqAudio || options.height !== state.options.height) {
    for (const t of state.media?.getTracks() || []) t.stop();
    state.media = await openMedia(options).catch(() => null);
    $('preview').srcObject = state.media;
  }
  state.options = options;
}

function lobbyAgain(message) {
  showError(message);
  $('join').disabled = false;
  $('join').textContent = 'Join meeting';
}

async function join(name) {
  if (!state.token) localStorage.setItem('meet.name', name);
  $('join').disabled = true;
  $('join').textContent = 'Joining…';
  $('lobby-error').hidden = true;
  try {
    await applyOptions();
  } catch (e) {
    lobbyAgain(`Could not join: ${e.message}`);
    return;
  }
  const sig = new Signalling(state.config, state.room);
  state.sig = sig;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  try {
    await sig.connect(`${scheme}://${location.host}/xmpp-websocket`, state.token);
    await sig.requestConference();
  } catch (e) {
    sig.conn?.disconnect('refused');
    const text = e instanceof SignInError ? `${e.message[0].toUpperCase()}${e.message.slice(1)}.` : `Could not join: ${e.message}`;
    lobbyAgain(text);
    return;
  }
  state.grid = new Grid($('grid'), onTileAction);
  const me = state.grid.tile(sig.nick, true);
  state.grid.setName(sig.nick, `${name} (you)`);
  if (state.media?.getVideoTracks()[0]) {
    me.video.srcObject = state.media;
    me.el.classList.add('has-video');
  }
  state.call = new Call(state.media, state.options);
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
  sig.addEventListener('self', (e) => setModerator(e.detail.moderator));
  sig.addEventListener('recording', (e) => onRecording(e.detail));
  sig.addEventListener('force-mute', (e) => onForceMute(e.detail));
  sig.addEventListener('kicked', () => end('A moderator removed you from the meeting.'));
  try {
    await sig.join(name, Boolean(state.options.e2ee));
  } catch (e) {
    state.call.close();
    state.call = null;
    state.grid = null;
    $('grid').replaceChildren();
    sig.conn.disconnect('refused');
    state.sig = null;
    lobbyAgain(`You cannot join this meeting: ${e.text || e.message}.`);
    return;
  }
  $('e2ee-badge').hidden = !state.options.e2ee;
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

/** Phone call states that end a call before it connects. */
const CALL_FAILED = /^(busy|no answer|rejected|failed)/;

function onOccupant(o) {
  state.grid.setName(o.nick, o.name, o.phone);
  state.grid.setMuted(o.nick, o.audioMuted);
  if (o.phone) {
    state.grid.setStatus(o.nick, o.status === 'connected' ? '' : o.status);
    const before = state.phoneStatus.get(o.nick);
    if (o.status !== before && CALL_FAILED.test(o.status)) {
      notify(`The call to ${maskNumber(o.name)} ended: ${o.status}.`, 'error');
    }
    state.phoneStatus.set(o.nick, o.status);
  }
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
  // The stage gets the best layer up to 1080p (720p from most senders,
  // 1080p from those with the option); thumbnails 180p.
  state.bridge?.setConstraints(stage, 180, 1080);
}

function setMic(on) {
  if (on && state.forceMuted) {
    // The SFU drops our audio since a moderator muted us: lift it.
    state.forceMuted = false;
    state.sig.muteParticipant(state.sig.nick, false)
      .catch((e) => notify(`Could not unmute: ${e.text || e.condition || e.message}`, 'error'));
  }
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

function setModerator(on) {
  const was = state.moderator;
  state.moderator = on;
  state.grid?.setModerator(on);
  $('moderation').hidden = !on;
  $('role').hidden = !on;
  $('dial-in').hidden = !(state.config?.dialIn?.numbers?.length);
  if (on && !was && state.sig) notify('You are a moderator of this meeting.');
}

async function onTileAction(action, nick) {
  const who = state.sig?.occupants.get(nick)?.name || nick;
  try {
    if (action === 'mute') {
      await state.sig.muteParticipant(nick);
      notify(`You muted ${who}.`);
    } else if (action === 'kick') {
      if (!confirm(`Remove ${who} from the meeting?`)) return;
      await state.sig.kick(nick);
      notify(`You removed ${who}.`);
    }
  } catch (e) {
    notify(`Could not ${action === 'kick' ? 'remove' : 'mute'} ${who}: ${e.text || e.condition || e.message}`, 'error');
  }
}

function onForceMute({ audio, actor }) {
  const who = state.sig.occupants.get(actor)?.name || 'A moderator';
  if (audio) state.forceMuted = true;
  if (audio && state.micOn) {
    setMic(false);
    notify(`${who} muted you.`);
  } else if (!audio && state.camOn) {
    setCam(false);
    notify(`${who} turned your camera off.`);
  }
}

/** The focus's recording status: the badge and the buttons follow it. */
function onRecording(r) {
  const before = state.recording;
  state.recording = r;
  const active = r.status === 'on' || r.status === 'pending';
  const live = r.mode === 'stream';
  const badge = $('rec-badge');
  badge.hidden = !active;
  badge.classList.toggle('live', live);
  badge.classList.toggle('pending', r.status === 'pending');
  badge.querySelector('span').textContent = r.status === 'pending'
    ? (live ? 'Starting live stream…' : 'Starting recording…')
    : (live ? 'Live' : 'Recording');
  $('record').setAttribute('aria-pressed', String(active && !live));
  $('record').title = active && !live ? 'Stop recording' : 'Start recording';
  $('stream').setAttribute('aria-pressed', String(active && live));
  $('stream').title = active && live ? 'Stop live streaming' : 'Start live streaming';
  const what = live ? 'live stream' : 'recording';
  if (r.status === 'on' && before.status !== 'on') notify(live ? 'The meeting is live.' : 'The meeting is being recorded.');
  if (r.status === 'off' && before.status !== 'off') {
    notify(r.failure ? `The ${what} stopped: ${r.failure.replace(/_/g, ' ')}.` : `The ${what} has stopped.`,
      r.failure ? 'error' : 'info');
  }
}

async function toggleRecording(mode) {
  const active = ['on', 'pending'].includes(state.recording.status);
  if (active && state.recording.mode !== mode) {
    notify(`Stop the ${state.recording.mode === 'stream' ? 'live stream' : 'recording'} first: a meeting has one at a time.`, 'error');
    return;
  }
  try {
    if (active) {
      await state.sig.stopRecording();
      return;
    }
    if (mode === 'stream') {
      const target = await ask('live-dialog', 'live-target', 'start');
      if (!target) return;
      await state.sig.startRecording('stream', target);
    } else {
      await state.sig.startRecording('file');
    }
  } catch (e) {
    const what = mode === 'stream' ? 'live stream' : 'recording';
    notify(`The ${what} could not ${active ? 'stop' : 'start'}: ${e.text || e.condition || e.message}`, 'error');
  }
}

/** Opens `dialog` and resolves with its input's value, or null on cancel. */
function ask(dialog, input, confirmValue) {
  const d = $(dialog);
  $(input).value = '';
  d.showModal();
  return new Promise((resolve) => {
    d.addEventListener('close', () => {
      resolve(d.returnValue === confirmValue ? $(input).value.trim() || null : null);
    }, { once: true });
  });
}

async function dialOut() {
  const number = await ask('dial-dialog', 'dial-number', 'dial');
  if (!number) return;
  if (!/^\+?[0-9][0-9 ().-]{2,31}$/.test(number)) {
    notify(`“${number}” is not a phone number.`, 'error');
    return;
  }
  try {
    await state.sig.dial(number);
    notify(`Calling ${number}…`);
  } catch (e) {
    notify(`Could not call ${number}: ${e.text || e.condition || e.message}`, 'error');
  }
}

async function showDialIn() {
  const numbers = state.config?.dialIn?.numbers || [];
  $('dial-in-numbers').replaceChildren(...numbers.map((n) => {
    const li = document.createElement('li');
    li.textContent = n;
    return li;
  }));
  $('dial-in-pin').textContent = '…';
  $('invite-dialog').showModal();
  try {
    const conference = `${state.room}@${state.config.muc}`;
    const res = await fetch(`/conference-mapper?conference=${encodeURIComponent(conference)}`);
    const body = await res.json();
    if (!res.ok || !body.id) throw new Error(body.message || res.statusText);
    $('dial-in-pin').textContent = String(body.id);
  } catch (e) {
    $('dial-in-pin').textContent = `unavailable (${e.message})`;
  }
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
$('record').addEventListener('click', () => toggleRecording('file'));
$('stream').addEventListener('click', () => toggleRecording('stream'));
$('dial-out').addEventListener('click', dialOut);
$('dial-in').addEventListener('click', showDialIn);
window.addEventListener('pagehide', () => {
  if (!state.ended && state.sig) state.sig.leave(state.call?.sid);
});

lobby();
