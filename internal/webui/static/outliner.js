// outliner.js: one object (#/object/TARGET): its slots, parents and
// inherited slots, data slots and methods edited in place, and an
// evaluator with self bound to it.

import { call, coalesced, onEvent } from './api.js';
import { h, clear, oidLink, refOID, routeLink, renderValue, errorBox, rememberNames } from './dom.js';
import { highlight, numbered } from './highlight.js';
import { evaluator } from './evaluator.js';
import { provenance, docstring } from './provenance.js';

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
// function to call when the page is left. With at (a TID), the object is
// shown as that transaction left it, read-only.
export function showObject(main, target, at = null) {
  // editing says whether a form is open in the outliner (an edit, add
  // slot, clone): the page is not read again under it. It asks the page
  // itself, so a form thrown away with the rest is never counted.
  const state = { oid: null, at, editing: () => outline.querySelector('.slot-form, .slot-editor, .method-editor') !== null };
  const outline = h('section', { id: 'outliner', class: at ? 'outliner as-of' : 'outliner', data: { at: at || '' } },
    h('p', { class: 'loading' }, 'Loading…'));
  const evalBox = h('section', { id: 'evaluator', class: 'evaluator' });
  clear(main, outline, at ? null : evalBox);
  const load = async () => {
    try {
      const args = { target: at ? target : await resolve(target) };
      if (at) args.tid = at;
      const view = await call('inspect', args);
      state.oid = refOID(view.oid);
      renderOutline(outline, view, state, load);
      // What an evaluation commits comes back as an event, which reloads
      // the object if it wrote it; without the event stream, reload.
      if (!at && !evalBox.firstChild) evaluator(evalBox, () => state.oid, () => { if (!eventsOpen()) later(); });
    } catch (err) {
      clear(outline, errorBox(err));
    }
  };
  // Reloads after events and evaluations never overlap: an older view
  // never lands over a newer one.
  // A form opened meanwhile is not thrown away: the reload is dropped.
  const later = coalesced(async () => { if (!state.editing()) await load(); }, 50);
  load();
  if (at) return () => {};
  // Another client's commit that wrote this object reloads it, unless an
  // edit is open.
  return onEvent((topic, data) => {
    if (!topic.startsWith('commit.') || !data || state.editing()) return;
    if ((data.oids || []).some((r) => refOID(r) === state.oid)) later();
  });
}

function eventsOpen() {
  return document.getElementById('events-state')?.dataset.state === 'open';
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
  if (!state.at) {
    // Names as of a past transaction would label today's references.
    rememberNames(view.names);
    if (view.name) rememberNames({ [oid]: view.name });
  }
  const tools = h('div', { class: 'object-tools' });
  clear(outline,
    h('h1', { class: 'object-title' },
      h('span', { class: 'object-name' }, view.name ?? '(no name)'), ' ',
      h('span', { class: 'object-oid', data: { oid } }, oid)),
    state.at ? h('p', { class: 'as-of-note' }, `As transaction ${state.at} left it: read-only. `,
      routeLink(`#/object/${oid}`, 'the object now', { id: 'now-link' })) : null,
    h('p', { class: 'object-links' }, routeLink(`#/history/${oid}`, 'history', { id: 'history-link' }),
      state.at ? null : [' · ', actionButton('add-slot', 'add slot', () => addSlot(tools, oid, state, reload)),
        ' · ', actionButton('clone', 'clone', () => cloneObject(tools, oid, view, state))]),
    tools,
    parentsList(view.parents || []),
    h('h2', {}, 'Slots'),
    slotTable(view.own || [], false, oid, state, reload),
    h('h2', {}, 'Inherited'),
    slotTable(view.inherited || [], true, oid, state, reload));
}

function actionButton(id, label, onclick) {
  return h('button', { id, type: 'button', class: 'tool', onclick }, label);
}

// addSlot opens the form that adds a slot: data (a Starlark expression,
// self bound to the object) or a method (its source).
function addSlot(tools, oid, state, reload) {
  const name = h('input', { id: 'new-slot-name', type: 'text', placeholder: 'name', spellcheck: 'false' });
  const kind = h('select', { id: 'new-slot-kind' }, h('option', { value: 'data' }, 'data'), h('option', { value: 'method' }, 'method'));
  const body = h('textarea', { id: 'new-slot-value', rows: 3, spellcheck: 'false', placeholder: 'a Starlark expression; self is this object' });
  const out = h('div', { class: 'edit-result' });
  kind.addEventListener('change', () => {
    body.placeholder = kind.value === 'method' ? 'def NAME(self):\n    ...' : 'a Starlark expression; self is this object';
    if (kind.value === 'method' && body.value === '' && identifier.test(name.value)) body.value = `def ${name.value}(self):\n    return None\n`;
  });
  const accept = h('button', { class: 'accept', type: 'button' }, 'add');
  const cancel = h('button', { class: 'cancel', type: 'button' }, 'cancel');
  const close = (changed) => {
    tools.replaceChildren();
    if (changed) reload();
  };
  accept.addEventListener('click', async () => {
    const n = name.value.trim();
    if (n === '') { clear(out, errorBox({ kind: 'bad_request', message: 'a slot needs a name' })); return; }
    try {
      if (kind.value === 'method') {
        await call('method_set', { target: oid, name: n, source: body.value, from: 'web UI' });
      } else {
        await call('eval', { code: `set_slot(self, ${JSON.stringify(n)}, ${body.value.trim() || 'None'})`, self: oid });
      }
      close(true);
    } catch (err) {
      const line = errorLine(err);
      clear(out, errorBox(err, line && kind.value === 'method' ? `at line ${line}` : null),
        line && kind.value === 'method' ? numbered(body.value, line) : null);
    }
  });
  cancel.addEventListener('click', () => close(false));
  clear(tools, h('div', { class: 'slot-form', id: 'add-slot-form' }, h('h3', {}, 'Add a slot'),
    h('div', { class: 'buttons' }, name, kind), body, h('div', { class: 'buttons' }, accept, cancel), out));
  name.focus();
}

