// The status page: polls /api/status every 2 s and draws one uPlot chart per sensor
// (values on the left axis, anomaly scores on the right). Plain ES module, no build step.
const POLL_MS = 2000;
const VALUE_COLOR = '#1f77b4';
const SCORE_COLOR = '#d62728';
const charts = new Map();

const $ = (id) => document.getElementById(id);
const iso = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-');
const fmt = (v) => (v === null || v === undefined ? '-' : Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+$/, ''));

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fillDl(dl, rows) {
  dl.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function renderPanels(s) {
  const h = s.health;
  const badge = $('health');
  // degraded: still serving (HTTP 200) with a check that did not pass, e.g. a clock not known to be synchronised.
  const look = h.status === 'ok' ? ['healthy', 'ok'] : h.ready ? ['degraded', 'degraded'] : ['not ready', 'fail'];
  badge.textContent = look[0];
  badge.className = `badge ${look[1]}`;
  $('device').textContent = `${s.device_id} · boot ${s.boot}`;
  $('updated').textContent = `updated ${iso(s.now)}`;
  $('checks').replaceChildren(
    ...Object.entries(h.checks).map(([name, c]) => el('li', { class: c.ok ? 'ok' : c.degraded ? 'degraded' : 'fail', 'data-check': name }, `${c.ok ? '✓' : c.degraded ? '!' : '✗'} ${name}: ${c.reason}`)),
  );
  const u = s.uplink;
  fillDl(
    $('uplink'),
    u
      ? [
          ['url', u.url],
          ['last delivery', iso(u.last_success_at)],
          ['failures in a row', String(u.consecutive_failures)],
          ['last error', u.last_error ? `${iso(u.last_error_at)} ${u.last_error}` : '-'],
        ]
      : [['uplink', 'none configured: batches are kept locally']],
  );
  const b = s.backlog;
  fillDl($('backlog'), [
    ['pending batches', String(b.batches.pending ?? 0)],
    ['oldest pending', b.oldest_pending_age_s === null ? '-' : `#${b.oldest_pending_seq}, ${Math.round(b.oldest_pending_age_s)} s old`],
    ['delivered batches', String(b.batches.delivered ?? 0)],
    ['readings not batched', String(b.unbatched_readings)],
    ['store size', `${(b.store_bytes / 1048576).toFixed(1)} MiB${b.store_max_bytes ? ` of ${(b.store_max_bytes / 1048576).toFixed(0)} MiB budget` : ''}`],
    ['written to storage', `${((b.store_written_bytes ?? 0) / 1048576).toFixed(1)} MiB${b.store_projected_gb_per_day == null ? '' : `, projected ${b.store_projected_gb_per_day.toFixed(2)} GB/day`}`],
  ]);
  $('sources').replaceChildren(
    ...s.sources.map((src) =>
      el('li', { class: src.connected ? 'ok' : 'fail' }, `${src.id} (${src.type}) ${src.connected ? 'connected' : 'NOT connected'} · ${src.endpoint}${src.lastError ? ` · ${src.lastError}` : ''}`),
    ),
  );
  $('counters').replaceChildren(...s.counters.map((c) => el('li', { 'data-counter': c.name }, `${c.name} · ${c.label}: ${c.value}`)));
  $('no-counters').hidden = s.counters.length > 0;
  const tbody = $('alerts').querySelector('tbody');
  tbody.replaceChildren(
    ...s.alerts.map((a) => {
      const tr = el('tr', { class: a.raised ? 'raised' : 'cleared' });
      tr.append(el('td', {}, iso(a.ts)), el('td', {}, a.key), el('td', {}, a.model), el('td', {}, a.raised ? 'raised' : 'cleared'), el('td', {}, fmt(a.score)), el('td', {}, fmt(a.threshold)));
      return tr;
    }),
  );
  $('no-alerts').hidden = s.alerts.length > 0;
  $('sensor-count').textContent = s.sensors_total > s.sensors.length ? `(${s.sensors.length} of ${s.sensors_total} shown)` : `(${s.sensors_total})`;
}

function chartData(sensor) {
  // uPlot wants one shared x axis (seconds): merge both series' timestamps, null where a series has no point.
  const xs = [...new Set([...sensor.values.map((p) => p[0]), ...sensor.scores.map((p) => p[0])])].sort((a, b) => a - b);
  const vals = new Map(sensor.values);
  const scores = new Map(sensor.scores);
  const threshold = sensor.latestScore?.threshold ?? null;
  return [xs.map((t) => t / 1000), xs.map((t) => vals.get(t) ?? null), xs.map((t) => scores.get(t) ?? null), xs.map(() => threshold)];
}

function makeChart(sensor, container) {
  const opts = {
    width: Math.max(240, container.clientWidth - 10),
    height: 180,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: true }, score: { range: [0, 1] } },
    axes: [{}, { label: sensor.unit ?? '' }, { scale: 'score', side: 1, grid: { show: false } }],
    series: [
      {},
      { label: 'value', stroke: VALUE_COLOR, width: 2, spanGaps: true },
      { label: 'score', stroke: SCORE_COLOR, width: 1.5, scale: 'score', spanGaps: true },
      { label: 'threshold', stroke: SCORE_COLOR, width: 1, dash: [4, 4], scale: 'score' },
    ],
  };
  return new uPlot(opts, chartData(sensor), container);
}

