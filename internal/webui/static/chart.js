// chart.js: small line charts as inline SVG, built with DOM APIs (no
// markup from strings): a series of numbers over its index.

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = String(text);
  return el;
}

// lineChart draws series ([{label, values, cls}]) sharing one y axis,
// labelled with title and unit; values that are not finite count as 0.
export function lineChart(title, unit, series, width = 320, height = 120) {
  const pad = { l: 52, r: 8, t: 18, b: 16 };
  const n = Math.max(0, ...series.map((s) => s.values.length));
  const num = (v) => (Number.isFinite(Number(v)) ? Number(v) : 0);
  const max = Math.max(0, ...series.flatMap((s) => s.values.map(num))) || 1;
  const x = (i) => pad.l + (n <= 1 ? 0 : (i * (width - pad.l - pad.r)) / (n - 1));
  const y = (v) => height - pad.b - (num(v) / max) * (height - pad.t - pad.b);
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img' });
  root.append(svg('title', {}, title));
  root.append(svg('text', { x: pad.l, y: 12, class: 'chart-title' }, title));
  root.append(svg('line', { x1: pad.l, y1: height - pad.b, x2: width - pad.r, y2: height - pad.b, class: 'chart-axis' }));
  root.append(svg('line', { x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b, class: 'chart-axis' }));
  root.append(svg('text', { x: pad.l - 4, y: pad.t + 4, class: 'chart-tick', 'text-anchor': 'end' }, `${max >= 100 ? Math.round(max) : +max.toFixed(2)} ${unit}`));
  root.append(svg('text', { x: pad.l - 4, y: height - pad.b, class: 'chart-tick', 'text-anchor': 'end' }, '0'));
  root.append(svg('text', { x: width - pad.r, y: height - 3, class: 'chart-tick', 'text-anchor': 'end' }, `${n} calls`));
  let ly = pad.t + 2;
  for (const s of series) {
    if (s.values.length === 0) continue;
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    root.append(svg('polyline', { points, class: `chart-line ${s.cls || ''}`, fill: 'none' }));
    for (const [i, v] of s.values.entries()) {
      const dot = svg('circle', { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2, class: `chart-dot ${s.cls || ''}` });
      dot.append(svg('title', {}, `${s.label}: ${num(v)} ${unit}`));
      root.append(dot);
    }
    root.append(svg('text', { x: width - pad.r, y: (ly += 10), class: `chart-legend ${s.cls || ''}`, 'text-anchor': 'end' }, s.label));
  }
  return root;
}
