// Jingle (Jitsi dialect) <-> SDP for the meeting page: the focus's
// session-initiate becomes the SDP offer the browser applies, and the
// browser's SDP answer becomes the contents of our session-accept.
// Directions follow the usual convention read from the initiator's side:
// senders="initiator" is a=sendonly in the offer. See docs/jingle-sdp.md.

import { parseSdp, attr, attrs, formatCandidate, parseCandidate } from './sdp.js';

export const NS = {
  JINGLE: 'urn:xmpp:jingle:1',
  RTP: 'urn:xmpp:jingle:apps:rtp:1',
  RTCP_FB: 'urn:xmpp:jingle:apps:rtp:rtcp-fb:0',
  HDREXT: 'urn:xmpp:jingle:apps:rtp:rtp-hdrext:0',
  SSMA: 'urn:xmpp:jingle:apps:rtp:ssma:0',
  ICE: 'urn:xmpp:jingle:transports:ice-udp:1',
  DTLS: 'urn:xmpp:jingle:apps:dtls:0',
  GROUPING: 'urn:xmpp:jingle:apps:grouping:0',
  COLIBRI: 'http://jitsi.org/protocol/colibri',
  SDP: 'urn:x-meet:jingle:sdp:0',
};

const OFFER_DIRECTION = {
  both: 'sendrecv', initiator: 'sendonly', responder: 'recvonly', none: 'inactive',
};
const ANSWER_SENDERS = {
  sendrecv: 'both', sendonly: 'responder', recvonly: 'initiator', inactive: 'none',
};

/** Element children of `el` named `name` in namespace `ns` (any if null). */
function kids(el, name, ns = null) {
  return Array.from(el.children).filter(
    (c) => c.localName === name && (ns === null || c.namespaceURI === ns),
  );
}

function kid(el, name, ns = null) {
  return kids(el, name, ns)[0] || null;
}

/** The bridge-channel URL of a session-initiate (the first <web-socket>). */
export function bridgeChannelUrl(jingle) {
  for (const content of kids(jingle, 'content', NS.JINGLE)) {
    const transport = kid(content, 'transport', NS.ICE);
    const ws = transport && kid(transport, 'web-socket', NS.COLIBRI);
    if (ws && ws.getAttribute('url')) return ws.getAttribute('url');
  }
  return null;
}

/** The SDP offer of a session-initiate `<jingle>` element. */
export function offerFromJingle(jingle) {
  const contents = kids(jingle, 'content', NS.JINGLE);
  const transports = contents.map((c) => kid(c, 'transport', NS.ICE)).filter(Boolean);
  const lines = [
    'v=0',
    `o=- ${Math.floor(Math.random() * 1e15)} 2 IN IP4 127.0.0.1`,
    's=-',
    't=0 0',
  ];
  for (const g of kids(jingle, 'group', NS.GROUPING)) {
    const names = kids(g, 'content').map((c) => c.getAttribute('name'));
    lines.push(`a=group:${g.getAttribute('semantics')} ${names.join(' ')}`);
  }
  if (transports.length && transports.every((t) => kid(t, 'ice-lite', NS.SDP))) {
    lines.push('a=ice-lite');
  }
  lines.push('a=msid-semantic: WMS *');
  for (const c of contents) lines.push(...mediaSection(c));
  return lines.join('\r\n') + '\r\n';
}

function mediaSection(content) {
  const desc = kid(content, 'description', NS.RTP);
  const transport = kid(content, 'transport', NS.ICE);
  const senders = content.getAttribute('senders') || 'both';
  const media = desc ? desc.getAttribute('media') : 'application';
  const pts = desc ? kids(desc, 'payload-type', NS.RTP) : [];
  const port = senders === 'rejected' ? 0 : 9;
  const out = [
    `m=${media} ${port} UDP/TLS/RTP/SAVPF ${pts.map((p) => p.getAttribute('id')).join(' ')}`,
    'c=IN IP4 0.0.0.0',
  ];
  if (transport) {
    if (transport.getAttribute('ufrag')) out.push(`a=ice-ufrag:${transport.getAttribute('ufrag')}`);
    if (transport.getAttribute('pwd')) out.push(`a=ice-pwd:${transport.getAttribute('pwd')}`);
    for (const f of kids(transport, 'fingerprint', NS.DTLS)) {
      out.push(`a=fingerprint:${f.getAttribute('hash')} ${f.textContent.trim()}`);
      if (f.getAttribute('setup')) out.push(`a=setup:${f.getAttribute('setup')}`);
    }
  }
  out.push(`a=mid:${content.getAttribute('name')}`);
  if (desc) {
    for (const h of kids(desc, 'rtp-hdrext', NS.HDREXT)) {
      out.push(`a=extmap:${h.getAttribute('id')} ${h.getAttribute('uri')}`);
    }
  }
  out.push(`a=${senders === 'rejected' ? 'inactive' : OFFER_DIRECTION[senders] || 'sendrecv'}`);
  if (desc) {
    const msid = kid(desc, 'msid', NS.SDP);
    if (msid) out.push(`a=msid:${msid.getAttribute('value')}`);
    if (kid(desc, 'rtcp-mux', NS.RTP) || (transport && kid(transport, 'rtcp-mux', NS.ICE))) {
      out.push('a=rtcp-mux');
    }
    out.push(...describe(desc, pts));
  }
  if (transport) {
    for (const cand of kids(transport, 'candidate', NS.ICE)) {
      const a = {};
      for (const { name, value } of cand.attributes) a[name] = value;
      out.push(`a=candidate:${formatCandidate(a)}`);
    }
  }
  return out;
}

