// outliner.js: one object (#/object/TARGET): its slots, parents and
// inherited slots, data slots and methods edited in place, and an
// evaluator with self bound to it.

import { call, onEvent } from './api.js';
import { h, clear, oidLink, refOID, routeLink, renderValue, errorBox } from './dom.js';
import { highlight, numbered } from './highlight.js';
import { evaluator } from './evaluator.js';

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

// slotKind is what a slot holds: "method", "parent", "blob", "primitive"
// or "data".
export function slotKind(slot) {
  if ('method' in slot) return 'method';
  if (slot.name.endsWith('*')) return 'parent';
  const v = slot.value;
  if (v && typeof v === 'object' && '$blob' in v) return 'blob';
  if (v && typeof v === 'object' && '$primitive' in v) return 'primitive';
  return 'data';
}

const icons = { method: 'ƒ', parent: '↑', blob: '▤', primitive: '⚙', data: '•' };

// showObject renders the outliner of target into main; it answers a
// function to call when the page is left.
export function showObject(main, target) {
  const state = { oid: null, editing: 0 };
  const outline = h('section', { id: 'outliner', class: 'outliner' }, h('p', { class: 'loading' }, 'Loading…'));
  const evalBox = h('section', { id: 'evaluator', class: 'evaluator' });
  clear(main, outline, evalBox);
  const load = async () => {
    try {
      const view = await call('inspect', { target: await resolve(target) });
      state.oid = refOID(view.oid);
      renderOutline(outline, view, state, load);
      if (!evalBox.firstChild) evaluator(evalBox, () => state.oid, () => { if (state.editing === 0) load(); });
    } catch (err) {
      clear(outline, errorBox(err));
    }
  };
  load();
  // Another client's commit that wrote this object reloads it, unless an
  // edit is open.
  return onEvent((topic, data) => {
    if (!topic.startsWith('commit.') || !data || state.editing > 0) return;
    if ((data.oids || []).some((r) => refOID(r) === state.oid)) load();
  });
}

// resolve answers target as inspect takes it: a dotted path
// (genesis.child), which only eval's self reads, becomes its OID.
async function resolve(target) {
  if (!target.includes('.') || refOID(target)) return target;
  const res = await call('eval', { code: 'oid(self)', self: target });
  return refOID(res.value) || target;
}

function renderOutline(outline, view, state, reload) {
  const oid = refOID(view.oid);
  clear(outline,
    h('h1', { class: 'object-title' },
      h('span', { class: 'object-name' }, view.name ?? '(no name)'), ' ',
      h('span', { class: 'object-oid', data: { oid } }, oid)),
    h('p', { class: 'object-links' }, routeLink(`#/history/${oid}`, 'history', { id: 'history-link' })),
    parentsList(view.parents || []),
    h('h2', {}, 'Slots'),
    slotTable(view.own || [], false, oid, state, reload),
    h('h2', {}, 'Inherited'),
    slotTable(view.inherited || [], true, oid, state, reload));
}

function parentsList(parents) {
  if (parents.length === 0) return h('p', { class: 'parents none' }, 'No parents.');
  return h('p', { class: 'parents' }, 'Parents: ', parents.map((p, i) => [
    i > 0 ? ', ' : '', h('span', { class: 'parent', data: { slot: p.slot } }, `${p.slot} → `, oidLink(p.oid, p.name))]));
}

// SLOT_PAGE is how many slots a table shows before "more": an object of
// 10,000 slots renders its first page at once, not all of them.
const SLOT_PAGE = 200;

function slotTable(slots, inherited, oid, state, reload) {
  if (slots.length === 0) return h('p', { class: 'none' }, inherited ? 'Nothing inherited.' : 'No slots.');
  const list = h('ul', { class: inherited ? 'slots inherited' : 'slots own', data: { count: slots.length } });
  const more = h('button', { class: 'more slots-more', type: 'button' });
  let shown = 0;
  const showMore = () => {
    const next = slots.slice(shown, shown + SLOT_PAGE);
    list.append(...next.map((s) => slotRow(s, inherited, oid, state, reload)));
    shown += next.length;
    more.hidden = shown >= slots.length;
    more.textContent = `more slots (${slots.length - shown} left)`;
  };
  more.addEventListener('click', showMore);
  showMore();
  return h('div', { class: 'slot-table' }, list, more);
}

