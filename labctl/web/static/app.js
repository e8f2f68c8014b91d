/* labctl web: the live page. Reads /api/stream (server-sent events) and /api/runs;
   acts through POST /api/... with the token the operator types (kept in this tab only).
   Every text from the store goes in with textContent: nothing is parsed as HTML. */
"use strict";

const CHANNELS = {
  plate_temperature: { color: "#d9480f", label: "plate temperature" },
  spin_speed: { color: "#1c6fd1", label: "spin speed" },
  irradiance: { color: "#6741d9", label: "irradiance" },
};

const state = { version: 0, status: null, traces: {}, events: [], measurements: [],
  runsKey: null, receivedAt: Date.now(), source: null };

const $ = (id) => document.getElementById(id);

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) { node.textContent = String(text); }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) { node.setAttribute(key, value); }
  }
  return node;
}

function number(value, digits) {
  if (value === null || value === undefined) { return "-"; }
  const size = Math.abs(value);
  const d = digits !== undefined ? digits : size >= 100 ? 0 : size >= 10 ? 1 : 2;
  return value.toFixed(d);
}

// A unit as people write it: degC -> °C, cm^2 -> cm²; "1" (a pure number) -> nothing.
function unitText(unit) {
  if (!unit || unit === "1") { return ""; }
  return unit.replace("degC", "°C").replace("^2", "²").replace("^-1", "⁻¹");
}

function quantity(q, digits) {
  if (!q || q.value === null || q.value === undefined) { return "-"; }
  const unit = unitText(q.unit);
  return `${number(q.value, digits)}${unit ? " " + unit : ""}`;
}

function clock(seconds) {
  if (seconds === null || seconds === undefined) { return "-"; }
  const whole = Math.max(0, Math.floor(seconds));
  const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
  const pad = (v) => String(v).padStart(2, "0");
  return `+${pad(h)}:${pad(m)}:${pad(s)}`;
}

function duration(seconds) {
  if (seconds < 60) { return `${Math.max(0, Math.round(seconds))} s`; }
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) { return `${minutes} min`; }
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

function localTime(text) {
  if (!text) { return "-"; }
  const when = new Date(text);
  const today = new Date();
  const hm = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return when.toDateString() === today.toDateString() ? hm : `${when.toLocaleDateString()} ${hm}`;
}

function shortId(runId) {
  return runId ? runId.replace(/^(\d{8})-(\d{6})-/, "$1 $2 ") : "";
}

// -- the current run ----------------------------------------------------------------

function renderRun() {
  const status = state.status;
  if (!status) { return; }
  $("bench").textContent = (status.benches || []).join(", ");
  $("location").textContent = status.location || "";
  const run = status.run;
  const badge = $("run-status");
  const stop = $("stop");
  if (!run) {
    badge.textContent = "";
    stop.disabled = true;
    return;
  }
  badge.textContent = status.live ? "running" : run.status;
  badge.dataset.status = run.status;
  $("run-id").textContent = run.run_id;
  $("protocol").textContent = `${run.protocol}${run.simulated ? " (simulated)" : ""}`;
  $("operator").textContent = run.operator || "-";
  $("reason").textContent = run.reason || (status.live ? "running" : "-");
  $("wafer").textContent = run.wafer || "-";
  const formulation = run.formulation || {};
  $("formulation").textContent = formulation.name || "-";
  $("formulation-hash").textContent = formulation.hash ? formulation.hash.slice(0, 12) : "";
  $("formulation-hash").title = formulation.hash || "";
  const claims = $("claims");
  claims.replaceChildren();
  for (const [n, verdict] of Object.entries(formulation.claims || {})) {
    const mark = verdict.verdict === "met" ? "✓" : verdict.verdict === "not_met" ? "✗" : "?";
    claims.append(el("span", `${n} ${mark}`, { class: `claim ${verdict.verdict}`, title: verdict.reason }));
  }
  const progress = run.progress || {};
  const counter = $("step-counter");
  counter.textContent = `step ${progress.n || 0} of ${progress.of || "?"}`;
  counter.dataset.n = String(progress.n || 0);
  $("step-bar").style.width = progress.of ? `${Math.min(100, (100 * (progress.n || 0)) / progress.of)}%` : "0";
  const step = progress.step;
  $("step-name").textContent = step
    ? `${step.name}${step.wafer ? " " + step.wafer : ""}${step.detail ? " - " + step.detail : ""} (${step.status})`
    : "-";
  $("bench-time").textContent = clock(progress.bench_time && progress.bench_time.value);
  stop.disabled = !status.live;
  stop.dataset.run = run.run_id;
  renderClocks();
  const night = status.night || {};
  if (night.estimated_end) {
    const left = night.remaining_wall_time && night.remaining_wall_time.value;
    $("eta").textContent = `${localTime(night.estimated_end)} (in ${duration(left || 0)})`;
  } else {
    $("eta").textContent = status.live ? "not yet known" : "nothing running";
  }
  const basis = (night.basis || []).join("; ");
  const unknown = night.not_estimated ? `; ${night.not_estimated} not estimated (no completed run of its protocol)` : "";
  $("eta-basis").textContent = basis + unknown;
}

