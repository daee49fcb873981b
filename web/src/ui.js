// The meeting grid: our own preview plus one tile per remote participant
// (name label, video or initials, muted microphone, speaker ring). The
// active speaker goes on stage (a larger tile) when more than two are in.
// A phone participant's tile shows a phone and the caller's number masked.
// Moderators get Mute and Remove on every remote tile.

const MIC_OFF = '<svg class="mic-off" viewBox="0 0 24 24" aria-label="muted"><rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5.5 11a6.5 6.5 0 0013 0M12 17.5V21M4 4l16 16"/></svg>';

const PHONE = '<svg class="phone-icon" viewBox="0 0 24 24" aria-label="phone"><path d="M6.6 3.5l2.6 3.4-1.6 2.3a12 12 0 006.2 6.2l2.3-1.6 3.4 2.6-1.2 3.1C11 19.5 4.5 13 3.5 4.7z"/></svg>';

/**
 * A phone number as the meeting shows it: every digit but the first two
 * and the last three hidden ("+44 20 7946 0958" -> "+44 •• •••• •958").
 * Text with fewer than six digits (a name) is shown as it is.
 */
export function maskNumber(text) {
  const digits = (text.match(/\d/g) || []).length;
  if (digits < 6) return text;
  let seen = 0;
  return text.replace(/\d/g, (d) => {
    seen += 1;
    return seen <= 2 || seen > digits - 3 ? d : '•';
  });
}

function initials(name) {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

function colour(seed) {
  let h = 0;
  for (const ch of seed) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return `hsl(${h} 45% 42%)`;
}

export class Grid {
  /** `onAction(action, nick)`: a moderator pressed 'mute' or 'kick'. */
  constructor(root, onAction = () => {}) {
    this.root = root;
    this.tiles = new Map();
    this.stage = null;
    root.addEventListener('click', (e) => {
      const button = e.target.closest('button[data-action]');
      const tile = button?.closest('.tile');
      if (tile) onAction(button.dataset.action, tile.dataset.nick);
    });
  }

  /** Shows (or hides) the moderator buttons on remote tiles. */
  setModerator(on) {
    this.root.classList.toggle('moderator', on);
  }

  /** The tile of `nick`, made if new. `self` marks our own preview. */
  tile(nick, self = false) {
    let t = this.tiles.get(nick);
    if (t) return t;
    const el = document.createElement('div');
    el.className = self ? 'tile self' : 'tile';
    el.dataset.nick = nick;
    if (!self) el.dataset.remote = '';
    const actions = self ? '' : '<div class="tile-actions"><button type="button" data-action="mute" title="Mute this participant">Mute</button><button type="button" data-action="kick" title="Remove from the meeting">Remove</button></div>';
    el.innerHTML = `<div class="avatar"><span></span>${PHONE}</div><video autoplay playsinline muted></video><div class="label">${MIC_OFF}<span class="name"></span><span class="call-status"></span></div>${actions}`;
    t = { el, video: el.querySelector('video'), track: null, name: '' };
    this.tiles.set(nick, t);
    this.root.append(el);
    this.layout();
    return t;
  }

  /** Names the tile; a phone participant's name is its masked number. */
  setName(nick, name, phone = false) {
    const t = this.tile(nick);
    t.el.classList.toggle('phone', phone);
    if (phone) name = maskNumber(name);
    if (t.name === name) return;
    t.name = name;
    t.el.querySelector('.name').textContent = name;
    const avatar = t.el.querySelector('.avatar span');
    avatar.textContent = initials(name.replace(/\s*\(you\)$/, ''));
    avatar.style.setProperty('--avatar', colour(nick));
  }

  /** A phone call's progress under its name (empty once connected). */
  setStatus(nick, status) {
    const t = this.tiles.get(nick);
    if (t) t.el.querySelector('.call-status').textContent = status ? ` · ${status}` : '';
  }

  /** Shows `track` (or the initials when null) on `nick`'s tile. */
  setVideo(nick, track, shown = true) {
    const t = this.tiles.get(nick);
    if (!t) return;
    if (t.track !== track) {
      t.track = track;
      t.video.srcObject = track ? new MediaStream([track]) : null;
      if (track) t.video.play().catch(() => {});
    }
    t.el.classList.toggle('has-video', Boolean(track) && shown);
  }

  setMuted(nick, audioMuted) {
    const t = this.tiles.get(nick);
    if (t) t.el.classList.toggle('audio-muted', audioMuted);
  }

  remove(nick) {
    const t = this.tiles.get(nick);
    if (!t) return;
    t.el.remove();
    this.tiles.delete(nick);
    if (this.stage === nick) this.stage = null;
    this.layout();
  }

  /** Rings the speaker's tile; puts `stage` (or nobody) on stage. */
  setSpeaker(speaker, stage) {
    for (const [nick, t] of this.tiles) {
      t.el.classList.toggle('speaking', nick === speaker);
    }
    this.stage = stage;
    this.layout();
  }

  layout() {
    const n = this.tiles.size;
    const staged = Boolean(this.stage && this.tiles.has(this.stage) && n > 2);
    let cols = Math.ceil(Math.sqrt(n));
    if (staged) cols = n <= 5 ? 3 : 4;
    this.root.style.setProperty('--cols', String(Math.max(cols, 1)));
    this.root.style.setProperty('--stage-span', '2');
    this.root.classList.toggle('staged', staged);
    this.root.dataset.count = String(n);
    for (const [nick, t] of this.tiles) {
      t.el.classList.toggle('stage', staged && nick === this.stage);
    }
  }
}
