// timeline.js: the log of transactions (#/log), newest first, with undo
// and the cycle steps interleaved where they happened, and one object's
// revisions with what each changed (#/history/TARGET).

import { call, coalesced, onEvent } from './api.js';
import { h, clear, errorBox, formatTime, oidLink, refOID, routeLink, PAGE } from './dom.js';
import { diffView, slotChanges, slotText } from './diff.js';

// cycleTx is the cycle a transaction's description says it belongs to
// ("cycle 4: DECOMPOSING → DELEGATING"), else null.
function cycleTx(tx) {
  const m = /^cycle ([0-9]{1,15}): /.exec(tx.description || '');
  return m ? Number(m[1]) : null;
}

const tidPattern = /^[0-9a-f]{16}$/;

// showLog renders the timeline into main; it answers a function to call
// when the page is left.
export function showLog(main) {
  const rows = h('tbody', {});
  const status = h('div', { id: 'log-status' });
  const more = h('button', { id: 'log-more', type: 'button' }, 'load more');
  let oldest = null;
  let shown = [];
  let generation = 0;
  // Loads run one after another (a reset from an event and "load more"
  // never interleave); each starts a new generation of step annotations,
  // and an older one still running adds nothing.
  let queue = Promise.resolve();
  const load = (reset) => (queue = queue.then(async () => {
    try {
      const args = { limit: PAGE };
      if (!reset && oldest) args.before = oldest;
      const txs = await call('log', args);
      if (reset) { rows.replaceChildren(); shown = []; }
      for (const tx of txs) rows.append(txRow(tx, status, () => load(true)));
      shown.push(...txs);
      if (txs.length > 0) oldest = txs[txs.length - 1].tid;
      more.hidden = txs.length < PAGE;
      const mine = ++generation;
      interleaveSteps(rows, shown, !more.hidden, () => mine === generation);
    } catch (err) {
      clear(status, errorBox(err));
    }
  }));
  more.addEventListener('click', () => load(false));
  clear(main, h('section', { id: 'timeline' },
    h('h1', {}, 'Timeline'), status,
    h('p', { class: 'hint' }, 'Newest first. A cycle\'s transactions show the model calls it made, where they happened.'),
    h('table', { id: 'log', class: 'log' },
      h('thead', {}, h('tr', {}, ['TID', 'time', 'user', 'description', 'objects', ''].map((t) => h('th', {}, t)))),
      rows),
    more));
  load(true);
  // Only while the first page is all there is: a reader paging back keeps
  // his place.
  const later = coalesced(async () => { if (rows.querySelectorAll('tr.tx').length <= PAGE) await load(true); }, 300);
  return onEvent((topic, data) => {
    // New commits show at the top; a burst is read once, and a commit
    // this page already shows (its own undo, read again at once) is not
    // read twice.
    if (!topic.startsWith('commit.')) return;
    if (data && tidPattern.test(data.tid || '') && rows.querySelector(`tr.tx[data-tid="${data.tid}"]`)) return;
    later();
  });
}

// timeKey makes an RFC 3339 time comparable as a string to the
// nanosecond (Date.parse keeps milliseconds): the epoch milliseconds of
// its whole second, then its fraction, padded.
export function timeKey(t) {
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(String(t ?? ''));
  if (!m) return '';
  const ms = Date.parse(m[1] + m[3]);
  return Number.isNaN(ms) ? '' : `${String(ms).padStart(16, '0')}.${(m[2] || '').padEnd(9, '0')}`;
}

