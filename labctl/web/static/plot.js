/* A small line plotter for the live traces: a canvas, axes with round ticks, one line.
   labctl's own (no library, nothing fetched). LabPlot.draw(canvas, trace, options). */
"use strict";

const LabPlot = (() => {
  // Round tick steps: 1, 2, 2.5 or 5 times a power of ten, about `count` of them.
  function ticks(low, high, count) {
    if (!(high > low)) { return [low]; }
    const raw = (high - low) / Math.max(count, 1);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) {
      out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return out;
  }

  function label(value) {
    const size = Math.abs(value);
    if (size >= 1000) { return value.toFixed(0); }
    if (size >= 10) { return String(Math.round(value * 10) / 10); }
    return String(Math.round(value * 100) / 100);
  }

  // Limits with a margin; a flat trace gets a band around its value.
  function range(values) {
    let low = Math.min(...values);
    let high = Math.max(...values);
    if (high - low < 1e-9) {
      const pad = Math.max(Math.abs(low) * 0.05, 1);
      return [low - pad, high + pad];
    }
    const pad = (high - low) * 0.08;
    return [low - pad, high + pad];
  }

  function draw(canvas, trace, options) {
    const opts = options || {};
    const color = opts.color || "#1c6fd1";
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 300;
    const height = canvas.clientHeight || 150;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = "11px system-ui, sans-serif";
    const points = (trace && trace.points) || [];
    canvas.dataset.points = String(points.length);
    if (points.length === 0) {
      g.fillStyle = "#8a949e";
      g.textAlign = "center";
      g.fillText(opts.empty || "no samples yet", width / 2, height / 2);
      return;
    }
    const left = 58, right = 10, top = 10, bottom = 26;
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const [x0, x1] = [Math.min(0, ...xs), Math.max(...xs, 1)];
    const [y0, y1] = range(ys);
    const px = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
    const py = (y) => top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom);

    g.strokeStyle = "#e3e7eb";
    g.fillStyle = "#66717c";
    g.lineWidth = 1;
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (const y of ticks(y0, y1, 4)) {
      g.beginPath(); g.moveTo(left, py(y)); g.lineTo(width - right, py(y)); g.stroke();
      g.fillText(label(y), left - 5, py(y));
    }
    g.textAlign = "center";
    g.textBaseline = "top";
    for (const x of ticks(x0, x1, 5)) {
      g.beginPath(); g.moveTo(px(x), top); g.lineTo(px(x), height - bottom); g.stroke();
      g.fillText(label(x), px(x), height - bottom + 4);
    }
    g.textAlign = "right";
    g.fillText(opts.xLabel || "s", width - right, height - 12);
    g.save();
    g.translate(11, top + (height - top - bottom) / 2);
    g.rotate(-Math.PI / 2);
    g.textAlign = "center";
    g.fillText(trace.unit || "", 0, 0);
    g.restore();

    g.strokeStyle = color;
    g.fillStyle = color;
    g.lineWidth = 1.8;
    g.beginPath();
    points.forEach((p, i) => (i === 0 ? g.moveTo(px(p[0]), py(p[1])) : g.lineTo(px(p[0]), py(p[1]))));
    g.stroke();
    if (points.length < 40) {  // few readings (one per exposure): each one shown
      points.forEach((p) => { g.beginPath(); g.arc(px(p[0]), py(p[1]), 2, 0, 2 * Math.PI); g.fill(); });
    }
    const last = points[points.length - 1];
    g.beginPath(); g.arc(px(last[0]), py(last[1]), 3.5, 0, 2 * Math.PI); g.fill();
  }

  return { draw, ticks };
})();
