// Draws the report's charts with uPlot from the JSON in #report-data. Every chart of one
// kind shares its axes across runs, so runs compare side by side at a glance.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
                   "#17becf", "#bcbd22"];
  const colour = (broker) => PALETTE[DATA.brokers.indexOf(broker) % PALETTE.length];
  const HEIGHT = 230;
  window.__report = { charts: [], errors: [], labels: {} };

  function columns(row) {
    const cols = Math.min(DATA.runs.length, 3);
    const gap = 16;
    return Math.max(320, Math.floor((row.clientWidth - gap * (cols - 1)) / cols));
  }

  // One x array for all series of a chart (uPlot's aligned data), nulls where a series
  // has no point; spanGaps draws each series through its own points.
  function align(parts) {
    const xs = Array.from(new Set(parts.flatMap((p) => p.x))).sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const ys = parts.map((p) => {
      const y = new Array(xs.length).fill(null);
      p.x.forEach((x, i) => { y[index.get(x)] = p.y[i]; });
      return y;
    });
    return [xs, ...ys];
  }

  function finite(parts) {
    return parts.reduce((n, p) => n + p.y.filter((v) => v !== null && isFinite(v)).length, 0);
  }

  function yMax(parts) {
    let max = 0;
    parts.forEach((p) => p.y.forEach((v) => { if (v !== null && v > max) max = v; }));
    return max > 0 ? max * 1.08 : 1;
  }

  // Fault and phase lines with their labels. Labels are stacked: each goes in the first
  // row where it starts after the last label there ends, right of its line (left of it at
  // the chart's right edge), so near-simultaneous markers stay readable. The boxes drawn
  // are kept in window.__report.labels for the tests.
  function markerPlugin(markers, id) {
    return {
      hooks: {
        draw: [(u) => {
          const ctx = u.ctx;
          const dpr = devicePixelRatio;
          const { left, top, width, height } = u.bbox;
          const line = 11 * dpr;
          const pad = 3 * dpr;
          const rowEnds = [];
          const boxes = [];
          ctx.save();
          ctx.font = `${Math.round(10 * dpr)}px sans-serif`;
          markers.forEach((m) => {
            const x = Math.round(u.valToPos(m.t, "x", true));
            if (x < left || x > left + width) return;
            const fault = m.kind === "fault";
            ctx.strokeStyle = fault ? "#d62728" : "#888";
            ctx.fillStyle = fault ? "#d62728" : "#666";
            ctx.lineWidth = dpr;
            ctx.setLineDash(fault ? [] : [4 * dpr, 3 * dpr]);
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            const w = ctx.measureText(m.label).width;
            let lx = x + pad;
            if (lx + w > left + width) lx = Math.max(left, x - pad - w);
            let row = rowEnds.findIndex((end) => end + pad <= lx);
            if (row < 0) row = rowEnds.length;
            rowEnds[row] = lx + w;
            const y = top + 10 * dpr + line * row;
            ctx.fillText(m.label, lx, y);
            boxes.push({ label: m.label, x: lx, y: y - line + 2 * dpr, w, h: line,
                         canvasWidth: u.ctx.canvas.width });
          });
          ctx.restore();
          window.__report.labels[id] = boxes;
        }],
      },
    };
  }

  // The percentile axis is log10(1 / (1 - p)): 50% at 0.3, 90% at 1, 99% at 2, ...
  const nines = (x) => `${+(100 * (1 - Math.pow(10, -x))).toPrecision(6)}%`;

  function decades(u, axis, min, max) {
    const out = [];
    for (let k = Math.round(Math.log10(min)); Math.pow(10, k) <= max * 1.0001; k++) {
      out.push(Math.pow(10, k));
    }
    return out;
  }

  function percentAxis() {
    return {
      label: "percentile",
      splits: (u, axis, min, max) => [Math.log10(2), 1, 2, 3, 4, 5, 6, 7]
        .filter((x) => x >= min && x <= max),
      values: (u, splits) => splits.map(nines),
    };
  }

  function draw(el, spec) {
    const parts = spec.parts;
    const points = finite(parts);
    el.dataset.points = String(points);
    if (points === 0) {
      el.classList.add("empty");
      el.textContent = "no data recorded";
      return;
    }
    const opts = {
      title: spec.title,
      width: columns(el.parentElement),
      height: HEIGHT,
      scales: {
        x: { time: false, range: spec.xRange },
        // Latency percentiles span decades (1 ms to seconds): a log axis shows them all.
        y: spec.logX ? { distr: 3, log: 10, range: spec.yRange } : { range: [0, spec.yMax] },
      },
      axes: [
        spec.logX ? percentAxis() : { label: "s" },
        // Where decades are crowded (latency from 0.1 ms to seconds in 230 px), uPlot's
        // log axis filter leaves every other one unlabelled: a null split.
        spec.logX ? { label: spec.unit, size: 60, splits: decades,
                      values: (u, v) => v.map((x) => x == null ? "" : x.toLocaleString("en")) }
                  : { label: spec.unit, size: 60 },
      ],
      series: [
        { label: spec.logX ? "p" : "t", value: spec.logX ?
          (u, v) => v == null ? "-" : nines(v) :
          (u, v) => v == null ? "-" : `${v.toFixed(1)} s` },
        ...parts.map((p) => ({
          label: p.label, stroke: p.colour, width: p.dash ? 1.5 : 2, dash: p.dash,
          spanGaps: true, points: { show: spec.logX },
        })),
      ],
      cursor: { sync: { key: spec.sync } },
      plugins: spec.markers ? [markerPlugin(spec.markers, el.id)] : [],
    };
    const chart = new uPlot(opts, align(parts), el);
    window.__report.charts.push({ id: el.id, points, colours: parts.map((p) => p.colour),
                                  yMax: spec.yMax, xRange: spec.xRange });
    return chart;
  }

  const xRange = [0, Math.max(1, ...DATA.runs.map((r) => r.duration))];

  function timeParts(run, kind) {
    const parts = [];
    run.brokers.forEach((b) => {
      parts.push({ label: b.name, colour: colour(b.name), x: b.t, y: b.series[kind] });
      if (kind === "send") {
        parts.push({ label: `${b.name} target`, colour: colour(b.name), dash: [2, 4],
                     x: b.t, y: b.series.target });
      }
      if (kind === "lag" && b.prediction) {
        parts.push({ label: `${b.name} predicted`, colour: colour(b.name), dash: [8, 5],
                     x: b.prediction.t, y: b.prediction.backlog });
      }
    });
    return parts;
  }

  function percentileParts(run, kind) {
    return run.brokers.filter((b) => b.percentiles[kind].points.length).map((b) => {
      const pc = b.percentiles[kind];
      // The maximum sits where the slowest of `count` samples does: 1 - 1 / count.
      const pts = pc.points.map(([p, v]) => [p >= 100 ? null : -Math.log10(1 - p / 100), v]);
      const last = Math.max(Math.log10(2), ...pts.filter(([x]) => x !== null).map(([x]) => x));
      const top = Math.max(Math.log10(Math.max(pc.count, 1)), last + 0.3);
      const x = pts.map(([px]) => px === null ? top : px);
      return { label: pc.full ? b.name : `${b.name} (p50/95/99/max only)`,
               colour: colour(b.name), x, y: pts.map(([, v]) => v) };
    });
  }

  document.querySelectorAll("[data-chart]").forEach((row) => {
    const kind = row.dataset.chart;
    const family = row.dataset.family;
    const specs = DATA.runs.map((run) => family === "percentiles"
      ? { parts: percentileParts(run, kind), logX: true }
      : { parts: timeParts(run, kind), markers: run.markers, xRange });
    const shared = Math.max(...specs.map((s) => yMax(s.parts)));
    const positive = specs.flatMap((s) => s.parts.flatMap((p) => p.y.filter((v) => v > 0)));
    // Whole decades, so the log axis reads 1, 10, 100 ms rather than odd numbers.
    const yRange = [Math.pow(10, Math.floor(Math.log10(Math.min(...positive, shared)))),
                    Math.pow(10, Math.ceil(Math.log10(shared)))];
    let pRange = null;
    if (family === "percentiles") {
      const xs = specs.flatMap((s) => s.parts.flatMap((p) => p.x));
      pRange = [0, Math.max(2, ...xs) + 0.2];
    }
    DATA.runs.forEach((run, i) => {
      const el = document.createElement("div");
      el.className = "chart";
      el.id = `chart-${kind}-${family}-${i}`;
      row.appendChild(el);
      try {
        draw(el, {
          ...specs[i],
          title: `${row.dataset.title} (${row.dataset.unit})` +
            (DATA.runs.length > 1 ? ` · ${run.label}` : ""),
          unit: row.dataset.unit,
          yMax: shared,
          yRange,
          xRange: pRange || xRange,
          sync: `${family}-${kind}`,
        });
      } catch (err) {
        window.__report.errors.push(String(err));
        throw err;
      }
    });
  });
})();
