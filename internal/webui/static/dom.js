// dom.js: building elements. Text goes in as text (textContent), never
// as markup; links to objects are built from OIDs only.

// h makes an element: attrs sets properties and attributes (class,
// dataset keys as data-*, on* handlers), children are nodes or text.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k === 'href') throw new Error('h: links are made by oidLink or routeLink');
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// clear empties el and fills it with children.
export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const oidPattern = /^oid:[0-9]{1,20}$/;

// refOID is the OID text of a value that is an object reference
// ({"$ref": "oid:7"}, or "oid:7" where a field holds one), else null.
export function refOID(v) {
  const s = v && typeof v === 'object' ? v.$ref : v;
  return typeof s === 'string' && oidPattern.test(s) ? s : null;
}

// knownNames are the names inspect gave for the objects references point
// to ("names"): labels only, so one gone stale misleads nobody for long.
const knownNames = new Map();
const MAX_KNOWN = 5000;

// rememberNames keeps the names of a {"oid:N": name} map.
export function rememberNames(names) {
  for (const [oid, name] of Object.entries(names || {})) {
    if (!oidPattern.test(oid) || typeof name !== 'string') continue;
    if (knownNames.size >= MAX_KNOWN) knownNames.delete(knownNames.keys().next().value);
    knownNames.set(oid, name);
  }
}

// oidLink links to the outliner of the object v refers to, labelled
// with its OID and name (given, or one inspect told); a v that is no
// reference is text.
export function oidLink(v, name) {
  const oid = refOID(v);
  name = name || (oid ? knownNames.get(oid) : null);
  const label = name ? `${name} (${oid})` : oid;
  if (!oid) return h('span', { class: 'bad-ref' }, String(name ?? v));
  return routeLink(`#/object/${oid}`, label, { class: 'ref', data: { oid } });
}

// routeLink links to one of the app's routes, which the app writes
// itself (never text from the image).
export function routeLink(route, label, attrs = {}) {
  if (!/^#\/[a-z]+(\/[A-Za-z0-9:._-]*){0,2}$/.test(route)) throw new Error('routeLink: not a route');
  const a = h('a', attrs, label);
  a.href = route;
  return a;
}

// formatTime shows an RFC 3339 time in the browser's zone, to the second.
export function formatTime(t) {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t ?? '') : d.toLocaleString();
}

// errorBox shows an API error (or any error): its kind and message, the
// message whole (a Starlark backtrace keeps its lines).
export function errorBox(err, extra) {
  const kind = err.kind || 'error';
  return h('div', { class: 'error', data: { kind } },
    h('span', { class: 'error-kind' }, kind),
    extra ? h('p', { class: 'error-note' }, extra) : null,
    h('pre', { class: 'error-message' }, err.message || String(err)));
}

// PAGE is how many items of a container show before "more".
export const PAGE = 100;

// renderValue shows an image value as the HTTP API gives it: scalars as
// their JSON text, references as links, containers as lists that show
// PAGE items at a time.
export function renderValue(v, repr) {
  if (v === null) return h('span', { class: 'v v-none' }, 'None');
  if (typeof v === 'boolean') return h('span', { class: 'v v-bool' }, v ? 'True' : 'False');
  if (typeof v === 'number') return h('span', { class: 'v v-num' }, repr ?? String(v));
  if (typeof v === 'string') return h('span', { class: 'v v-str' }, JSON.stringify(v));
  if (Array.isArray(v)) return container('list', v.map((x, i) => [String(i), x]));
  if (refOID(v)) return oidLink(v);
  if ('$method' in v) return h('span', { class: 'v v-method' }, 'method');
  if ('$blob' in v) return h('span', { class: 'v v-blob' }, `blob ${v.$blob} (${v.size} bytes)`);
  if ('$primitive' in v) return h('span', { class: 'v v-prim' }, `primitive ${v.$primitive}`);
  if ('$repr' in v && '$type' in v) return h('span', { class: 'v v-repr', data: { type: v.$type } }, v.$repr);
  if ('$bin' in v) return h('span', { class: 'v v-bin' }, `bytes (base64 ${v.$bin.length > 64 ? v.$bin.slice(0, 64) + '…' : v.$bin})`);
  if ('$float' in v) return h('span', { class: 'v v-num' }, v.$float);
  return container('dict', Object.entries(v));
}

function container(kind, entries) {
  const list = h('ol', { class: `v v-${kind}`, data: { count: entries.length } });
  const head = h('span', { class: 'v-count' }, `${kind} of ${entries.length}`);
  let shown = 0;
  const more = h('button', { class: 'more', type: 'button' }, 'more');
  const showMore = () => {
    const next = entries.slice(shown, shown + PAGE);
    for (const [k, x] of next) list.append(h('li', { class: 'item' }, h('span', { class: 'key' }, k), ': ', renderValue(x)));
    shown += next.length;
    more.hidden = shown >= entries.length;
    more.textContent = `more (${entries.length - shown} left)`;
  };
  more.addEventListener('click', showMore);
  showMore();
  return h('div', { class: 'container' }, head, list, more);
}
