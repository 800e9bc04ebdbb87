// cycles.js: the cognitive cycles (#/cycles) and one cycle (#/cycle/ID),
// read again whenever the event stream says a cycle moved.

import { call, coalesced, onEvent } from './api.js';
import { h, clear, errorBox, formatTime, oidLink, refOID, routeLink } from './dom.js';
import { highlight } from './highlight.js';
import { stateRow, setState, actions } from './cyclestate.js';

// live calls load now and again after cycle events that match, at most
// once per burst; it answers the function that stops it.
function live(load, matches) {
  load();
  const later = coalesced(load, 250);
  return onEvent((topic, data) => {
    if (topic.startsWith('cycle.') && matches(data)) later();
  });
}

function receiver(c) {
  return refOID(c.receiver) ? oidLink(c.receiver, c.receiver_name) : (c.receiver_name || c.receiver || '');
}

function cycleLink(id) {
  return Number.isInteger(id) ? routeLink(`#/cycle/${id}`, `c${id}`, { class: 'cycle-link' }) : String(id);
}

// showCycles renders the list of cycles into main.
export function showCycles(main) {
  const section = h('section', { id: 'cycles' }, h('p', { class: 'loading' }, 'Loading…'));
  clear(main, section);
  return live(async () => {
    try {
      const cycles = await call('cycle_list', { limit: 100 });
      clear(section, h('h1', {}, 'Cycles'), cycles.length === 0 ? h('p', { class: 'none' }, 'No cycles yet.') :
        h('table', { class: 'cycles' },
          h('thead', {}, h('tr', {}, ['cycle', 'state', 'receiver', 'call', 'steps', 'tokens', 'updated'].map((t) => h('th', {}, t)))),
          h('tbody', {}, cycles.map((c) => h('tr', { class: 'cycle', data: { id: c.id, state: c.state } },
            h('td', {}, cycleLink(c.id)), h('td', { class: 'state' }, c.state), h('td', {}, receiver(c)),
            h('td', { class: 'call' }, c.call || c.selector || ''), h('td', {}, String(c.step_count ?? '')),
            h('td', {}, `${c.prompt_tokens ?? 0} + ${c.completion_tokens ?? 0}`), h('td', {}, formatTime(c.updated)))))));
    } catch (err) {
      clear(section, errorBox(err));
    }
  }, () => true);
}

// showCycle renders one cycle into main: its states as a row that moves
// as cycle.transition events arrive, its actions and its record.
export function showCycle(main, id) {
  const status = h('div', { id: 'cycle-status' });
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading…'));
  const section = h('section', { id: 'cycle', data: { id } }, status, body);
  clear(main, section);
  let load = null;
  const stop = live(load = async () => {
    try {
      const c = await call('cycle_show', { cycle: id });
      const open = new Set([...body.querySelectorAll('details[open]')].map((d) => d.dataset.key));
      clear(body, cycleView(c, status, () => load()));
      for (const d of body.querySelectorAll('details')) if (open.has(d.dataset.key)) d.open = true;
    } catch (err) {
      clear(body, errorBox(err));
    }
  }, (data) => data && String(data.id) === String(id));
  const moved = onEvent((topic, data) => {
    const row = body.querySelector('#state-row');
    if (topic === 'cycle.transition' && row && data && String(data.id) === String(id) && typeof data.state === 'string') {
      setState(row, data.state, data.state === 'FAILED' ? data.from : null);
      const title = body.querySelector('h1 .state');
      if (title) { title.textContent = data.state; title.dataset.state = data.state; }
    }
  });
  return () => { stop(); moved(); };
}

function field(label, value) {
  return value === undefined || value === null || value === '' ? null : h('div', { class: 'field' }, h('dt', {}, label), h('dd', {}, value));
}