function renderClocks() {
  const run = state.status && state.status.run;
  if (!run) { return; }
  const wall = run.progress && run.progress.wall_time && run.progress.wall_time.value;
  if (wall === null || wall === undefined) { $("wall-time").textContent = "-"; return; }
  const extra = state.status.live ? (Date.now() - state.receivedAt) / 1000 : 0;
  $("wall-time").textContent = clock(wall + extra);
}

// -- traces, events, measurements -----------------------------------------------------

function renderTrace(channel) {
  const trace = state.traces[channel];
  const caption = $(`cap-${channel}`);
  if (trace) {
    const last = trace.points.length ? trace.points[trace.points.length - 1][1] : null;
    caption.textContent = `- step ${trace.seq} ${trace.step || ""}${trace.wafer ? " " + trace.wafer : ""}` +
      (last !== null ? `: ${number(last)} ${unitText(trace.unit)}` : "");
  } else {
    caption.textContent = "";
  }
  const shown = trace ? { ...trace, unit: unitText(trace.unit) } : trace;
  LabPlot.draw($(`trace-${channel}`), shown, { color: CHANNELS[channel].color, xLabel: "s in step" });
}

function applyTraces(traces) {
  for (const [channel, part] of Object.entries(traces || {})) {
    if (part.reset || !state.traces[channel]) {
      state.traces[channel] = { ...part, points: [...part.points] };
    } else {
      state.traces[channel].points.push(...part.points);
    }
  }
  for (const channel of Object.keys(CHANNELS)) { renderTrace(channel); }
}

function renderEvents() {
  const list = $("events");
  list.replaceChildren();
  for (const event of [...state.events].reverse().slice(0, 200)) {
    const item = el("li", null, { "data-level": event.level, "data-kind": event.kind });
    item.append(el("span", (event.at || "").slice(11, 19), { class: "at mono" }));
    item.append(el("span", event.kind, { class: "kind" }));
    item.append(el("span", event.message));
    list.append(item);
  }
  if (!state.events.length) { list.append(el("li", "no events", { class: "muted" })); }
}

function renderMeasurements() {
  const body = $("measurements").tBodies[0];
  body.replaceChildren();
  for (const row of [...state.measurements].reverse().slice(0, 24)) {
    const tr = el("tr");
    tr.append(el("td", row.wafer), el("td", row.label), el("td", row.site));
    tr.append(el("td", `${number(row.x.value, 1)}, ${number(row.y.value, 1)}`, { class: "num" }));
    tr.append(el("td", number(row.dose_delivered.value), { class: "num" }));
    tr.append(el("td", number(row.thickness.value, 1), { class: "num" }));
    body.append(tr);
  }
}

// -- the queue and the finished runs -------------------------------------------------

function actionButton(text, handler) {
  const button = el("button", text, { type: "button" });
  button.addEventListener("click", handler);
  return button;
}

function renderQueue() {
  const body = $("queue").tBodies[0];
  body.replaceChildren();
  const entries = (state.status && state.status.queue) || [];
  for (const entry of entries) {
    const tr = el("tr", null, { "data-status": entry.status, "data-entry": entry.id });
    tr.append(el("td", entry.id), el("td", entry.protocol));
    tr.append(el("td", entry.status, { class: "status-text", "data-status": entry.status }));
    tr.append(el("td", shortId(entry.run_id), { class: "mono" }));
    tr.append(el("td", localTime(entry.added_at)));
    tr.append(el("td", entry.reason || ""));
    const actions = el("td");
    if (entry.can_cancel) {
      actions.append(actionButton("cancel", () => act(`/api/queue/${entry.id}/cancel`, `cancel queue #${entry.id}?`)));
    }
    if (entry.can_retry) {
      actions.append(actionButton("retry", () => act(`/api/queue/${entry.id}/retry`)));
    }
    tr.append(actions);
    body.append(tr);
  }
  if (!entries.length) {
    const tr = el("tr");
    tr.append(el("td", "the queue is empty", { colspan: "7", class: "muted" }));
    body.append(tr);
  }
}

function figure(estimate, digits) {
  if (!estimate || estimate.value === null || estimate.value === undefined) { return "-"; }
  const unit = unitText(estimate.unit) ? ` ${unitText(estimate.unit)}` : "";
  const bound = estimate.kind === "upper_bound" ? "< " : estimate.kind === "lower_bound" ? "> " : "";
  const interval = estimate.low !== null && estimate.high !== null && estimate.kind === "estimate"
    ? ` (${number(estimate.low, digits)}-${number(estimate.high, digits)})` : "";
  return `${bound}${number(estimate.value, digits)}${unit}${interval}`;
}

