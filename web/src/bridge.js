// The bridge channel (colibri-ws): JSON messages named by `colibriClass`.
// In: VideoSourcesMap / AudioSourcesMap (which publisher is in which of our
// receive slots, by mid), DominantSpeakerEndpointChangeEvent.
// Out: ReceiverVideoConstraints.

export class BridgeChannel extends EventTarget {
  /** Events: 'video-map' / 'audio-map' {slots: Map(mid -> owner)},
   *  'speaker' {nick}, 'open', 'close'. */
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.pending = null;
    this.closed = false;
    this.open();
  }

  open() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.dispatchEvent(new Event('open'));
      if (this.pending) ws.send(this.pending);
    };
    ws.onmessage = (e) => this.onMessage(e.data);
    ws.onclose = () => {
      this.dispatchEvent(new Event('close'));
      // Reconnect while the meeting lasts (the sfu restarts, a proxy drops it).
      if (!this.closed) setTimeout(() => this.open(), 2000);
    };
  }

  onMessage(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    const slots = (list) => new Map(
      (list || []).filter((s) => s.mid).map((s) => [s.mid, s.owner || null]),
    );
    switch (msg.colibriClass) {
      case 'VideoSourcesMap':
        this.dispatchEvent(new CustomEvent('video-map', { detail: { slots: slots(msg.mappedSources) } }));
        break;
      case 'AudioSourcesMap':
        this.dispatchEvent(new CustomEvent('audio-map', { detail: { slots: slots(msg.mappedSources) } }));
        break;
      case 'DominantSpeakerEndpointChangeEvent':
        this.dispatchEvent(new CustomEvent('speaker', {
          detail: { nick: msg.dominantSpeakerEndpoint, previous: msg.previousSpeakers || [] },
        }));
        break;
      default:
        break;
    }
  }

  /**
   * Asks for every video at `defaultHeight`, and `stageHeight` of the
   * participant `stage` (a nick, or null). Sent again after a reconnect.
   */
  setConstraints(stage, defaultHeight = 180, stageHeight = 720) {
    const msg = {
      colibriClass: 'ReceiverVideoConstraints',
      defaultConstraints: { maxHeight: defaultHeight },
      onStageSources: [],
      constraints: {},
    };
    if (stage) {
      const source = `${stage}-v0`;
      msg.onStageSources = [source];
      msg.constraints[source] = { maxHeight: stageHeight };
    }
    const text = JSON.stringify(msg);
    if (text === this.pending) return;
    this.pending = text;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }
}
