// cyclestate.js: a cycle's state machine drawn as a row of its states,
// the current one highlighted, and the retry and cancel actions.

import { call } from './api.js';
import { h, clear, errorBox } from './dom.js';

// STATES are the cycle's states in order (internal/cycle): FAILED is
// reached from any state before COMPLETE.
export const STATES = ['IDLE', 'DECOMPOSING', 'DELEGATING', 'SYNTHESIZING', 'VALIDATING', 'COMPLETE', 'FAILED'];

const FINISHED = new Set(['COMPLETE', 'FAILED']);

// stateRow draws the states with state current; failedIn (for a FAILED
// cycle) is marked as where it stopped.
export function stateRow(state, failedIn) {
  const row = h('ol', { class: 'state-row', id: 'state-row' });
  setState(row, state, failedIn);
  return row;
}

// setState moves row's highlight to state.
export function setState(row, state, failedIn) {
  const at = STATES.indexOf(failedIn || state);
  row.replaceChildren(...STATES.map((s, i) => h('li', {
    class: 'state-step', data: { state: s },
    'aria-current': s === state ? 'step' : null,
    'data-passed': state !== s && i < at && s !== 'FAILED' ? 'true' : null,
    'data-stopped': s === failedIn && state === 'FAILED' ? 'true' : null,
  }, s)));
  row.dataset.state = state;
}

// actions are the cycle's buttons: retry for a FAILED cycle, cancel for
// an unfinished one; results and errors go to status, then done runs.
export function actions(c, status, done) {
  const act = async (command, label) => {
    clear(status, h('p', { class: 'loading' }, `${label}…`));
    try {
      const r = await call(command, { cycle: c.id });
      clear(status, h('p', { class: 'notice' }, `${label}: cycle ${r.cycle} is ${r.state}` + (r.was ? ` (was ${r.was})` : '') + '.'));
    } catch (err) {
      const note = err.kind === 'no_mind' ? 'A retry needs a mind: no inference server has answered.' : null;
      clear(status, errorBox(err, note));
    }
    done();
  };
  const retry = c.state === 'FAILED' ? h('button', { id: 'cycle-retry', type: 'button', onclick: () => act('cycle_retry', 'Retry') }, 'retry') : null;
  const cancel = !FINISHED.has(c.state) ? h('button', {
    id: 'cycle-cancel', type: 'button',
    onclick: () => { if (confirm(`Cancel cycle ${c.id}?`)) act('cycle_cancel', 'Cancel'); },
  }, 'cancel') : null;
  return retry || cancel ? h('div', { class: 'buttons cycle-actions' }, retry, cancel) : null;
}