function cycleView(c, status, reload) {
  return [
    h('h1', {}, `Cycle ${c.id}`, ' ', h('span', { class: 'state', data: { state: c.state } }, c.state)),
    stateRow(c.state, c.failed_in), actions(c, status, reload),
    h('dl', { class: 'fields' },
      field('receiver', receiver(c)), field('call', c.call), field('brief', c.brief),
      field('attempt', `${c.attempt} of ${c.max_attempts}`), field('personas', (c.personas || []).join(', ')),
      field('tokens', `${c.prompt_tokens ?? 0} prompt, ${c.completion_tokens ?? 0} completion, ${Math.round(c.model_ms ?? 0)} ms`),
      field('failed in', c.failed_in), field('reason', c.reason), field('answer', c.answer),
      field('created', formatTime(c.created)), field('updated', formatTime(c.updated))),
    c.plan ? block('plan', 'Plan', h('pre', {}, JSON.stringify(c.plan, null, 2))) : null,
    h('h2', {}, 'Steps'),
    (c.steps || []).length === 0 ? h('p', { class: 'none' }, 'No steps yet.') : h('ol', { class: 'steps' }, c.steps.map(step)),
    c.code ? [h('h2', {}, 'Code'), h('pre', { class: 'source' }, highlight(c.code))] : null,
    Array.isArray(c.tests) && c.tests.length ? [h('h2', {}, `Tests (${c.tests.length})`), testTable(c)] : null,
    (c.failures || []).length ? [h('h2', {}, 'Failures'), h('ol', { class: 'failures' }, c.failures.map((f) =>
      h('li', { class: 'failure', data: { kind: f.kind } }, `attempt ${f.attempt}, ${f.kind}: `, h('pre', {}, f.message))))] : null,
    (c.deliveries || []).length ? [h('h2', {}, 'Deliveries'), h('ul', { class: 'deliveries' }, c.deliveries.map((d) =>
      h('li', { class: 'delivery', data: { state: d.state } }, `${d.call} — ${d.state}`, d.answer ? `: ${d.answer}` : '')))] : null,
    c.provenance ? block('provenance', 'Provenance', h('pre', {}, JSON.stringify(c.provenance, null, 2))) : null,
  ];
}

// testOutcome is what became of test t (its index i) in cycle c: passed
// when the cycle installed its method (every test passed), failed with
// the message of the last attempt that ran it and failed, else not yet.
function testOutcome(c, t, i) {
  if (c.state === 'COMPLETE') return { outcome: 'passed', message: '' };
  const name = t.name || `test ${i + 1}`;
  const failures = (c.failures || []).filter((f) => f.kind === 'test' && typeof f.message === 'string');
  for (let k = failures.length - 1; k >= 0; k--) {
    const line = failures[k].message.split('\n').findIndex((l) => l.startsWith(`${name}: `));
    if (line >= 0) return { outcome: `failed in attempt ${failures[k].attempt}`, message: failures[k].message };
  }
  return { outcome: c.state === 'FAILED' ? 'not run to the end' : 'not run yet', message: '' };
}

function testTable(c) {
  return h('table', { class: 'tests' },
    h('thead', {}, h('tr', {}, ['test', 'expression', 'outcome'].map((x) => h('th', {}, x)))),
    h('tbody', {}, c.tests.map((t, i) => {
      const r = testOutcome(c, t, i);
      return h('tr', { class: 'test', data: { outcome: r.outcome.split(' ')[0] } },
        h('td', {}, t.name || `test ${i + 1}`),
        h('td', {}, h('code', {}, t.expr || ''), t.fails ? h('span', { class: 'hint' }, ` (must fail mentioning "${t.fails}")`) : null),
        h('td', { class: 'outcome' }, r.outcome, r.message ? h('details', { class: 'block' }, h('summary', {}, 'message'), h('pre', {}, r.message)) : null));
    })));
}

function block(key, label, content) {
  return h('details', { class: 'block', data: { key } }, h('summary', {}, label), content);
}

function step(s, i) {
  const key = `step-${i}`;
  return h('li', { class: 'step', data: { kind: s.kind, index: i } },
    h('div', { class: 'step-head' },
      h('span', { class: 'step-kind' }, s.kind), s.attempt !== undefined ? ` attempt ${s.attempt} · ` : ' · ',
      h('span', { class: 'persona' }, s.persona || ''), ` · ${s.model || ''}${s.adapter ? ` + adapter ${s.adapter}` : ''} · `,
      `${s.prompt_tokens ?? 0} + ${s.completion_tokens ?? 0} tokens · ${Math.round(s.latency_ms ?? 0)} ms`,
      s.rejected ? h('span', { class: 'rejected' }, ` rejected: ${s.rejected}`) : null),
    block(`${key}-prompt`, 'prompt', (s.prompt || []).map((m) =>
      h('div', { class: 'message', data: { role: m.role } }, h('span', { class: 'role' }, m.role), h('pre', {}, m.content)))),
    block(`${key}-answer`, 'answer', h('pre', {}, s.answer ?? '')));
}
