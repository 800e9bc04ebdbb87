// api.js: the HTTP API (docs/protocol.md, "HTTP") as the app uses it.

let csrf = null;

// ApiError is a command's refusal: kind, message and the rest of the
// reply's error (line, col, cycle, path).
export class ApiError extends Error {
  constructor(error, status) {
    super(error.message || error.kind || `HTTP ${status}`);
    this.kind = error.kind || 'internal';
    this.detail = error;
    this.status = status;
  }
}

// asking is the session request under way: calls made at once share it,
// so their token matches the one cookie the last answer set.
let asking = null;

function session() {
  if (asking) return asking;
  asking = (async () => {
    try {
      const resp = await fetch('/api/v1/session', { credentials: 'same-origin' });
      const reply = await resp.json();
      if (!reply.ok) throw new ApiError(reply.error || {}, resp.status);
      csrf = reply.result.csrf;
    } finally {
      asking = null;
    }
  })();
  return asking;
}

// call runs a command with args (an object) and answers its result, or
// throws an ApiError.
export async function call(command, args = {}, retried = false) {
  if (csrf === null) await session();
  const resp = await fetch('/api/v1/' + encodeURIComponent(command), {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-Batos-CSRF': csrf },
    body: JSON.stringify(args),
  });
  if (!(resp.headers.get('Content-Type') || '').includes('json')) {
    // Refused before the command ran (the server's guard answers in
    // plain text): a CSRF cookie gone is mended by a new token, once.
    if (resp.status === 403 && !retried) {
      csrf = null;
      return call(command, args, true);
    }
    const text = (await resp.text()).trim();
    throw new ApiError({ kind: resp.status === 401 ? 'unauthorised' : 'refused', message: `HTTP ${resp.status}: ${text}` }, resp.status);
  }
  const reply = await resp.json();
  if (!reply.ok) throw new ApiError(reply.error || {}, resp.status);
  return reply.result;
}

// listeners are called with (topic, data) for every event.
const listeners = new Set();

// onEvent registers fn for events; it answers a function removing it.
export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// connectEvents opens the event stream and reports its state
// ("connecting", "open", "closed") to onState. EventSource reconnects
// by itself.
export function connectEvents(onState) {
  const es = new EventSource('/api/v1/events?topics=commit.,cycle.');
  onState('connecting');
  es.onopen = () => onState('open');
  es.onerror = () => onState(es.readyState === EventSource.CLOSED ? 'closed' : 'connecting');
  const topics = ['commit.send', 'commit.eval', 'commit.undo', 'commit.method', 'commit.slot', 'commit.persona',
    'commit.model', 'commit.cycle', 'commit.catalog', 'commit.audit', 'commit.proposal',
    'commit.heartbeat', 'commit.telemetry', 'commit.awaken', 'commit.other',
    'cycle.transition', 'cycle.delivered', 'cycle.step', 'lost'];
  for (const topic of topics) {
    es.addEventListener(topic, (ev) => {
      let data = null;
      try { data = JSON.parse(ev.data); } catch { /* not JSON: keep null */ }
      for (const fn of listeners) fn(topic, data);
    });
  }
  return es;
}

// coalesced answers a function that runs load wait ms after it is first
// called, once for a burst of calls; a call while load runs runs it once
// more when it ends. Loads never overlap, so an older answer never lands
// over a newer one, and the last call is always followed by a load.
export function coalesced(load, wait) {
  let timer = null;
  let running = false;
  let again = false;
  const run = async () => {
    timer = null;
    running = true;
    again = false;
    try {
      await load();
    } finally {
      running = false;
      if (again) schedule();
    }
  };
  const schedule = () => {
    if (running) { again = true; return; }
    if (timer === null) timer = setTimeout(run, wait);
  };
  return schedule;
}
