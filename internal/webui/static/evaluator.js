// evaluator.js: Starlark evaluated with self bound to the open object.
// "do it" runs the code and shows what it printed; "print it" shows its
// value too. One session per page load carries variables between evals.

import { call } from './api.js';
import { h, clear, errorBox, renderValue } from './dom.js';
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
  const run = async (print) => {
    clear(out, h('p', { class: 'loading' }, 'Running…'));
    try {
      const res = await call('eval', { code: code.value, session, self: oid() });
      clear(out,
        res.output ? h('pre', { class: 'eval-output' }, res.output) : null,
        handleNote(res.value),
        print ? h('div', { class: 'eval-value' }, h('pre', { class: 'eval-repr' }, res.repr), structured(res.value) ? renderValue(res.value, res.repr) : null) : null,
        res.dropped?.length ? h('p', { class: 'hint' }, `Not kept for the next eval: ${res.dropped.join(', ')}`) : null,
        !print && !res.output ? h('p', { class: 'hint' }, 'Done.') : null);
      changed();
    } catch (err) {
      clear(out, errorBox(err, err.kind === 'no_mind' ? noMindNote : null), learnHelp(err, out));
    }
  };
  const doIt = h('button', { id: 'do-it', type: 'button' }, 'do it');
  const printIt = h('button', { id: 'print-it', type: 'button' }, 'print it');
  doIt.addEventListener('click', () => run(false));
  printIt.addEventListener('click', () => run(true));
  code.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(true); }
  });
  clear(box, h('h2', {}, 'Evaluator'), h('p', { class: 'hint' }, 'Starlark; self is this object. Ctrl+Enter prints it.'),
    code, h('div', { class: 'buttons' }, doIt, printIt), out);
}
