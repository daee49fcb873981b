// The XMPP side of the page: sign in over WebSocket (anonymous, or SASL
// PLAIN with a token as password), ask the focus for the conference, join
// the MUC room with a display name, track who is in it, and carry Jingle.

import { Strophe, $iq, $pres } from 'strophe.js';

const NS_FOCUS = 'http://jitsi.org/protocol/focus';
const NS_MUC = 'http://jabber.org/protocol/muc';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const NS_NICK = 'http://jabber.org/protocol/nick';
const NS_JINGLE = 'urn:xmpp:jingle:1';
const NS_AUDIO = 'http://jitsi.org/jitmeet/audio';
const NS_VIDEO = 'http://jitsi.org/jitmeet/video';
const NS_MUC_ADMIN = 'http://jabber.org/protocol/muc#admin';
const NS_JIBRI = 'http://jitsi.org/protocol/jibri';
const NS_RAYO = 'urn:xmpp:rayo:1';
const NS_JIGASI = 'http://jitsi.org/protocol/jigasi';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const E2EE_PROPERTY = 'jitsi_participant_e2ee.enabled';

/** An IQ error: `condition` (e.g. 'forbidden') and the server's `text`. */
export class IqError extends Error {
  constructor(condition, text) {
    super(text ? `${text} (${condition})` : condition);
    this.condition = condition;
    this.text = text || '';
  }
}

/** The condition and text of an `<error>` inside `stanza`. */
function stanzaError(stanza) {
  const error = stanza?.getElementsByTagName('error')[0];
  if (!error) return new IqError('timeout', 'no answer');
  let condition = 'undefined-condition';
  let text = '';
  for (const c of Array.from(error.children)) {
    if (c.localName === 'text') text = c.textContent;
    else if (c.namespaceURI === NS_STANZAS) condition = c.localName;
  }
  return new IqError(condition, text);
}

/** Appends a {name, attrs, children, text} tree (jingle.js) to a builder. */
export function appendTree(builder, tree) {
  const attrs = {};
  for (const [k, v] of Object.entries(tree.attrs || {})) {
    if (v !== null && v !== undefined) attrs[k] = String(v);
  }
  builder.c(tree.name, attrs);
  if (tree.text !== null && tree.text !== undefined) builder.t(tree.text);
  for (const child of tree.children) appendTree(builder, child);
  builder.up();
  return builder;
}