// cloneObject clones the object into a slot of it: a clone nothing
// refers to would go with the next pack.
function cloneObject(tools, oid, view, state) {
  const taken = new Set((view.own || []).map((s) => s.name));
  const base = `${identifier.test(view.name || '') ? view.name : 'object'}_clone`;
  let free = base;
  for (let n = 2; taken.has(free); n++) free = `${base}${n}`;
  const slot = h('input', { id: 'clone-slot', type: 'text', spellcheck: 'false', value: free });
  const out = h('div', { class: 'edit-result' });
  const accept = h('button', { class: 'accept', type: 'button' }, 'clone');
  const cancel = h('button', { class: 'cancel', type: 'button' }, 'cancel');
  const close = () => { tools.replaceChildren(); };
  accept.addEventListener('click', async () => {
    const n = slot.value.trim();
    // A slot that exists is not overwritten (what it held could go with
    // the next pack), and a parent slot would make the object delegate
    // to its own clone.
    if (taken.has(n) || n.endsWith('*') || n === '') {
      clear(out, errorBox({ kind: 'bad_request', message: n === '' ? 'the clone needs a slot to be kept in' :
        n.endsWith('*') ? `${n} would be a parent slot: the object would delegate to its clone` : `${n} is taken: choose a free slot` }));
      return;
    }
    try {
      const res = await call('eval', { code: `c = clone(self)\nset_slot(self, ${JSON.stringify(n)}, c)\noid(c)`, self: oid });
      const made = refOID(res.value);
      close();
      if (made) location.hash = `#/object/${made}`;
    } catch (err) {
      clear(out, errorBox(err));
    }
  });
  cancel.addEventListener('click', close);
  clear(tools, h('div', { class: 'slot-form', id: 'clone-form' }, h('h3', {}, 'Clone'),
    h('p', { class: 'hint' }, 'The clone shares this object\'s parents and copies its slots; it is kept in this slot of the object:'),
    h('div', { class: 'buttons' }, slot, accept, cancel), out));
  slot.focus();
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
    if (kind === 'method') {
      const doc = docstring(slot.method);
      clear(body, doc ? h('p', { class: 'docstring' }, doc) : null, h('pre', { class: 'source' }, highlight(slot.method)),
        h('details', { class: 'block provenance-block', data: { key: `provenance-${slot.name}` } },
          h('summary', {}, Number.isInteger(slot.meta?.cycle) ? `provenance: learned in cycle ${slot.meta.cycle}` : 'provenance'),
          provenance(slot, inherited || state.at ? null : oid, `#/history/${refOID(slot.owner) || oid}`, reload)));
    } else clear(body, renderValue(slot.value, slot.repr));
  };
  show();
  if (state.at) return row;
  let removeButton = null;
  if (!inherited) {
    const remove = h('button', { class: 'remove', type: 'button', title: `remove ${slot.name} (undo brings it back)` }, 'remove');
    remove.addEventListener('click', async () => {
      const warning = kind === 'parent' ? ` It is a parent slot: ${oid} stops delegating to what it points to.` : '';
      if (!confirm(`Remove slot ${slot.name} of ${oid}?${warning} An undo brings it back.`)) return;
      try {
        await call('slot_remove', { target: oid, name: slot.name });
        reload();
      } catch (err) {
        body.append(errorBox(err));
      }
    });
    removeButton = remove;
  }
  if (!inherited && (kind === 'data' || kind === 'method')) {
    const edit = h('button', { class: 'edit', type: 'button' }, 'edit');
    edit.addEventListener('click', () => {
      edit.hidden = true;
      const done = (changed) => {
        edit.hidden = false;
        if (changed) reload(); else show();
      };
      if (kind === 'method') editMethod(body, slot, oid, done);
      else editData(body, slot, oid, done);
    });
    head.append(edit);
  }
  if (removeButton) head.append(removeButton);
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
