// The meeting grid: our own preview plus one tile per remote participant
// (name label, video or initials, muted microphone, speaker ring). The
// active speaker goes on stage (a larger tile) when more than two are in.

const MIC_OFF = '<svg class="mic-off" viewBox="0 0 24 24" aria-label="muted"><rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5.5 11a6.5 6.5 0 0013 0M12 17.5V21M4 4l16 16"/></svg>';

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
  constructor(root) {
    this.root = root;
    this.tiles = new Map();
    this.stage = null;
  }

  /** The tile of `nick`, made if new. `self` marks our own preview. */
  tile(nick, self = false) {
    let t = this.tiles.get(nick);
    if (t) return t;
    const el = document.createElement('div');
    el.className = self ? 'tile self' : 'tile';
    el.dataset.nick = nick;
    if (!self) el.dataset.remote = '';
    el.innerHTML = `<div class="avatar"><span></span></div><video autoplay playsinline muted></video><div class="label">${MIC_OFF}<span class="name"></span></div>`;
    t = { el, video: el.querySelector('video'), track: null, name: '' };
    this.tiles.set(nick, t);
    this.root.append(el);
    this.layout();
    return t;
  }

  setName(nick, name) {
    const t = this.tile(nick);
    if (t.name === name) return;
    t.name = name;
    t.el.querySelector('.name').textContent = name;
    const avatar = t.el.querySelector('.avatar span');
    avatar.textContent = initials(name.replace(/\s*\(you\)$/, ''));
    avatar.style.setProperty('--avatar', colour(nick));
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
