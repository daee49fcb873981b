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

export class Signalling extends EventTarget {
  /**
   * config: {domain, muc, focus} from /config.json; room: the room's name.
   * Events: 'occupant' {nick, name, audioMuted, videoMuted},
   * 'left' {nick}, 'jingle' {action, jingle (Element), from},
   * 'disconnected' {reason}.
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
    this.conn = null;
  }

  /** Signs in; `token` (optional) is sent as the SASL PLAIN password. */
  connect(url, token) {
    return new Promise((resolve, reject) => {
      const conn = new Strophe.Connection(url);
      this.conn = conn;
      let settled = false;
      const jid = token ? `${randomId(6)}@${this.config.domain}` : this.config.domain;
      conn.connect(jid, token || null, (status, condition) => {
        const S = Strophe.Status;
        if (status === S.CONNECTED) {
          settled = true;
          this.installHandlers();
          resolve();
        } else if (!settled && [S.CONNFAIL, S.AUTHFAIL, S.ERROR].includes(status)) {
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

  /** Joins the room as our nick with display name `name`. */
  join(name) {
    this.name = name;
    this.conn.send(this.presence().c('x', { xmlns: NS_MUC }).up());
  }

  presence() {
    return $pres({ to: `${this.room}/${this.nick}` })
      .c('nick', { xmlns: NS_NICK }).t(this.name).up()
      .c('audiomuted', { xmlns: NS_AUDIO }).t(String(this.audioMuted)).up()
      .c('videomuted', { xmlns: NS_VIDEO }).t(String(this.videoMuted)).up();
  }

  /** Tells the room our mute state. */
  setMuted(audioMuted, videoMuted) {
    this.audioMuted = audioMuted;
    this.videoMuted = videoMuted;
    if (this.conn && this.conn.connected) this.conn.send(this.presence());
  }

  sendIq(iq, timeout = 10000) {
    return new Promise((resolve, reject) => {
      this.conn.sendIQ(iq, resolve, (err) => {
        const why = err ? (err.querySelector?.('error > *')?.localName || 'timeout') : 'timeout';
        reject(new Error(`IQ failed: ${why}`));
      }, timeout);
    });
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

  onPresence(p) {
    const from = p.getAttribute('from') || '';
    const [bare, nick] = [from.split('/')[0], from.split('/').slice(1).join('/')];
    if (bare !== this.room || !nick) return true;
    if (nick === this.nick || nick === 'focus') return true;
    if (p.getAttribute('type') === 'unavailable') {
      if (this.occupants.delete(nick)) {
        this.dispatchEvent(new CustomEvent('left', { detail: { nick } }));
      }
      return true;
    }
    if (p.getAttribute('type') === 'error') return true;
    // Service participants (recorders, gateways) announce features; they are
    // not shown as people.
    const text = (ns, name) => {
      const el = p.getElementsByTagNameNS(ns, name)[0];
      return el ? el.textContent : null;
    };
    const isUser = p.getElementsByTagNameNS(NS_MUC_USER, 'x').length > 0;
    const occupant = {
      nick,
      name: text(NS_NICK, 'nick') || nick,
      audioMuted: text(NS_AUDIO, 'audiomuted') === 'true',
      videoMuted: text(NS_VIDEO, 'videomuted') === 'true',
      inRoom: isUser,
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