function describe(desc, pts) {
  const out = [];
  for (const pt of pts) {
    const id = pt.getAttribute('id');
    const name = pt.getAttribute('name');
    if (name) {
      let v = `${id} ${name}/${pt.getAttribute('clockrate')}`;
      if (pt.getAttribute('channels')) v += `/${pt.getAttribute('channels')}`;
      out.push(`a=rtpmap:${v}`);
    }
    for (const fb of kids(pt, 'rtcp-fb', NS.RTCP_FB)) {
      const sub = fb.getAttribute('subtype');
      out.push(`a=rtcp-fb:${id} ${fb.getAttribute('type')}${sub ? ` ${sub}` : ''}`);
    }
    const params = kids(pt, 'parameter', NS.RTP).map((p) => {
      const key = p.getAttribute('name');
      return key ? `${key}=${p.getAttribute('value')}` : p.getAttribute('value');
    });
    if (params.length) out.push(`a=fmtp:${id} ${params.join(';')}`);
  }
  for (const fb of kids(desc, 'rtcp-fb', NS.RTCP_FB)) {
    const sub = fb.getAttribute('subtype');
    out.push(`a=rtcp-fb:* ${fb.getAttribute('type')}${sub ? ` ${sub}` : ''}`);
  }
  for (const g of kids(desc, 'ssrc-group', NS.SSMA)) {
    const ssrcs = kids(g, 'source').map((s) => s.getAttribute('ssrc'));
    out.push(`a=ssrc-group:${g.getAttribute('semantics')} ${ssrcs.join(' ')}`);
  }
  const rids = [];
  for (const s of kids(desc, 'source', NS.SSMA)) {
    const ssrc = s.getAttribute('ssrc');
    if (ssrc) {
      for (const p of kids(s, 'parameter')) {
        const value = p.getAttribute('value');
        out.push(`a=ssrc:${ssrc} ${p.getAttribute('name')}${value !== null ? `:${value}` : ''}`);
      }
    } else if (s.getAttribute('rid')) {
      rids.push(`a=rid:${s.getAttribute('rid')} ${s.getAttribute('direction') || 'send'}`);
    }
  }
  out.push(...rids);
  const simulcast = kid(desc, 'simulcast', NS.SDP);
  const ridGroup = kids(desc, 'rid-group', NS.SSMA).find((g) => g.getAttribute('semantics') === 'SIM');
  if (simulcast) {
    out.push(`a=simulcast:${simulcast.getAttribute('value')}`);
  } else if (ridGroup) {
    out.push(`a=simulcast:send ${kids(ridGroup, 'source').map((s) => s.getAttribute('rid')).join(';')}`);
  }
  return out;
}

// A tiny element tree ({name, attrs, children, text}) that xmpp.js turns
// into stanza XML.
function node(name, attrs = {}, children = [], text = null) {
  const clean = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) clean[k] = String(v);
  }
  return { name, attrs: clean, children, text };
}

/**
 * The Jingle contents and groups of the browser's SDP answer, as element
 * trees: one <content> per m-line, in order (the focus matches them to its
 * offer by position), with our ICE credentials, DTLS fingerprint (setup
 * from the answer: active), the codecs, header extensions, our SSRCs and
 * groups, and the simulcast rids we send.
 */
