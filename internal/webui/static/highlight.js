// highlight.js: a small Starlark highlighter for method source. It only
// splits text into spans; every piece goes in as text.

import { h } from './dom.js';

const keywords = new Set(['and', 'break', 'continue', 'def', 'elif', 'else', 'for', 'if', 'in',
  'lambda', 'load', 'not', 'or', 'pass', 'return', 'True', 'False', 'None', 'self']);

const token = /(#[^\n]*)|("""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)|(\b\d+(?:\.\d*)?(?:[eE][+-]?\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)/g;

// highlight answers nodes showing source, with keywords, strings,
// comments and numbers in spans of their own.
export function highlight(source) {
  const out = [];
  let last = 0;
  for (const m of source.matchAll(token)) {
    if (m.index > last) out.push(source.slice(last, m.index));
    const [text, comment, string, number, word] = m;
    if (comment) out.push(h('span', { class: 'hl-comment' }, text));
    else if (string) out.push(h('span', { class: 'hl-string' }, text));
    else if (number) out.push(h('span', { class: 'hl-number' }, text));
    else if (word && keywords.has(word)) out.push(h('span', { class: 'hl-keyword' }, text));
    else out.push(text);
    last = m.index + text.length;
  }
  if (last < source.length) out.push(source.slice(last));
  return out;
}

// numbered shows source with line numbers, the line `mark` (from 1)
// marked as the one an error names.
export function numbered(source, mark) {
  return h('pre', { class: 'source numbered' }, source.split('\n').map((line, i) =>
    h('span', { class: i + 1 === mark ? 'line error-line' : 'line', data: { line: i + 1 } },
      h('span', { class: 'gutter' }, String(i + 1)), line, '\n')));
}