function renderCharts(sensors) {
  const root = $('charts');
  const keep = new Set(sensors.map((s) => s.key));
  for (const [key, c] of charts) {
    if (!keep.has(key)) {
      c.plot.destroy();
      c.box.remove();
      charts.delete(key);
    }
  }
  for (const sensor of sensors) {
    let c = charts.get(sensor.key);
    if (!c) {
      const box = el('div', { class: 'chart', 'data-sensor': sensor.key });
      const title = el('h3');
      title.append(el('span', { class: 'name' }, sensor.key), el('span', { class: 'latest' }), el('span', { class: 'score' }));
      const plotBox = el('div', { class: 'plot' });
      box.append(title, plotBox);
      root.append(box);
      c = { box, plot: makeChart(sensor, plotBox) };
      const plot = c.plot;
      // Follow the layout: the grid changes column width with the window.
      new ResizeObserver(() => {
        const width = Math.max(240, plotBox.clientWidth - 10);
        if (Math.abs(width - plot.width) > 2) plot.setSize({ width, height: 180 });
      }).observe(plotBox);
      charts.set(sensor.key, c);
    } else {
      c.plot.setData(chartData(sensor));
    }
    const latest = c.box.querySelector('.latest');
    latest.textContent = sensor.latest ? `${fmt(sensor.latest.value)}${sensor.unit ? ` ${sensor.unit}` : ''}` : '-';
    latest.dataset.value = sensor.latest ? String(sensor.latest.value) : '';
    const score = c.box.querySelector('.score');
    const ls = sensor.latestScore;
    score.textContent = ls ? `score ${ls.score.toFixed(3)}${ls.alert ? ' ALERT' : ''}` : '';
    score.dataset.value = ls ? String(ls.score) : '';
    c.box.classList.toggle('alert', Boolean(ls?.alert));
  }
}

async function refresh() {
  try {
    const res = await fetch('/api/status', { cache: 'no-store' });
    if (!res.ok) throw new Error(`GET /api/status: HTTP ${res.status}`);
    const s = await res.json();
    renderPanels(s);
    renderCharts(s.sensors);
    $('error').hidden = true;
    document.body.dataset.updates = String(Number(document.body.dataset.updates ?? 0) + 1);
  } catch (err) {
    $('error').textContent = `cannot reach the agent: ${err.message}`;
    $('error').hidden = false;
  } finally {
    setTimeout(refresh, POLL_MS);
  }
}

refresh();