export function contentsFromAnswer(sdpText) {
  const sdp = parseSdp(sdpText);
  const sessionAttr = (name) => {
    const a = sdp.session.find((x) => x.name === name);
    return a ? a.value : null;
  };
  const contents = sdp.media.map((m, i) => {
    const mid = attr(m, 'mid') ?? String(i);
    const direction = ['sendrecv', 'sendonly', 'recvonly', 'inactive'].find(
      (d) => m.attrs.some((a) => a.name === d),
    ) || 'sendrecv';
    const senders = m.port === 0 ? 'rejected' : ANSWER_SENDERS[direction];
    const pick = (name) => attr(m, name) ?? sessionAttr(name);
    const fingerprint = pick('fingerprint');
    const transport = node('transport', {
      xmlns: NS.ICE, ufrag: pick('ice-ufrag'), pwd: pick('ice-pwd'),
    });
    if (fingerprint) {
      const [hash, value] = fingerprint.split(' ');
      transport.children.push(node('fingerprint', {
        xmlns: NS.DTLS, hash, setup: pick('setup') || 'active',
      }, [], value));
    }
    for (const value of attrs(m, 'candidate')) {
      const c = parseCandidate(value);
      if (c) transport.children.push(node('candidate', { xmlns: NS.ICE, ...c }));
    }
    return node('content', { xmlns: NS.JINGLE, creator: 'initiator', name: mid, senders }, [
      description(m),
      transport,
    ]);
  });
  const groups = sdp.session
    .filter((a) => a.name === 'group')
    .map((a) => {
      const [semantics, ...mids] = a.value.split(' ').filter(Boolean);
      return node('group', { xmlns: NS.GROUPING, semantics },
        mids.map((mid) => node('content', { name: mid })));
    });
  return { contents, groups };
}

function description(m) {
  const d = node('description', { xmlns: NS.RTP, media: m.type });
  const pts = new Map();
  for (const f of m.formats) {
    const pt = node('payload-type', { id: f });
    pts.set(f, pt);
    d.children.push(pt);
  }
  for (const v of attrs(m, 'rtpmap')) {
    const [id, enc] = v.split(' ');
    const pt = pts.get(id);
    if (!pt) continue;
    const [name, clockrate, channels] = enc.split('/');
    Object.assign(pt.attrs, { name, clockrate });
    if (channels) pt.attrs.channels = channels;
  }
  for (const v of attrs(m, 'fmtp')) {
    const space = v.indexOf(' ');
    const pt = pts.get(v.slice(0, space));
    if (!pt) continue;
    for (const item of v.slice(space + 1).split(';').map((s) => s.trim()).filter(Boolean)) {
      const eq = item.indexOf('=');
      const [name, value] = eq < 0 ? ['', item] : [item.slice(0, eq), item.slice(eq + 1)];
      pt.children.push(node('parameter', { name, value }));
    }
  }
  for (const v of attrs(m, 'rtcp-fb')) {
    const [id, type, subtype] = v.split(' ');
    const fb = node('rtcp-fb', { xmlns: NS.RTCP_FB, type, subtype });
    if (id === '*') d.children.push(fb);
    else if (pts.has(id)) pts.get(id).children.push(fb);
  }
  for (const v of attrs(m, 'extmap')) {
    const [head, uri] = v.split(' ');
    d.children.push(node('rtp-hdrext', { xmlns: NS.HDREXT, id: head.split('/')[0], uri }));
  }
  if (m.attrs.some((a) => a.name === 'rtcp-mux')) d.children.push(node('rtcp-mux'));
  const sources = new Map();
  for (const v of attrs(m, 'ssrc')) {
    const space = v.indexOf(' ');
    const ssrc = space < 0 ? v : v.slice(0, space);
    if (!sources.has(ssrc)) {
      const s = node('source', { xmlns: NS.SSMA, ssrc });
      sources.set(ssrc, s);
      d.children.push(s);
    }
    if (space < 0) continue;
    const rest = v.slice(space + 1);
    const colon = rest.indexOf(':');
    const [name, value] = colon < 0 ? [rest, null] : [rest.slice(0, colon), rest.slice(colon + 1)];
    sources.get(ssrc).children.push(node('parameter', { xmlns: NS.SSMA, name, value }));
  }
  for (const v of attrs(m, 'ssrc-group')) {
    const [semantics, ...ssrcs] = v.split(' ').filter(Boolean);
    d.children.push(node('ssrc-group', { xmlns: NS.SSMA, semantics },
      ssrcs.map((ssrc) => node('source', { ssrc }))));
  }
  for (const v of attrs(m, 'rid')) {
    const [id, direction] = v.split(' ');
    d.children.push(node('source', {
      xmlns: NS.SSMA, rid: id, direction: direction === 'send' ? null : direction,
    }));
  }
  const simulcast = attr(m, 'simulcast');
  if (simulcast) {
    const list = simulcast.startsWith('send ') ? simulcast.slice(5) : null;
    if (list && /^[A-Za-z0-9_-]+(;[A-Za-z0-9_-]+)*$/.test(list)) {
      d.children.push(node('rid-group', { xmlns: NS.SSMA, semantics: 'SIM' },
        list.split(';').map((rid) => node('source', { rid }))));
    } else {
      d.children.push(node('simulcast', { xmlns: NS.SDP, value: simulcast }));
    }
  }
  const msid = attr(m, 'msid');
  if (msid) d.children.push(node('msid', { xmlns: NS.SDP, value: msid }));
  return d;
}
