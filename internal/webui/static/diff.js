// diff.js: line diffs of method sources and slot-level diffs of object
// revisions, drawn as text (never markup).

import { h } from './dom.js';

// MAX_CELLS bounds the table a line diff fills: two sources of 2,000
// lines each are diffed line by line; larger ones are shown as replaced
// whole rather than freezing the page.
const MAX_CELLS = 4_000_000;

// lineDiff answers the edit script turning a into b (arrays of lines):
// [{op: ' ' | '-' | '+', line}], from their longest common subsequence.
export function lineDiff(a, b) {
  // Common head and tail are kept out of the table.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const head = a.slice(0, start).map((line) => ({ op: ' ', line }));
  const tail = a.slice(endA).map((line) => ({ op: ' ', line }));
  const x = a.slice(start, endA);
  const y = b.slice(start, endB);
  const n = x.length;
  const m = y.length;
  if ((n + 1) * (m + 1) > MAX_CELLS) {
    return [...head, ...x.map((line) => ({ op: '-', line })), ...y.map((line) => ({ op: '+', line })), ...tail];
  }
  // lcs[i][j]: the longest common subsequence of x[i:] and y[j:].
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] = x[i] === y[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push({ op: ' ', line: x[i] }); i++; j++; }
    else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) out.push({ op: '-', line: x[i++] });
    else out.push({ op: '+', line: y[j++] });
  }
  while (i < n) out.push({ op: '-', line: x[i++] });
  while (j < m) out.push({ op: '+', line: y[j++] });
  return [...head, ...out, ...tail];
}

// diffView draws the diff from source a to source b, unchanged runs
// longer than six lines folded to their ends.
export function diffView(a, b) {
  const ops = lineDiff(a.split('\n'), b.split('\n'));
  const pre = h('pre', { class: 'diff' });
  const line = (o) => h('span', { class: `diff-line diff-${{ ' ': 'same', '-': 'del', '+': 'add' }[o.op]}` }, `${o.op} ${o.line}\n`);
  for (let k = 0; k < ops.length;) {
    if (ops[k].op !== ' ') { pre.append(line(ops[k++])); continue; }
    let end = k;
    while (end < ops.length && ops[end].op === ' ') end++;
    if (end - k > 6) {
      pre.append(line(ops[k]), line(ops[k + 1]),
        h('span', { class: 'diff-line diff-fold' }, `  … ${end - k - 4} unchanged lines\n`),
        line(ops[end - 2]), line(ops[end - 1]));
    } else {
      for (let q = k; q < end; q++) pre.append(line(ops[q]));
    }
    k = end;
  }
  return pre;
}

// slotChanges compares two inspect views' own slots (older may be null:
// the object's first revision): [{name, change: 'added' | 'removed' |
// 'changed', before, after}], each side a slot as inspect gives it.
export function slotChanges(older, newer) {
  const before = new Map((older?.own || []).map((s) => [s.name, s]));
  const after = new Map((newer?.own || []).map((s) => [s.name, s]));
  const out = [];
  for (const [name, s] of after) {
    const was = before.get(name);
    if (!was) out.push({ name, change: 'added', before: null, after: s });
    else if (slotText(was) !== slotText(s)) out.push({ name, change: 'changed', before: was, after: s });
  }
  for (const [name, s] of before) if (!after.has(name)) out.push({ name, change: 'removed', before: s, after: null });
  return out;
}

// slotText is what a slot holds, as compared and shown: a method's
// source, else the value's repr.
export function slotText(s) {
  return 'method' in s ? s.method : (s.repr ?? JSON.stringify(s.value));
}