function randomId(bytes) {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The server refused our sign-in; `reason` is its text. */
export class SignInError extends Error {
  constructor(reason, withToken) {
    super(withToken ? `your meeting link was refused: ${reason}` : `sign-in refused: ${reason}`);
    this.reason = reason;
  }
}

export class Signalling extends EventTarget {
  /**
   * config: {domain, muc, focus} from /config.json; room: the room's name.
   * Events: 'occupant' {nick, name, audioMuted, videoMuted, phone, e2ee,
   * moderator}, 'left' {nick}, 'self' {moderator}, 'jingle' {action,
   * jingle (Element), from}, 'recording' {status, mode, failure} (the
   * focus's jibri-recording-status), 'force-mute' {audio, actor},
   * 'kicked' {}, 'disconnected' {reason}.
   */
  constructor(config, room) {
    super();
    this.config = config;
    this.room = `${room}@${config.muc}`;
    this.nick = randomId(4);
    this.focusInRoom = `${this.room}/focus`;
    this.occupants = new Map();
    this.name = '';
    this.audioMuted = false;
    this.videoMuted = false;
    this.e2ee = false;
    this.moderator = false;
    this.conn = null;
    this.joined = null;
  }

  /** Signs in; `token` (optional) is sent as the SASL PLAIN password. */
  connect(url, token) {
    return new Promise((resolve, reject) => {
      const conn = new Strophe.Connection(url);
      this.conn = conn;
      let settled = false;
      const jid = token ? `${randomId(6)}@${this.config.domain}` : this.config.domain;
      conn.connect(jid, token || null, (status, condition, elem) => {
        const S = Strophe.Status;
        if (status === S.CONNECTED) {
          settled = true;
          this.installHandlers();
          resolve();
        } else if (!settled && status === S.AUTHFAIL) {
          settled = true;
          const text = elem?.getElementsByTagName('text')[0]?.textContent;
          reject(new SignInError(text || condition || 'not authorized', Boolean(token)));
        } else if (!settled && [S.CONNFAIL, S.ERROR].includes(status)) {
          settled = true;
          reject(new Error(`sign-in failed (${condition || status})`));
        } else if (status === S.DISCONNECTED) {
          this.dispatchEvent(new CustomEvent('disconnected', { detail: { reason: condition } }));
        }
      });
    });
  }

  installHandlers() {
    this.conn.addHandler((iq) => this.onJingle(iq), NS_JINGLE, 'iq', 'set');
    this.conn.addHandler((iq) => this.onMute(iq, true), NS_AUDIO, 'iq', 'set');
    this.conn.addHandler((iq) => this.onMute(iq, false), NS_VIDEO, 'iq', 'set');
    this.conn.addHandler((p) => this.onPresence(p), null, 'presence');
  }

  /** Sends the conference request; resolves when the focus is ready. */
  async requestConference() {
    const iq = $iq({ type: 'set', to: this.config.focus })
      .c('conference', {
        xmlns: NS_FOCUS,
        room: this.room,
        'machine-uid': localStorage.getItem('meet.machine') || this.rememberMachine(),
      })
      .up();
    const reply = await this.sendIq(iq, 15000);
    const conf = reply.getElementsByTagName('conference')[0];
    if (conf && conf.getAttribute('ready') === 'false') {
      throw new Error('the conference is not ready');
    }
  }

  rememberMachine() {
    const id = randomId(16);
    localStorage.setItem('meet.machine', id);
    return id;
  }

  /**
   * Joins the room as our nick with display name `name`; resolves when the
   * room lists us, rejects with an IqError when it refuses us.
   */
  join(name, e2ee = false) {
    this.name = name;
    this.e2ee = e2ee;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new IqError('timeout', 'the room did not answer')), 15000);
      this.joined = {
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      this.conn.send(this.presence().c('x', { xmlns: NS_MUC }).up());
    });
  }

  presence() {
    const p = $pres({ to: `${this.room}/${this.nick}` })
      .c('nick', { xmlns: NS_NICK }).t(this.name).up()
      .c('audiomuted', { xmlns: NS_AUDIO }).t(String(this.audioMuted)).up()
      .c('videomuted', { xmlns: NS_VIDEO }).t(String(this.videoMuted)).up();
    if (this.e2ee) p.c(E2EE_PROPERTY).t('true').up();
    return p;
  }

  /** Tells the room our mute state. */
  setMuted(audioMuted, videoMuted) {
    this.audioMuted = audioMuted;
    this.videoMuted = videoMuted;
    if (this.conn && this.conn.connected) this.conn.send(this.presence());
  }

  /** Sends an IQ; resolves with the result, rejects with an IqError. */
  sendIq(iq, timeout = 10000) {
    return new Promise((resolve, reject) => {
      this.conn.sendIQ(iq, resolve, (err) => reject(stanzaError(err)), timeout);
    });
  }

  /**
   * Asks the focus to mute `nick`'s microphone (moderators only), or with
   * `mute` false and our own nick, to lift a moderator's mute of ours.
   */
  muteParticipant(nick, mute = true) {
    const iq = $iq({ type: 'set', to: this.focusInRoom })
      .c('mute', { xmlns: NS_AUDIO, jid: `${this.room}/${nick}` }).t(String(mute));
    return this.sendIq(iq);
  }

  /** Asks the room to remove `nick` (moderators only; the room decides). */
  kick(nick, reason = 'Removed by a moderator') {
    const iq = $iq({ type: 'set', to: this.room })
      .c('query', { xmlns: NS_MUC_ADMIN })
      .c('item', { nick, role: 'none' })
      .c('reason').t(reason);
    return this.sendIq(iq);
  }

  /**
   * Starts a recording (`mode` 'file') or a live stream ('stream' with
   * `streamId`, an RTMP URL or a stream key) through the focus.
   */
  startRecording(mode, streamId) {
    const attrs = { xmlns: NS_JIBRI, action: 'start', recording_mode: mode };
    if (streamId) attrs.streamid = streamId;
    return this.sendIq($iq({ type: 'set', to: this.focusInRoom }).c('jibri', attrs), 20000);
  }

  stopRecording() {
    return this.sendIq($iq({ type: 'set', to: this.focusInRoom })
      .c('jibri', { xmlns: NS_JIBRI, action: 'stop' }), 20000);
  }

  /** Asks the focus to call `number` into this room (dial-out). */
  dial(number) {
    const iq = $iq({ type: 'set', to: this.focusInRoom })
      .c('dial', { xmlns: NS_RAYO, to: number, from: 'fromnumber' })
      .c('header', { name: 'JvbRoomName', value: this.room });
    return this.sendIq(iq, 30000);
  }

  /** Sends a Jingle IQ (`tree`: the <jingle> tree) to the focus. */
  sendJingle(tree) {
    const iq = $iq({ type: 'set', to: this.focusInRoom });
    appendTree(iq, tree);
    return this.sendIq(iq);
  }

  onJingle(iq) {
    const jingle = iq.getElementsByTagNameNS(NS_JINGLE, 'jingle')[0];
    this.conn.send($iq({ type: 'result', to: iq.getAttribute('from'), id: iq.getAttribute('id') }));
    if (jingle) {
      this.dispatchEvent(new CustomEvent('jingle', {
        detail: { action: jingle.getAttribute('action'), jingle, from: iq.getAttribute('from') },
      }));
    }
    return true;
  }

  /** A mute IQ: only the focus may send one; we obey and answer. */
  onMute(iq, audio) {
    const from = iq.getAttribute('from') || '';
    const el = iq.getElementsByTagNameNS(audio ? NS_AUDIO : NS_VIDEO, 'mute')[0];
    const fromFocus = from === this.focusInRoom || from.split('/')[0] === this.config.focus.split('/')[0];
    if (!fromFocus || !el) {
      this.conn.send($iq({ type: 'error', to: from, id: iq.getAttribute('id') })
        .c('error', { type: 'cancel' }).c('not-allowed', { xmlns: NS_STANZAS }));
      return true;
    }
    this.conn.send($iq({ type: 'result', to: from, id: iq.getAttribute('id') }));
    if (el.textContent.trim() === 'true') {
      const actor = (el.getAttribute('actor') || '').split('/').slice(1).join('/');
      this.dispatchEvent(new CustomEvent('force-mute', { detail: { audio, actor } }));
    }
    return true;
  }

  /** Our own presence in the room: joined (status 110), refused, removed. */
  onOwnPresence(p) {
    const type = p.getAttribute('type');
    const statuses = Array.from(p.getElementsByTagNameNS(NS_MUC_USER, 'status'))
      .map((s) => s.getAttribute('code'));
    if (type === 'error') {
      const e = stanzaError(p);
      if (this.joined) this.joined.reject(e);
      this.joined = null;
      return;
    }
    if (type === 'unavailable') {
      if (statuses.includes('307')) this.dispatchEvent(new CustomEvent('kicked', { detail: {} }));
      return;
    }
    const item = p.getElementsByTagNameNS(NS_MUC_USER, 'item')[0];
    const moderator = item?.getAttribute('role') === 'moderator';
    if (this.joined) {
      this.joined.resolve();
      this.joined = null;
    }
    if (moderator !== this.moderator || statuses.includes('110')) {
      this.moderator = moderator;
      this.dispatchEvent(new CustomEvent('self', { detail: { moderator } }));
    }
  }

  /** The focus's presence: the recording status it publishes. */
  onFocusPresence(p) {
    const s = p.getElementsByTagNameNS(NS_JIBRI, 'jibri-recording-status')[0];
    if (!s) return;
    this.dispatchEvent(new CustomEvent('recording', {
      detail: {
        status: s.getAttribute('status') || 'off',
        mode: s.getAttribute('recording_mode') || 'file',
        failure: s.getAttribute('failure_reason') || null,
      },
    }));
  }

  onPresence(p) {
    const from = p.getAttribute('from') || '';
    const [bare, nick] = [from.split('/')[0], from.split('/').slice(1).join('/')];
    if (bare !== this.room || !nick) return true;
    if (nick === this.nick) {
      this.onOwnPresence(p);
      return true;
    }
    if (nick === 'focus') {
      this.onFocusPresence(p);
      return true;
    }
    if (p.getAttribute('type') === 'unavailable') {
      if (this.occupants.delete(nick)) {
        this.dispatchEvent(new CustomEvent('left', { detail: { nick } }));
      }
      return true;
    }
    if (p.getAttribute('type') === 'error') return true;
    // A phone gateway's participant announces the jigasi feature and is
    // shown as a phone.
    const text = (ns, name) => {
      const el = p.getElementsByTagNameNS(ns, name)[0];
      return el ? el.textContent : null;
    };
    const item = p.getElementsByTagNameNS(NS_MUC_USER, 'item')[0];
    const features = Array.from(p.getElementsByTagName('feature')).map((f) => f.getAttribute('var'));
    // A recorder is a hidden participant: never shown, never counted.
    if (features.includes(NS_JIBRI)) {
      if (this.occupants.delete(nick)) {
        this.dispatchEvent(new CustomEvent('left', { detail: { nick } }));
      }
      return true;
    }
    const e2ee = Array.from(p.children).find((c) => c.localName === E2EE_PROPERTY);
    const occupant = {
      nick,
      name: text(NS_NICK, 'nick') || nick,
      audioMuted: text(NS_AUDIO, 'audiomuted') === 'true',
      videoMuted: text(NS_VIDEO, 'videomuted') === 'true',
      moderator: item?.getAttribute('role') === 'moderator',
      phone: features.includes(NS_JIGASI),
      // A phone call's progress (calling, ringing, connected, busy, ...).
      status: Array.from(p.children).find((c) => c.localName === 'status')?.textContent || '',
      e2ee: e2ee?.textContent.trim() === 'true',
    };
    this.occupants.set(nick, occupant);
    this.dispatchEvent(new CustomEvent('occupant', { detail: occupant }));
    return true;
  }

  /** Ends the Jingle session `sid`, leaves the room and signs out. */
  async leave(sid) {
    if (!this.conn) return;
    if (sid) {
      const tree = {
        name: 'jingle',
        attrs: { xmlns: NS_JINGLE, action: 'session-terminate', sid },
        children: [{
          name: 'reason', attrs: {}, text: null,
          children: [{ name: 'success', attrs: {}, children: [], text: null }],
        }],
        text: null,
      };
      await this.sendJingle(tree).catch(() => {});
    }
    this.conn.send($pres({ to: `${this.room}/${this.nick}`, type: 'unavailable' }));
    this.conn.flush();
    this.conn.disconnect('left');
  }
}