function slotRow(slot, inherited, oid, state, reload) {
  const kind = slotKind(slot);
  const row = h('li', { class: `slot kind-${kind}`, data: { name: slot.name, kind } });
  const head = h('div', { class: 'slot-head' },
    h('span', { class: 'icon', title: kind }, icons[kind]),
    h('span', { class: 'slot-name' }, slot.name),
    slot.deprecated ? h('span', { class: 'deprecated' }, 'deprecated') : null,
    inherited ? h('span', { class: 'owner' }, 'from ', oidLink(slot.owner, slot.owner_name)) : null);
  const body = h('div', { class: 'slot-body' });
  row.append(head, body);
  const show = () => {
    if (kind === 'method') clear(body, h('pre', { class: 'source' }, highlight(slot.method)));
    else clear(body, renderValue(slot.value, slot.repr));
  };
  show();
  if (!inherited && (kind === 'data' || kind === 'method')) {
    const edit = h('button', { class: 'edit', type: 'button' }, 'edit');
    edit.addEventListener('click', () => {
      edit.hidden = true;
      state.editing++;
      const done = (changed) => {
        state.editing--;
        edit.hidden = false;
        if (changed) reload(); else show();
      };
      if (kind === 'method') editMethod(body, slot, oid, done);
      else editData(body, slot, oid, done);
    });
    head.append(edit);
  }
  return row;
}

// editData edits a data slot as an expression, evaluated with self bound
// to the object.
function editData(body, slot, oid, done) {
  const input = h('textarea', { class: 'slot-editor', rows: 2, spellcheck: 'false' });
  input.value = slot.repr ?? '';
  const out = h('div', { class: 'edit-result' });
  const accept = h('button', { class: 'accept', type: 'button' }, 'accept');
  const cancel = h('button', { class: 'cancel', type: 'button' }, 'cancel');
  const name = JSON.stringify(slot.name);
  accept.addEventListener('click', async () => {
    const code = identifier.test(slot.name) ? `self.${slot.name} = ${input.value}` : `set_slot(self, ${name}, ${input.value})`;
    try {
      await call('eval', { code, self: oid });
      done(true);
    } catch (err) {
      clear(out, errorBox(err));
    }
  });
  cancel.addEventListener('click', () => done(false));
  clear(body, h('p', { class: 'hint' }, 'A Starlark expression; self is this object.'), input,
    h('div', { class: 'buttons' }, accept, cancel), out);
  input.focus();
}

// editMethod edits a method's source in place through method_set; a
// refusal shows its message, and the line it names.
function editMethod(body, slot, oid, done) {
  const input = h('textarea', { class: 'method-editor', rows: Math.min(30, slot.method.split('\n').length + 2), spellcheck: 'false' });
  input.value = slot.method;
  const out = h('div', { class: 'edit-result' });
  const accept = h('button', { class: 'accept', type: 'button' }, 'accept');
  const cancel = h('button', { class: 'cancel', type: 'button' }, 'cancel');
  accept.addEventListener('click', async () => {
    try {
      await call('method_set', { target: oid, name: slot.name, source: input.value, from: 'web UI' });
      done(true);
    } catch (err) {
      const line = errorLine(err);
      clear(out, errorBox(err, line ? `at line ${line}${err.detail?.col ? `, column ${err.detail.col}` : ''}` : null),
        line ? numbered(input.value, line) : null);
    }
  });
  cancel.addEventListener('click', () => done(false));
  clear(body, input, h('div', { class: 'buttons' }, accept, cancel), out);
  input.focus();
}

// errorLine is the source line an error names: its "line" field, else a
// "line N" or ":N:M:" in its message.
export function errorLine(err) {
  const d = err.detail || {};
  if (Number.isInteger(d.line) && d.line > 0) return d.line;
  const m = /line (\d+)|:(\d+):\d+:/.exec(err.message || '');
  return m ? Number(m[1] || m[2]) : 0;
}
