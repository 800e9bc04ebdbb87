// catalog.js: the knowledge catalog's search (#/catalog): a query, the
// hits best first with their document, score and the matched words
// marked in the fragment.

import { call } from './api.js';
import { h, clear, errorBox, oidLink } from './dom.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// marked shows fragment with its marks (byte spans) as <mark> elements,
// every piece as text.
function marked(fragment, marks) {
  const bytes = encoder.encode(String(fragment ?? ''));
  const out = h('span', { class: 'fragment' });
  let at = 0;
  const spans = (Array.isArray(marks) ? marks : [])
    .map((m) => [Number(m.start), Number(m.end)])
    .filter(([s, e]) => Number.isInteger(s) && Number.isInteger(e) && s >= 0 && e <= bytes.length && s < e)
    .sort((a, b) => a[0] - b[0]);
  for (const [s, e] of spans) {
    if (s < at) continue;
    out.append(decoder.decode(bytes.subarray(at, s)), h('mark', {}, decoder.decode(bytes.subarray(s, e))));
    at = e;
  }
  out.append(decoder.decode(bytes.subarray(at)));
  return out;
}

function hit(x) {
  const ranks = [x.text_rank ? `text #${x.text_rank}` : null, x.vector_rank ? `vector #${x.vector_rank}` : null,
    x.similarity ? `similarity ${Number(x.similarity).toFixed(3)}` : null].filter(Boolean).join(' · ');
  return h('li', { class: 'hit', data: { doc: x.doc || '' } },
    h('div', { class: 'hit-head' },
      h('span', { class: 'score' }, Number(x.score).toFixed(4)), ' ',
      h('strong', {}, x.cite || x.title || ''), ' ',
      x.chunk ? oidLink(x.chunk) : x.object ? oidLink(x.object, x.receiver) : null,
      h('span', { class: 'hint' }, ` ${x.path || ''}${x.doc ? ` (${x.doc})` : ''} ${ranks}`)),
    h('pre', { class: 'hit-fragment' }, marked(x.fragment, x.marks)));
}

// showCatalog renders the search page into main.
export function showCatalog(main) {
  const query = h('input', { id: 'catalog-query', type: 'search', placeholder: 'search the catalog', size: 50 });
  const k = h('input', { id: 'catalog-k', type: 'number', min: 1, max: 1000, value: 10 });
  const methods = h('input', { id: 'catalog-methods', type: 'checkbox' });
  const results = h('div', { id: 'catalog-results' });
  const search = async (ev) => {
    ev?.preventDefault();
    if (!query.value.trim()) return;
    clear(results, h('p', { class: 'loading' }, 'Searching…'));
    try {
      const r = await call('catalog_search', { query: query.value, k: Number(k.value) || 10, methods: methods.checked });
      clear(results,
        h('p', { class: 'hint' }, `mode ${r.mode}`, r.note ? ` — ${r.note}` : ''),
        (r.hits || []).length === 0 ? h('p', { class: 'none' }, 'Nothing found.') : h('ol', { class: 'hits' }, r.hits.map(hit)));
    } catch (err) {
      clear(results, errorBox(err));
    }
  };
  const form = h('form', { id: 'catalog-form', class: 'buttons', onsubmit: search }, query,
    h('label', {}, ' k ', k), h('label', {}, methods, ' methods'), h('button', { type: 'submit' }, 'search'));
  clear(main, h('section', { id: 'catalog' }, h('h1', {}, 'Catalog'), form, results));
  (async () => {
    try {
      const st = await call('catalog_stats');
      form.after(h('p', { class: 'hint', id: 'catalog-stats' },
        `${st.documents} documents, ${st.chunks} chunks, ${st.tokens} tokens`, st.embed_model ? ` · embeddings: ${st.embed_model}` : ''));
    } catch { /* the search still works */ }
  })();
  query.focus();
  return () => {};
}
