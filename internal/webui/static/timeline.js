// timeline.js: the log of transactions (#/log), newest first, with undo,
// and one object's revisions (#/history/TARGET).

import { call, onEvent } from './api.js';
import { h, clear, errorBox, formatTime, oidLink, refOID, PAGE } from './dom.js';

const tidPattern = /^[0-9a-f]{16}$/;

// showLog renders the timeline into main; it answers a function to call
// when the page is left.
export function showLog(main) {
  const rows = h('tbody', {});
  const status = h('div', { id: 'log-status' });
  const more = h('button', { id: 'log-more', type: 'button' }, 'load more');
  let oldest = null;
  const load = async (reset) => {
    try {
      const args = { limit: PAGE };
      if (!reset && oldest) args.before = oldest;
      const txs = await call('log', args);
      if (reset) rows.replaceChildren();
      for (const tx of txs) rows.append(txRow(tx, status, () => load(true)));
      if (txs.length > 0) oldest = txs[txs.length - 1].tid;
      more.hidden = txs.length < PAGE;
    } catch (err) {
      clear(status, errorBox(err));
    }
  };
  more.addEventListener('click', () => load(false));
  clear(main, h('section', { id: 'timeline' },
    h('h1', {}, 'Timeline'), status,
    h('table', { id: 'log', class: 'log' },
      h('thead', {}, h('tr', {}, ['TID', 'time', 'user', 'description', 'objects', ''].map((t) => h('th', {}, t)))),
      rows),
    more));
  load(true);
  let pending = null;
  return onEvent((topic) => {
    // New commits show at the top; a burst is read once.
    if (!topic.startsWith('commit.') || pending) return;
    pending = setTimeout(() => { pending = null; if (rows.children.length <= PAGE) load(true); }, 300);
  });
}

function txRow(tx, status, reload) {
  const undo = h('button', { class: 'undo', type: 'button' }, 'undo');
  undo.addEventListener('click', async () => {
    if (!confirm(`Undo transaction ${tx.tid}?`)) return;
    try {
      const res = await call('undo', { tid: tx.tid });
      clear(status, h('p', { class: 'notice' }, `Undid ${res.undone} (${res.description}, ${res.objects} objects) as ${res.tid}.`));
      reload();
    } catch (err) {
      const note = err.kind === 'conflict' ? 'Later transactions changed what this one would restore: undo them first.' : null;
      clear(status, errorBox(err, note));
    }
  });
  const oids = (tx.oids || []).filter(refOID);
  const objects = oids.length === 0 ? '0' : h('details', { class: 'oids' },
    h('summary', {}, String(oids.length)),
    h('ul', {}, oids.slice(0, PAGE).map((r) => h('li', {}, oidLink(r)))),
    oids.length > PAGE ? h('p', { class: 'hint' }, `and ${oids.length - PAGE} more`) : null);
  return h('tr', { class: 'tx', data: { tid: tidPattern.test(tx.tid) ? tx.tid : '' } },
    h('td', { class: 'tid' }, tx.tid), h('td', { class: 'time' }, formatTime(tx.time)),
    h('td', { class: 'user' }, tx.user || ''), h('td', { class: 'description' }, tx.description || ''),
    h('td', { class: 'objects' }, objects), h('td', {}, undo));
}

// showHistory renders target's revisions into main.
export function showHistory(main, target) {
  const section = h('section', { id: 'history' }, h('p', { class: 'loading' }, 'Loading…'));
  clear(main, section);
  (async () => {
    try {
      const revs = await call('history', { target, limit: 500 });
      const oid = refOID(target);
      clear(section,
        h('h1', {}, 'History of ', oid ? oidLink(oid) : target),
        h('table', { class: 'history' },
          h('thead', {}, h('tr', {}, ['TID', 'time', 'user', 'description', 'size', ''].map((t) => h('th', {}, t)))),
          h('tbody', {}, revs.map((r) => h('tr', { class: 'revision', data: { tid: tidPattern.test(r.tid) ? r.tid : '' } },
            h('td', { class: 'tid' }, r.tid), h('td', {}, formatTime(r.time)), h('td', {}, r.user || ''),
            h('td', {}, r.description || ''), h('td', {}, String(r.size)),
            h('td', {}, r.deleted ? 'deleted' : ''))))));
    } catch (err) {
      clear(section, errorBox(err));
    }
  })();
  return () => {};
}