// interleaveSteps puts each cycle's model calls under the transaction
// that recorded them: a step belongs to the first of its cycle's
// transactions at or after its time. A step older than every
// transaction shown waits while older pages remain (its transaction may
// be on one); current says whether this run is still the page's latest.
async function interleaveSteps(rows, txs, morePages, current) {
  for (const r of rows.querySelectorAll('tr.tx-steps')) r.remove();
  const oldestShown = txs.length ? timeKey(txs[txs.length - 1].time) : '';
  const byCycle = new Map();
  for (const tx of txs) {
    const id = cycleTx(tx);
    if (id !== null) (byCycle.get(id) || byCycle.set(id, []).get(id)).push(tx);
  }
  for (const [id, list] of byCycle) {
    let c;
    try {
      c = await call('cycle_show', { cycle: id });
    } catch {
      continue; // a cycle gone (packed, or a bad record): its rows stay as they are
    }
    if (!current()) return;
    const times = list.map((tx) => ({ tx, t: timeKey(tx.time) })).sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
    const steps = new Map();
    for (const [i, s] of (c.steps || []).entries()) {
      const at = timeKey(s.at);
      if (at === '' || (morePages && at < oldestShown)) continue;
      const home = times.find((x) => x.t >= at) || null;
      if (home) (steps.get(home.tx.tid) || steps.set(home.tx.tid, []).get(home.tx.tid)).push([i, s]);
    }
    for (const tx of list) {
      if (!tidPattern.test(tx.tid)) continue;
      const row = rows.querySelector(`tr.tx[data-tid="${tx.tid}"]`);
      if (!row || row.nextElementSibling?.classList.contains('tx-steps')) continue;
      const mine = steps.get(tx.tid) || [];
      row.classList.add('tx-cycle');
      if (mine.length === 0) continue;
      row.after(h('tr', { class: 'tx-steps', data: { cycle: id } }, h('td', {}), h('td', { colspan: 5 },
        h('ul', { class: 'steps-inline' }, mine.map(([i, s]) => h('li', { class: 'step-inline', data: { kind: s.kind } },
          routeLink(`#/cycle/${id}`, `c${id}`, { class: 'cycle-link' }), ` ${s.kind}`, s.attempt ? ` (attempt ${s.attempt})` : '', ' · ',
          h('span', { class: 'persona' }, s.persona || ''), ` · ${s.model || ''}${s.adapter ? ' + ' + s.adapter : ''} · `,
          `${s.prompt_tokens ?? 0} + ${s.completion_tokens ?? 0} tokens · ${Math.round(s.latency_ms ?? 0)} ms`,
          s.rejected ? h('span', { class: 'rejected' }, ` rejected: ${s.rejected}`) : null, ` (step ${i + 1})`))))));
    }
  }
}

// blockers shows which later transactions stop an undo, each a link to
// its row in the timeline (marked) and the object it changed.
function blockers(err, rows) {
  const list = (err.detail?.blocked_by || []).filter((b) => b && tidPattern.test(b.tid));
  for (const r of rows.querySelectorAll('tr.tx.blocking')) r.classList.remove('blocking');
  if (list.length === 0) return null;
  for (const b of list) rows.querySelector(`tr.tx[data-tid="${b.tid}"]`)?.classList.add('blocking');
  return h('div', { class: 'blocked-by' }, h('p', {}, 'Blocked by (marked below; undo them first, newest first):'),
    h('ul', {}, list.map((b) => h('li', { data: { tid: b.tid } }, h('span', { class: 'tid' }, b.tid), ' changed ', oidLink(b.oid)))));
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
      const note = err.kind === 'conflict' ? `Later transactions changed what ${tx.tid} would restore: undo them first.` : null;
      clear(status, errorBox(err, note), err.kind === 'conflict' ? blockers(err, undo.closest('tbody')) : null);
    }
  });
  const oids = (tx.oids || []).filter(refOID);
  const objects = oids.length === 0 ? '0' : h('details', { class: 'oids' },
    h('summary', {}, String(oids.length)),
    h('ul', {}, oids.slice(0, PAGE).map((r) => h('li', {}, oidLink(r),
      tidPattern.test(tx.tid) ? [' ', routeLink(`#/at/${tx.tid}/${refOID(r)}`, 'as of this', { class: 'as-of' })] : null))),
    oids.length > PAGE ? h('p', { class: 'hint' }, `and ${oids.length - PAGE} more`) : null);
  return h('tr', { class: 'tx', data: { tid: tidPattern.test(tx.tid) ? tx.tid : '' } },
    h('td', { class: 'tid' }, tx.tid), h('td', { class: 'time' }, formatTime(tx.time)),
    h('td', { class: 'user' }, tx.user || ''), h('td', { class: 'description' }, cycleTx(tx) !== null ? routeLink(`#/cycle/${cycleTx(tx)}`, tx.description, { class: 'cycle-link' }) : (tx.description || '')),
    h('td', { class: 'objects' }, objects), h('td', {}, undo));
}

// HISTORY_DIFFS is how many revisions show their changes at once: each
// reads the object as of two transactions.
const HISTORY_DIFFS = 20;

// HISTORY_LIMIT is how many revisions the page reads; when it reads that
// many, the oldest it shows is not the object's first.
const HISTORY_LIMIT = 500;

