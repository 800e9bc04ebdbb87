// evaluator.js: Starlark evaluated with self bound to the open object.
// "do it" runs the code and shows what it printed; "print it" shows its
// value too; "inspect it" opens the outliner of the object it answers
// (any other value is shown opened up). One session per page load
// carries variables between evals.

import { call, onEvent } from './api.js';
import { h, clear, errorBox, renderValue, refOID, routeLink } from './dom.js';
import { handleNote, learnHelp } from './learn.js';

const session = 'webui-' + Math.random().toString(36).slice(2, 12);

const noMindNote = 'Nothing understands this message, and there is no mind to learn it: ' +
  'no inference server has answered (see batos run -llm).';

// structured is whether a value shows more than its repr: a reference
// (a link) or a container (paginated, its references linked).
function structured(v) {
  return v !== null && typeof v === 'object' && !('$repr' in v);
}

// evaluator fills box with the evaluator; oid answers the object bound
// as self, and changed is called after an eval that may have written.
export function evaluator(box, oid, changed) {
  const code = h('textarea', { id: 'eval-code', rows: 5, spellcheck: 'false', placeholder: 'self.name' });
  const out = h('div', { id: 'eval-result', class: 'eval-result' });
  const run = async (print, inspect = false) => {
    clear(out, h('p', { class: 'loading' }, 'Running…'));
    // A message nothing understands waits while a cycle learns it: the
    // cycle is linked as soon as its events say it moved.
    const waiting = h('p', { class: 'learn-cycle waiting' });
    const stopWatching = onEvent((topic, data) => {
      if (topic !== 'cycle.transition' || !data || !Number.isInteger(data.id) || typeof data.selector !== 'string') return;
      if (data.selector === '' || !code.value.includes(data.selector)) return;
      clear(waiting, `Waiting while cycle ${data.id} learns ${data.selector} (${data.state}): `,
        routeLink(`#/cycle/${data.id}`, 'follow it live', { class: 'cycle-link' }));
      if (!waiting.isConnected) out.append(waiting);
    });
    try {
      const res = await call('eval', { code: code.value, session, self: oid() });
      const target = inspect ? refOID(res.value) : null;
      if (target) {
        changed();
        location.hash = `#/object/${target}`;
        return;
      }
      if (inspect) {
        clear(out, res.output ? h('pre', { class: 'eval-output' }, res.output) : null,
          h('div', { class: 'eval-value inspected' }, h('p', { class: 'hint' }, 'Not an object: its value, opened up.'),
            h('pre', { class: 'eval-repr' }, res.repr), renderValue(res.value, res.repr)));
        changed();
        return;
      }
      clear(out,
        res.output ? h('pre', { class: 'eval-output' }, res.output) : null,
        handleNote(res.value),
        print ? h('div', { class: 'eval-value' }, h('pre', { class: 'eval-repr' }, res.repr), structured(res.value) ? renderValue(res.value, res.repr) : null) : null,
        res.dropped?.length ? h('p', { class: 'hint' }, `Not kept for the next eval: ${res.dropped.join(', ')}`) : null,
        !print && !res.output ? h('p', { class: 'hint eval-done' }, 'Done.') : null);
      changed();
    } catch (err) {
      clear(out, errorBox(err, err.kind === 'no_mind' ? noMindNote : null), learnHelp(err, out));
    } finally {
      stopWatching();
    }
  };
  const doIt = h('button', { id: 'do-it', type: 'button' }, 'do it');
  const printIt = h('button', { id: 'print-it', type: 'button' }, 'print it');
  const inspectIt = h('button', { id: 'inspect-it', type: 'button' }, 'inspect it');
  doIt.addEventListener('click', () => run(false));
  printIt.addEventListener('click', () => run(true));
  inspectIt.addEventListener('click', () => run(true, true));
  code.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(true); }
  });
  clear(box, h('h2', {}, 'Evaluator'), h('p', { class: 'hint' }, 'Starlark; self is this object. Ctrl+Enter prints it.'),
    code, h('div', { class: 'buttons' }, doIt, printIt, inspectIt), out);
}