async function loadRuns() {
  let body;
  try {
    const answer = await fetch("/api/runs?limit=20", { cache: "no-store" });
    body = await answer.json();
  } catch (error) {
    return;
  }
  const rows = $("runs").tBodies[0];
  rows.replaceChildren();
  const ended = (body.runs || []).filter((run) => run.status !== "running" && run.status !== "created");
  for (const run of ended) {
    const figures = run.figures || {};
    const tr = el("tr", null, { "data-run": run.run_id });
    tr.append(el("td", shortId(run.run_id), { class: "mono", title: run.run_id }));
    tr.append(el("td", run.protocol));
    tr.append(el("td", run.status, { class: "status-text", "data-status": run.status, title: run.reason || "" }));
    tr.append(el("td", localTime(run.ended_at)));
    tr.append(el("td", figure(figures.dg)));
    tr.append(el("td", figure(figures.gamma)));
    tr.append(el("td", figures.thickness ? `${number(figures.thickness.value, 1)} nm` : "-"));
    const link = el("td");
    link.append(el("a", "report", { href: run.report, target: "_blank", rel: "noopener" }));
    tr.append(link);
    rows.append(tr);
  }
  if (!ended.length) {
    const tr = el("tr");
    tr.append(el("td", "no finished runs", { colspan: "8", class: "muted" }));
    rows.append(tr);
  }
}

// -- actions --------------------------------------------------------------------------

function say(text, kind) {
  const box = $("action-message");
  box.textContent = text;
  box.dataset.kind = kind;
}

async function act(path, question) {
  if (question && !window.confirm(question)) { return; }
  const token = $("token").value.trim();
  const who = $("who").value.trim();
  sessionStorage.setItem("labctl-who", who);
  const headers = { "Content-Type": "application/json" };
  if (token) { headers.Authorization = `Bearer ${token}`; }
  let answer, body;
  try {
    answer = await fetch(path, { method: "POST", headers, body: JSON.stringify(who ? { who } : {}) });
    body = await answer.json();
  } catch (error) {
    say(`not sent: ${error}`, "refused");
    return;
  }
  const box = $("action-message");
  box.dataset.status = String(answer.status);
  say(`${answer.status}: ${body.message}`, answer.ok ? "ok" : "refused");
  if (answer.ok && token) { sessionStorage.setItem("labctl-token", token); }
}

// -- the stream -----------------------------------------------------------------------

function applyStatus(status) {
  state.status = status;
  state.receivedAt = Date.now();
  renderRun();
  renderQueue();
  const key = JSON.stringify(status.runs || []);
  if (key !== state.runsKey) {
    state.runsKey = key;
    loadRuns();
  }
}

function onSnapshot(message) {
  const data = JSON.parse(message.data);
  state.version = data.version;
  state.traces = {};
  state.events = data.events || [];
  state.measurements = data.measurements || [];
  applyTraces(data.traces);
  renderEvents();
  renderMeasurements();
  applyStatus(data.status);
}

function onUpdate(message) {
  const data = JSON.parse(message.data);
  if (data.version <= state.version) { return; }
  if (data.version !== state.version + 1) { connect(); return; }  // missed one: start over
  state.version = data.version;
  applyTraces(data.traces);
  if (data.events && data.events.length) {
    state.events.push(...data.events);
    state.events = state.events.slice(-200);
    renderEvents();
  }
  if (data.measurements && data.measurements.length) {
    state.measurements.push(...data.measurements);
    state.measurements = state.measurements.slice(-60);
    renderMeasurements();
  }
  applyStatus(data.status);
}

function connect() {
  if (state.source) { state.source.close(); }
  const source = new EventSource("/api/stream");
  state.source = source;
  const pill = $("connection");
  source.addEventListener("snapshot", onSnapshot);
  source.addEventListener("update", onUpdate);
  source.onopen = () => { pill.textContent = "live"; pill.dataset.state = "live"; };
  source.onerror = () => { pill.textContent = "reconnecting"; pill.dataset.state = "lost"; };
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = sessionStorage.getItem("labctl-token") || "";
  $("who").value = sessionStorage.getItem("labctl-who") || "";
  $("credentials").addEventListener("submit", (event) => event.preventDefault());
  $("stop").addEventListener("click", () => {
    const run = $("stop").dataset.run;
    if (run) { act(`/api/runs/${encodeURIComponent(run)}/stop`, `stop run ${run} at its next safe point?`); }
  });
  window.addEventListener("resize", () => Object.keys(CHANNELS).forEach(renderTrace));
  setInterval(renderClocks, 1000);
  connect();
});