// showHistory renders target's revisions into main, newest first, each
// with the slots it added, removed or changed, and a link to the object
// as that revision left it.
export function showHistory(main, target) {
  const section = h('section', { id: 'history' }, h('p', { class: 'loading' }, 'Loading…'));
  clear(main, section);
  (async () => {
    try {
      const revs = await call('history', { target, limit: HISTORY_LIMIT });
      const oid = refOID(target) || (revs.length ? await oidOf(target) : null);
      const body = h('tbody', {});
      const more = h('button', { id: 'history-more', type: 'button', class: 'more' });
      clear(section,
        h('h1', {}, 'History of ', oid ? oidLink(oid) : target),
        h('p', { class: 'hint' }, 'Newest first: what each transaction changed in the object\'s own slots.'),
        h('table', { class: 'history' },
          h('thead', {}, h('tr', {}, ['TID', 'time', 'user', 'description', 'changes', ''].map((t) => h('th', {}, t)))),
          body),
        more);
      const views = new Map(); // tid -> inspect view as of it (a promise)
      const viewAt = (tid) => {
        if (!views.has(tid)) {
          views.set(tid, call('inspect', { target: oid, tid }).catch((err) => err));
        }
        return views.get(tid);
      };
      let done = 0;
      const showMore = () => {
        const next = revs.slice(done, done + HISTORY_DIFFS);
        for (const [k, r] of next.entries()) {
          const index = done + k;
          const changes = h('td', { class: 'changes' }, h('span', { class: 'loading' }, '…'));
          const ok = tidPattern.test(r.tid);
          body.append(h('tr', { class: 'revision', data: { tid: ok ? r.tid : '' } },
            h('td', { class: 'tid' }, r.tid), h('td', {}, formatTime(r.time)), h('td', {}, r.user || ''),
            h('td', {}, r.description || ''), changes,
            h('td', {}, r.deleted ? 'deleted' : ok && oid ? routeLink(`#/at/${r.tid}/${oid}`, 'as of this', { class: 'as-of' }) : '')));
          if (!ok || !oid || r.deleted) { clear(changes); continue; }
          const older = revs[index + 1];
          Promise.all([viewAt(r.tid), older && !older.deleted && tidPattern.test(older.tid) ? viewAt(older.tid) : null]).then(([now, before]) => {
            if (now instanceof Error) { clear(changes, errorBox(now)); return; }
            clear(changes, changeList(slotChanges(before instanceof Error ? null : before, now), !older && revs.length < HISTORY_LIMIT));
          });
        }
        done += next.length;
        more.hidden = done >= revs.length;
        more.textContent = `changes of older revisions (${revs.length - done} left)`;
      };
      more.addEventListener('click', showMore);
      showMore();
    } catch (err) {
      clear(section, errorBox(err));
    }
  })();
  return () => {};
}

// oidOf resolves a root name or path to its OID.
async function oidOf(target) {
  try {
    return refOID((await call('inspect', { target })).oid);
  } catch {
    return null;
  }
}

// changeList draws a revision's slot changes; first marks the object's
// first revision (everything in it is new).
function changeList(changes, first) {
  if (changes.length === 0) return h('span', { class: 'none' }, first ? 'created empty' : 'no change to its own slots');
  return h('ul', { class: 'slot-changes' }, changes.map((c) => {
    const mark = { added: '+', removed: '−', changed: '~' }[c.change];
    const method = (c.after && 'method' in c.after) || (c.before && 'method' in c.before);
    let detail = null;
    if (c.change === 'changed' && c.before && c.after && 'method' in c.before && 'method' in c.after) {
      detail = h('details', { class: 'block' }, h('summary', {}, 'diff'), diffView(c.before.method, c.after.method));
    } else if (c.change === 'changed') {
      detail = h('span', { class: 'v' }, ' ', shown(c.before), ' → ', shown(c.after));
    } else if (c.change === 'added' && !method) {
      detail = h('span', { class: 'v' }, ' = ', shown(c.after));
    }
    return h('li', { class: `slot-change change-${c.change}`, data: { name: c.name, change: c.change } },
      h('span', { class: 'change-mark' }, mark), ' ', h('span', { class: 'slot-name' }, c.name), method ? ' (method)' : '', detail);
  }));
}

// shown is a slot's value in a change: a reference as a link to its
// object, anything else as its repr, clipped.
function shown(slot) {
  return refOID(slot.value) ? oidLink(slot.value) : clip(slotText(slot));
}

function clip(s) {
  const t = String(s ?? '');
  return t.length > 120 ? t.slice(0, 119) + '…' : t;
}
