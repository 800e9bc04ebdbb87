// learn.js: what the evaluator offers when a message is not understood:
// a link to the cycle learning it, and "learn it", which sends the
// message with learn: "handle" so a cycle opens at once, and goes to it.

import { call } from './api.js';
import { h, clear, errorBox, routeLink } from './dom.js';

const notUnderstood = /(oid:[0-9]{1,20})(?: \([^)]*\))? does not understand "([A-Za-z_][A-Za-z0-9_]*)"/;

// cycleOf is the cycle ID an error or a send's handle names, else null.
export function cycleOf(v) {
  const id = v && typeof v === 'object' ? Number(v.cycle) : NaN;
  return Number.isInteger(id) && id > 0 ? id : null;
}

function cycleLink(id, label) {
  return h('p', { class: 'learn-cycle' }, routeLink(`#/cycle/${id}`, label || `cycle ${id}`, { class: 'cycle-link' }));
}

// handleNote shows a send's handle ({"cycle", "joined", "state":
// "learning"}) as a link to its cycle; anything else is null.
export function handleNote(value) {
  const id = cycleOf(value);
  if (id === null || value.state !== 'learning') return null;
  return cycleLink(id, `${value.joined ? 'Joined' : 'Opened'} cycle ${id}: follow it`);
}

// learnHelp is what an error adds: the cycle it names, or, for a message
// nothing understands, a "learn it" button (its result goes to out).
export function learnHelp(err, out) {
  const id = cycleOf(err.detail);
  if (id !== null) return cycleLink(id, `Cycle ${id} (${err.kind === 'still_learning' ? 'still learning' : err.kind})`);
  const m = notUnderstood.exec(err.message || '');
  if (!m) return null;
  const [, target, selector] = m;
  const box = h('div', { class: 'learn' });
  const button = h('button', { id: 'learn-it', type: 'button' }, 'learn it');
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const res = await call('send', { target, selector, learn: 'handle' });
      const cid = cycleOf(res.value);
      if (cid === null) {
        clear(box, h('p', { class: 'notice' }, `${selector} is understood now: ${res.repr}`));
        return;
      }
      location.hash = `#/cycle/${cid}`;
    } catch (e) {
      clear(out, errorBox(e, e.kind === 'no_mind' ? 'No inference server has answered: nothing can learn it yet.' : null),
        learnHelp(e, out));
    }
  });
  return clear(box, button, h('span', { class: 'hint' },
    ` sends ${selector} to ${target} (without arguments) and opens a cycle that learns it`),
  err.kind === 'no_mind' ? h('p', { class: 'hint' }, routeLink('#/mind', 'the mind')) : null);
}
