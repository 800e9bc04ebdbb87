// audits.js: ALFRED's self-audits (#/audits, #/audit/ID) and the
// proposals they made, with accept and reject for those awaiting a
// decision.

import { call, coalesced, onEvent } from './api.js';
import { h, clear, errorBox, formatTime, routeLink } from './dom.js';

function auditLink(id) {
  return Number.isInteger(id) ? routeLink(`#/audit/${id}`, `audit ${id}`, { class: 'audit-link' }) : String(id ?? '');
}

function cycleLink(id) {
  return Number.isInteger(id) && id > 0 ? routeLink(`#/cycle/${id}`, `c${id}`, { class: 'cycle-link' }) : '';
}

// reloading calls load now and after audit and proposal commits.
function reloading(load) {
  load();
  const later = coalesced(load, 500);
  return onEvent((topic) => {
    if (['commit.audit', 'commit.proposal', 'commit.heartbeat', 'commit.cycle'].includes(topic)) later();
  });
}

function decide(p, status, done) {
  if (p.status !== 'awaiting approval') return null;
  const act = async (command, args, label) => {
    try {
      const r = await call(command, args);
      clear(status, h('p', { class: 'notice' }, `${label} ${r.id}: ${r.status}${r.reason ? ` (${r.reason})` : ''}.`));
    } catch (err) {
      clear(status, errorBox(err));
    }
    done();
  };
  return h('span', { class: 'buttons' },
    h('button', { type: 'button', class: 'accept', onclick: () => act('proposal_accept', { proposal: p.id }, 'Accepted') }, 'accept'),
    h('button', { type: 'button', class: 'reject', onclick: () => {
      const reason = prompt(`Reject proposal ${p.id}: why?`, '');
      if (reason !== null) act('proposal_reject', { proposal: p.id, reason }, 'Rejected');
    } }, 'reject'));
}

function proposalTable(proposals, status, done) {
  if (proposals.length === 0) return h('p', { class: 'none' }, 'No proposals.');
  return h('table', { class: 'proposals' },
    h('thead', {}, h('tr', {}, ['proposal', 'method', 'kind', 'goal', 'status', 'cycle', 'tokens', ''].map((t) => h('th', {}, t)))),
    h('tbody', {}, proposals.map((p) => h('tr', { class: 'proposal', data: { status: p.status } },
      h('td', {}, String(p.id ?? '')), h('td', {}, p.method || ''), h('td', {}, p.kind || ''), h('td', {}, p.goal || ''),
      h('td', {}, p.status || '', p.reason ? h('span', { class: 'hint' }, ` — ${p.reason}`) : null),
      h('td', {}, cycleLink(p.cycle)), h('td', {}, String(p.tokens ?? '')), h('td', {}, decide(p, status, done))))));
}

// showAudits renders the audits and the proposals into main.
export function showAudits(main) {
  const status = h('div', { id: 'audits-status' });
  const all = h('input', { id: 'proposals-all', type: 'checkbox' });
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading…'));
  clear(main, h('section', { id: 'audits' }, h('h1', {}, 'Audits'), status, body));
  const load = async () => {
    try {
      const [a, p] = await Promise.all([call('audit_list', { limit: 50 }), call('proposal_list', { all: all.checked })]);
      clear(body,
        (a.audits || []).length === 0 ? h('p', { class: 'none' }, 'No audits yet.') : h('table', { class: 'audits' },
          h('thead', {}, h('tr', {}, ['audit', 'state', 'by', 'policy', 'started', 'tokens', 'summary'].map((t) => h('th', {}, t)))),
          h('tbody', {}, a.audits.map((x) => h('tr', { class: 'audit', data: { state: x.state } },
            h('td', {}, auditLink(x.id)), h('td', { class: 'state' }, x.state || ''), h('td', {}, x.by || ''), h('td', {}, x.policy || ''),
            h('td', {}, formatTime(x.started)), h('td', {}, String(x.tokens ?? '')), h('td', {}, x.summary || x.error || ''))))),
        h('h2', {}, 'Proposals'), h('label', { class: 'hint' }, all, ' every proposal, not only those awaiting a decision'),
        proposalTable(p.proposals || [], status, load));
    } catch (err) {
      clear(body, errorBox(err));
    }
  };
  all.addEventListener('change', load);
  return reloading(load);
}

// showAudit renders one audit whole into main.
export function showAudit(main, id) {
  const status = h('div', { id: 'audit-status' });
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading…'));
  clear(main, h('section', { id: 'audit', data: { id } }, status, body));
  const load = async () => {
    try {
      const a = await call('audit_show', { audit: id });
      const f = (label, v) => (v === undefined || v === null || v === '' ? null : h('div', { class: 'field' }, h('dt', {}, label), h('dd', {}, v)));
      clear(body, h('h1', {}, `Audit ${a.id} `, h('span', { class: 'state' }, a.state || '')),
        h('dl', { class: 'fields' }, f('by', a.by), f('policy', a.policy), f('model', a.model), f('started', formatTime(a.started)),
          f('finished', a.finished ? formatTime(a.finished) : null),
          f('tokens', `${a.prompt_tokens ?? 0} prompt + ${a.completion_tokens ?? 0} completion, ${a.tokens ?? 0} in all, ${a.latency_ms ?? 0} ms`),
          f('summary', a.summary), f('error', a.error), f('notes', Array.isArray(a.notes) ? a.notes.join('; ') : a.notes)),
        h('h2', {}, 'Findings'), (a.findings || []).length === 0 ? h('p', { class: 'none' }, 'No findings.') :
          h('ul', { class: 'findings' }, a.findings.map((x) => h('li', { data: { severity: x.severity } },
            h('strong', {}, x.severity || ''), ' ', x.title || '', h('pre', {}, JSON.stringify(x.evidence ?? [], null, 2))))),
        h('h2', {}, 'Proposals'), proposalTable(a.proposals || [], status, load),
        h('details', { class: 'block' }, h('summary', {}, 'facts'), h('pre', {}, JSON.stringify(a.facts ?? null, null, 2))),
        h('details', { class: 'block' }, h('summary', {}, 'answer'), h('pre', {}, typeof a.answer === 'string' ? a.answer : JSON.stringify(a.answer ?? null, null, 2))));
    } catch (err) {
      clear(body, errorBox(err));
    }
  };
  return reloading(load);
}
