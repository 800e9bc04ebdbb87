// provenance.js: where a method came from. A method a cycle installed
// records the cycle, its personas, models and tests, and the version it
// replaced (inspect's "meta"): shown with a diff against that version and
// a revert. A method set by hand records nothing; its earlier versions
// are in the object's history.

import { call } from './api.js';
import { h, clear, errorBox, routeLink } from './dom.js';
import { diffView } from './diff.js';
import { highlight } from './highlight.js';

// DOC_SCAN is how much of a source docstring reads: the docstring opens
// the body, so a method of a million blank lines costs no more than one.
const DOC_SCAN = 8192;

// docstring is a method's docstring: the string literal that opens its
// body (after the line that ends its signature with ":"), else "". It
// reads lines one by one, never backtracking.
export function docstring(source) {
  const lines = source.slice(0, DOC_SCAN).split('\n');
  let i = 0;
  while (i < lines.length && !/^\s*def\s/.test(lines[i])) i++;
  while (i < lines.length && !lines[i].trimEnd().endsWith(':')) i++;
  i++;
  while (i < lines.length && lines[i].trim() === '') i++;
  if (i >= lines.length) return '';
  const first = lines[i].trimStart();
  const quote = ['"""', "'''", '"', "'"].find((q) => first.startsWith(q));
  if (!quote) return '';
  const rest = [first.slice(quote.length), ...lines.slice(i + 1)].join('\n');
  const end = rest.indexOf(quote);
  if (end < 0 || (quote.length === 1 && rest.slice(0, end).includes('\n'))) return '';
  return rest.slice(0, end).trim();
}

function list(v) {
  return Array.isArray(v) ? v.map(String) : [];
}

// provenance draws a method slot's provenance into a block, with the
// previous version's diff and a revert button when meta records one;
// reverted is called after a revert committed. oid is the object, null
// when it is shown read-only (as of a past transaction).
export function provenance(slot, oid, history, reverted) {
  const meta = slot.meta;
  if (!meta || typeof meta !== 'object') {
    return h('p', { class: 'provenance hint' }, 'No cycle installed it (it was set by hand, or came with the image): it records no provenance; ',
      routeLink(history, 'its earlier versions are in the history'), '.');
  }
  const cycle = Number.isInteger(meta.cycle) ? meta.cycle : null;
  const rows = [
    ['origin', meta.origin],
    ['cycle', cycle ? routeLink(`#/cycle/${cycle}`, `cycle ${cycle}`, { class: 'cycle-link' }) : null],
    ['personas', list(meta.personas).join(', ')],
    ['models', list(meta.models).join(', ')],
    ['attempts', meta.attempts],
    ['installed', meta.installed_at],
    ['improves', meta.improves ? `${meta.improves} (audit ${meta.audit}, proposal ${meta.proposal})` : null],
    ['sources', list((meta.sources || []).map((s) => (s && typeof s === 'object' ? `${s.title}#${s.position}` : String(s)))).join(', ')],
  ].filter(([, v]) => v !== undefined && v !== null && v !== '');
  const tests = list(meta.tests);
  const box = h('div', { class: 'provenance', data: { cycle: cycle ?? '' } },
    h('dl', { class: 'fields' }, rows.map(([k, v]) => h('div', { class: 'field' }, h('dt', {}, k), h('dd', {}, v)))),
    tests.length ? [h('h3', {}, `Tests (${tests.length})`), h('ul', { class: 'tests' }, tests.map((t) => h('li', {}, h('code', {}, t))))] : null);
  if (!('previous' in meta)) return box;
  const prev = meta.previous;
  const status = h('div', { class: 'revert-status' });
  let before;
  let label;
  if (prev === null) {
    label = 'Before this cycle the slot did not exist: revert removes it.';
    before = '';
  } else if (typeof prev === 'object' && typeof prev.method === 'string') {
    label = 'The version it replaced, and what changed:';
    before = prev.method;
  } else {
    label = 'Before this cycle the slot held a value: revert restores it.';
    before = null;
  }
  const revert = oid ? h('button', { class: 'revert', type: 'button' }, 'revert to the previous version') : null;
  if (revert) {
    revert.addEventListener('click', async () => {
      if (!confirm(`Revert ${slot.name} to what it was before cycle ${cycle ?? ''}?`)) return;
      try {
        const r = await call('method_revert', { target: oid, name: slot.name });
        clear(status, h('p', { class: 'notice' }, `Reverted in ${r.tid}: the slot holds ${r.restored}.`));
        reverted();
      } catch (err) {
        clear(status, errorBox(err));
      }
    });
  }
  // The diff is made when the block is first opened: an outliner of many
  // learned methods does not diff them all to show their names.
  const previous = h('details', { class: 'block previous', data: { key: `previous-${slot.name}` } },
    h('summary', {}, 'previous version'));
  let filled = false;
  previous.addEventListener('toggle', () => {
    if (!previous.open || filled) return;
    filled = true;
    previous.append(h('p', { class: 'hint' }, label),
      before === null ? h('pre', {}, JSON.stringify(prev.value)) : diffView(before, slot.method),
      before ? h('details', { class: 'block' }, h('summary', {}, 'the previous source'), h('pre', { class: 'source' }, highlight(before))) : null,
      revert, status);
  });
  box.append(previous);
  return box;
}
