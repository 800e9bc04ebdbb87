// mind.js: the mind (#/mind, #/mind/NAME): the inference server, the base
// model and the personas with their usage; one persona's recent calls
// with charts of their tokens and latency.

import { call, coalesced, onEvent } from './api.js';
import { h, clear, errorBox, formatTime, routeLink } from './dom.js';
import { lineChart } from './chart.js';

const namePattern = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;

// short cuts a digest ("sha256:f4000f872421…") to its first hex digits.
function short(digest) {
  if (typeof digest !== 'string' || digest === '') return '';
  const hex = digest.replace(/^sha256:/, '').replace(/…$/, '');
  return hex.slice(0, 12);
}

function num(v, digits = 0) {
  return Number.isFinite(Number(v)) ? String(+Number(v).toFixed(digits)) : '';
}

function personaName(p) {
  return namePattern.test(p.name || '') ? routeLink(`#/mind/${p.name}`, p.name, { class: 'persona-link' }) : String(p.name ?? '');
}

function adapter(p) {
  if (!p.adapter && !p.adapter_file) return h('span', { class: 'none' }, 'none');
  return [p.adapter_file || '', p.adapter_format ? ` (${p.adapter_format})` : '', ' ',
    h('span', { class: 'digest', title: String(p.adapter || '') }, short(p.adapter))];
}

function personaRow(p, selected) {
  const u = p.usage || {};
  return h('tr', { class: 'persona', data: { name: p.name, tier: p.tier }, 'aria-current': p.name === selected ? 'true' : null },
    h('td', {}, personaName(p)), h('td', {}, p.role || ''),
    h('td', {}, p.model || '', p.model_is_default ? h('span', { class: 'hint' }, ' (default)') : null),
    h('td', {}, adapter(p)), h('td', { class: 'tier', data: { tier: p.tier } }, p.tier || ''),
    h('td', {}, num(u.calls)), h('td', {}, num(u.failures)),
    h('td', {}, `${num(u.prompt_tokens)} / ${num(u.completion_tokens)}`), h('td', {}, `${num(u.mean_latency_ms, 2)} ms`),
    h('td', { class: 'problem' }, p.problem || ''));
}

function field(label, ...value) {
  return h('div', { class: 'field' }, h('dt', {}, label), h('dd', {}, ...value));
}

function serverView(r, model) {
  const base = model || r.base_model;
  const rec = r.recorded || {};
  return h('dl', { class: 'fields', id: 'mind-server' },
    field('server', r.server ? r.server : h('span', { class: 'no-mind' }, 'no inference server')),
    r.note ? field('note', r.note) : null,
    rec.url || rec.api || rec.model ? field('recorded', [rec.api, rec.url, rec.model].filter(Boolean).join(' · ')) : null,
    field('base model', base ? `${base.name || base.file || ''} · ${base.file || ''} · ${base.architecture || ''} · ` +
      `${short(base.digest)} · ${num(base.size)} bytes` : h('span', { class: 'none' }, 'none imported')));
}

// findings are what batos doctor reports of the mind, as this server
// sees it: no inference server, a note on the tiers, each persona's
// problem, no model to run. Empty when nothing stands in the way.
export function findings(r, model) {
  const out = [];
  if (!r.server) out.push('No inference server has answered: nothing is learned until one does (batos run -llm URL; batos doctor on the server\'s machine says why).');
  if (r.note) out.push(r.note);
  for (const p of r.personas || []) if (p.problem) out.push(`${p.name}: ${p.problem}`);
  if (r.server && !(model || r.base_model) && !(r.personas || []).some((p) => p.model)) {
    out.push('No base model in the image and no model named for the personas (batos model import FILE.gguf).');
  }
  return out;
}

function doctorView(r, model) {
  const list = findings(r, model);
  return h('div', { id: 'doctor', class: 'doctor', data: { problems: list.length } },
    h('h2', {}, 'Doctor'),
    list.length === 0 ? h('p', { class: 'notice' }, 'Nothing stands in the way of the personas.') :
      h('ul', { class: 'findings' }, list.map((f) => h('li', { class: 'problem' }, f))));
}

function detail(p) {
  const calls = p.recent_calls || [];
  const u = p.usage || {};
  return h('section', { id: 'persona', data: { name: p.name } },
    h('h2', {}, p.name, ' ', h('span', { class: 'tier', data: { tier: p.tier } }, p.tier || '')),
    h('dl', { class: 'fields' },
      field('role', p.role || ''), field('model', p.model || ''), p.where ? field('where', p.where) : null,
      p.temperature !== undefined ? field('temperature', num(p.temperature, 2)) : null,
      p.options ? field('options', JSON.stringify(p.options)) : null, p.problem ? field('problem', p.problem) : null,
      field('usage', `${num(u.calls)} calls, ${num(u.failures)} failures, ${num(u.prompt_tokens)} prompt + ` +
        `${num(u.completion_tokens)} completion tokens, mean ${num(u.mean_latency_ms, 2)} ms`)),
    calls.length === 0 ? h('p', { class: 'none' }, 'No calls yet.') : [
      h('div', { class: 'charts' },
        lineChart('tokens per call', 'tok', [
          { label: 'prompt', values: calls.map((c) => c.prompt_tokens), cls: 'prompt' },
          { label: 'completion', values: calls.map((c) => c.completion_tokens), cls: 'completion' }]),
        lineChart('latency per call', 'ms', [{ label: 'latency', values: calls.map((c) => c.latency_ms), cls: 'latency' }])),
      h('table', { class: 'calls' },
        h('thead', {}, h('tr', {}, ['at', 'model', 'adapter', 'tokens', 'latency', 'outcome'].map((t) => h('th', {}, t)))),
        h('tbody', {}, calls.slice().reverse().map((c) => h('tr', { class: 'call', data: { outcome: c.outcome } },
          h('td', {}, formatTime(c.at)), h('td', {}, c.model || ''), h('td', {}, short(c.adapter)),
          h('td', {}, `${num(c.prompt_tokens)} + ${num(c.completion_tokens)}`), h('td', {}, `${num(c.latency_ms, 2)} ms`),
          h('td', { class: 'outcome' }, c.outcome || '')))))],
    p.system_prompt ? h('details', { class: 'block' }, h('summary', {}, 'system prompt'), h('pre', {}, p.system_prompt)) : null);
}

// showMind renders the mind page into main, with name's details when given.
export function showMind(main, name) {
  const section = h('section', { id: 'mind' }, h('p', { class: 'loading' }, 'Loading…'));
  clear(main, section);
  const load = async () => {
    try {
      const [list, model, one] = await Promise.all([call('persona_list'), call('model_show').catch(() => null),
        name ? call('persona_show', { name }).catch((err) => err) : null]);
      const personas = list.personas || [];
      clear(section, h('h1', {}, 'Mind'), serverView(list, model), doctorView(list, model),
        h('h2', {}, 'Personas'),
        h('table', { class: 'personas' },
          h('thead', {}, h('tr', {}, ['persona', 'role', 'model', 'adapter', 'tier', 'calls', 'failures', 'tokens in / out', 'mean latency', 'problem'].map((t) => h('th', {}, t)))),
          h('tbody', {}, personas.map((p) => personaRow(p, name)))),
        one instanceof Error ? errorBox(one) : one ? (one.personas || []).map(detail) : h('p', { class: 'hint' }, 'Choose a persona for its recent calls.'));
    } catch (err) {
      clear(section, errorBox(err));
    }
  };
  load();
  const later = coalesced(load, 500);
  return onEvent((topic) => {
    if (['commit.persona', 'commit.model', 'cycle.step'].includes(topic)) later();
  });
}
