// SDP text <-> a small model: session lines and media sections, each a
// list of `a=` attributes in order. Only what the meeting page needs.

/** Parses SDP text into { session: [{name, value}], media: [Media] }. */
export function parseSdp(text) {
  const session = [];
  const media = [];
  let current = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (line.length < 2 || line[1] !== '=') continue;
    const kind = line[0];
    const rest = line.slice(2);
    if (kind === 'm') {
      const [type, port, proto, ...formats] = rest.split(' ');
      current = { type, port: Number(port), proto, formats, attrs: [] };
      media.push(current);
    } else if (kind === 'a') {
      const colon = rest.indexOf(':');
      const attr = colon < 0
        ? { name: rest, value: null }
        : { name: rest.slice(0, colon), value: rest.slice(colon + 1) };
      (current ? current.attrs : session).push(attr);
    }
  }
  return { session, media };
}

/** The value of the first attribute `name` of `section` (or null). */
export function attr(section, name) {
  const a = section.attrs.find((x) => x.name === name);
  return a ? a.value : null;
}

/** Every value of attribute `name` of `section`. */
export function attrs(section, name) {
  return section.attrs.filter((x) => x.name === name).map((x) => x.value);
}

/** The `a=candidate` value for a Jingle candidate's attributes. */
export function formatCandidate(c) {
  let s = `${c.foundation} ${c.component} ${c.protocol} ${c.priority} ${c.ip} ${c.port} typ ${c.type}`;
  if (c['rel-addr']) s += ` raddr ${c['rel-addr']} rport ${c['rel-port']}`;
  if (c.tcptype) s += ` tcptype ${c.tcptype}`;
  if (c.generation) s += ` generation ${c.generation}`;
  return s;
}

/** A Jingle candidate's attributes from an `a=candidate` value (or null). */
export function parseCandidate(value) {
  const p = value.split(' ');
  if (p.length < 8 || p[6] !== 'typ') return null;
  const c = {
    foundation: p[0],
    component: p[1],
    protocol: p[2].toLowerCase(),
    priority: p[3],
    ip: p[4],
    port: p[5],
    type: p[7],
  };
  for (let i = 8; i + 1 < p.length; i += 2) {
    const [key, val] = [p[i], p[i + 1]];
    if (key === 'raddr') c['rel-addr'] = val;
    else if (key === 'rport') c['rel-port'] = val;
    else if (key === 'tcptype') c.tcptype = val;
    else if (key === 'generation') c.generation = val;
    else if (key === 'network-id') c.network = val;
  }
  c.id = Math.random().toString(36).slice(2, 12);
  return c;
}
