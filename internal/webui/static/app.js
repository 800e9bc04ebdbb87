// app.js: the header and the router. Routes live in the URL's fragment:
//   #/object/TARGET   the outliner (TARGET: genesis, genesis.child, oid:3)
//   #/at/TID/TARGET   the outliner as transaction TID left the object
//   #/history/TARGET  an object's revisions, with what each changed
//   #/log             the timeline
//   #/cycles          the cycles; #/cycle/ID one cycle
//   #/mind            the mind and its personas; #/mind/NAME one persona
//   #/audits          the audits and proposals; #/audit/ID one audit
//   #/catalog         the knowledge catalog's search

import { call, coalesced, connectEvents, onEvent } from './api.js';
import { h, clear, errorBox } from './dom.js';
import { showObject } from './outliner.js';
import { showLog, showHistory } from './timeline.js';
import { showCycles, showCycle } from './cycles.js';
import { showMind } from './mind.js';
import { showAudits, showAudit } from './audits.js';
import { showCatalog } from './catalog.js';

const main = document.getElementById('main');
let leave = () => {};

const routes = [
  [/^#\/object\/(.+)$/, (m) => showObject(main, decodeURIComponent(m[1]))],
  [/^#\/at\/([0-9a-f]{16})\/(.+)$/, (m) => showObject(main, decodeURIComponent(m[2]), m[1])],
  [/^#\/history\/(.+)$/, (m) => showHistory(main, decodeURIComponent(m[1]))],
  [/^#\/log$/, () => showLog(main)],
  [/^#\/cycles$/, () => showCycles(main)],
  [/^#\/cycle\/(?:c)?([0-9]+)$/, (m) => showCycle(main, Number(m[1]))],
  [/^#\/mind$/, () => showMind(main, null)],
  [/^#\/mind\/([A-Za-z][A-Za-z0-9_]{0,39})$/, (m) => showMind(main, m[1])],
  [/^#\/audits$/, () => showAudits(main)],
  [/^#\/audit\/([0-9]+)$/, (m) => showAudit(main, Number(m[1]))],
  [/^#\/catalog$/, () => showCatalog(main)],
];

function route() {
  leave();
  leave = () => {};
  const hash = location.hash || '#/object/genesis';
  const page = { history: 'object', at: 'object', cycle: 'cycles', audit: 'audits' }[hash.split('/')[1]] || hash.split('/')[1];
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('current', a.getAttribute('href').split('/')[1] === page);
  for (const [pattern, show] of routes) {
    const m = pattern.exec(hash);
    if (m) {
      try {
        leave = show(m) || (() => {});
      } catch (err) {
        // A fragment that cannot be decoded (a stray %): say so.
        clear(main, errorBox({ kind: 'not_found', message: `No page ${hash}: ${err.message}` }));
      }
      return;
    }
  }
  clear(main, errorBox({ kind: 'not_found', message: `No page ${hash}` }));
}

// header shows the event stream's state and what the image holds.
function header() {
  const state = document.getElementById('events-state');
  connectEvents((s) => {
    state.dataset.state = s;
    state.textContent = `events: ${s}`;
  });
  const name = document.getElementById('image-name');
  const stats = async () => {
    try {
      const st = await call('stats');
      const label = st.name || st.image || '';
      name.textContent = `${label ? label + ' · ' : ''}${st.objects} objects · last ${st.last_tid}`;
    } catch (err) {
      name.textContent = `image: ${err.message}`;
    }
  };
  stats();
  const later = coalesced(stats, 1000);
  onEvent((topic) => { if (topic.startsWith('commit.')) later(); });
}

header();
// Events lost (the stream fell behind) leave a list stale: read it again.
// The outliner is left alone, not to lose an edit or the evaluator's code.
onEvent((topic) => {
  if (topic === 'lost' && !location.hash.startsWith('#/object/')) route();
});
window.addEventListener('hashchange', route);
route();
