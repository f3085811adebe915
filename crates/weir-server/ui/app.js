// The weir dashboard: a small front end with no build step, embedded in the `weir` binary.
// It reads the JSON API of `weir serve` (/overview, /assets/{name}, /lineage, /incidents) and
// polls it every few seconds, so a run that fails shows up without reloading the page. Every
// value from the server is escaped before it is put into the page: asset names, error
// messages and descriptions come from users' files.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "weir-token";
const view = document.getElementById("view");
const live = document.getElementById("live");
const login = document.getElementById("login");
let timer = null;
let rendering = 0;

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

function span(seconds) {
  if (seconds == null) return "–";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 129600) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function when(text) {
  if (!text) return "–";
  const t = new Date(text);
  return Number.isNaN(t.getTime()) ? esc(text) : esc(t.toLocaleString());
}

function pct(ratio) {
  return ratio == null ? "–" : `${(ratio * 100).toFixed(2)} %`;
}

function count(n) {
  return n == null ? "–" : Number(n).toLocaleString();
}

class Unauthorized extends Error {}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized();
  const body = await response.json();
  if (!response.ok) throw new Error(body?.error?.message ?? `${path}: HTTP ${response.status}`);
  return body;
}

function assetLink(name) {
  return `<a href="#/asset/${encodeURIComponent(name)}">${esc(name)}</a>`;
}

function badge(status) {
  return `<span class="badge s-${esc(status)}">${esc(status)}</span>`;
}

// ---------- overview ----------

function healthCard(a) {
  const last = a.last_run;
  const freshness = a.sla_seconds != null
    ? `${span(a.lag_seconds)} old · SLA ${span(a.sla_seconds)}`
    : (a.lag_seconds != null ? `${span(a.lag_seconds)} old` : "never published");
  return `<a class="card h-${esc(a.health)}" href="#/asset/${encodeURIComponent(a.name)}"
      data-asset="${esc(a.name)}" data-health="${esc(a.health)}">
    <strong>${esc(a.name)}</strong>
    <span class="health">${esc(a.health.replace("_", " "))}</span>
    <span class="muted">${esc(a.kind)}${a.team ? " · " + esc(a.team) : ""}</span>
    <span class="muted">${last ? "last run " + esc(last.status) : "no run yet"}</span>
    <span class="muted">${freshness}</span>
  </a>`;
}

function incidentRows(incidents) {
  if (!incidents.length) return `<p class="muted" data-empty="incidents">No open incident.</p>`;
  return `<table><thead><tr><th>#</th><th>status</th><th>kind</th><th>title</th><th>team</th>
    <th>started</th><th>affected</th></tr></thead><tbody>${incidents.map((i) => `
    <tr data-incident="${esc(i.id)}" data-root="${esc(i.root_asset)}">
      <td>${esc(i.id)}</td><td>${badge(i.status)}</td><td>${esc(i.kind)}</td>
      <td>${esc(i.title)}</td><td>${esc(i.team ?? "–")}</td><td>${when(i.started_at)}</td>
      <td>${(i.affected ?? []).map((a) => assetLink(a.asset)).join(", ") || "–"}</td>
    </tr>`).join("")}</tbody></table>`;
}

function runRows(runs) {
  if (!runs.length) return `<p class="muted">No run yet.</p>`;
  return `<table><thead><tr><th>asset</th><th>status</th><th>trigger</th><th>started</th>
    <th>duration</th><th class="num">rows in</th><th class="num">stored</th>
    <th class="num">quarantined</th></tr></thead><tbody>${runs.map((r) => `
    <tr data-run="${esc(r.id)}"><td>${assetLink(r.asset)}</td><td>${badge(r.status)}</td>
      <td>${esc(r.trigger)}</td><td>${when(r.started_at)}</td><td>${span(r.duration_seconds)}</td>
      <td class="num">${count(r.rows_in)}</td><td class="num">${count(r.rows_stored)}</td>
      <td class="num">${count(r.rows_quarantined)}</td></tr>`).join("")}</tbody></table>`;
}

async function overview() {
  const o = await api("/overview");
  const counts = ["fresh", "late", "failing", "blocked", "not_run"]
    .map((h) => `<span class="chip h-${h}" data-count="${h}">${esc(h.replace("_", " "))}
      <b>${o.health_counts[h] ?? 0}</b></span>`).join("");
  const teams = o.teams.length ? `<table><thead><tr><th>team</th><th class="num">SLOs met</th>
      <th class="num">least error budget left</th><th class="num">burn-rate alerts</th></tr></thead>
      <tbody>${o.teams.map((t) => `<tr data-team="${esc(t.team)}"><td>${esc(t.team)}</td>
      <td class="num">${t.met} / ${t.measured}</td><td class="num">${pct(t.least_budget_remaining)}</td>
      <td class="num">${t.alerts}</td></tr>`).join("")}</tbody></table>`
    : `<p class="muted">No SLO measured yet.</p>`;
  return `<section><h1>Assets</h1><div class="chips">${counts}</div>
      <div class="grid" id="health-grid">${o.assets.map(healthCard).join("")}</div></section>
    <section><h2>Open incidents <span class="muted" data-open-incidents="${o.incidents.length}">
      (${o.incidents.length})</span></h2>${incidentRows(o.incidents)}</section>
    <section><h2>SLO compliance per team</h2>${teams}</section>
    <section><h2>Recent runs</h2>${runRows(o.recent_runs)}</section>`;
}

// ---------- asset page ----------

// A bar chart of one number per run, oldest first; anomalous runs ringed in red.
function barChart(runs, value, label, anomalous) {
  const w = 640, h = 140, pad = 28;
  const values = runs.map(value);
  const max = Math.max(1, ...values.filter((v) => v != null));
  const step = runs.length ? (w - pad) / runs.length : 0;
  const bars = runs.map((r, i) => {
    const v = values[i] ?? 0;
    const bh = (v / max) * (h - pad);
    const x = pad + i * step;
    const y = h - pad / 2 - bh;
    const cls = anomalous.has(r.id) ? "bar anomaly" : `bar s-${esc(r.status)}`;
    return `<rect class="${cls}" x="${x.toFixed(1)}" y="${y.toFixed(1)}"
      width="${Math.max(1, step - 2).toFixed(1)}" height="${Math.max(0, bh).toFixed(1)}"
      data-run="${esc(r.id)}"><title>${esc(r.started_at)}: ${esc(v)} (${esc(r.status)})</title></rect>`;
  }).join("");
  return `<figure><figcaption>${esc(label)}</figcaption>
    <svg class="chart" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(label)}">
      <text x="0" y="12" class="axis">${count(max)}</text>
      <line x1="${pad}" x2="${w}" y1="${h - pad / 2}" y2="${h - pad / 2}" class="axis-line"/>
      ${bars}</svg></figure>`;
}

function neighbourhood(a) {
  const cards = (list) => list.length ? list.map(healthCard).join("") : `<p class="muted">none</p>`;
  return `<div class="neighbours"><div><h3>Upstream</h3>${cards(a.upstream)}</div>
    <div class="this">${healthCard(a.asset)}</div>
    <div><h3>Downstream</h3>${cards(a.downstream)}</div></div>`;
}

async function assetPage(name) {
  const a = await api(`/assets/${encodeURIComponent(name)}`);
  const s = a.asset;
  const anomalous = new Set(a.anomalies.map((x) => x.run_id));
  const quality = (r) => (r.rows_in ? r.rows_quarantined / r.rows_in * 100 : 0);
  const columns = a.columns.map((c) => `<tr data-column="${esc(c.name)}"><td>${esc(c.name)}</td>
    <td><code>${esc(c.type)}</code></td><td>${c.required ? "yes" : ""}</td>
    <td>${c.primary_key ? "primary key" : (c.unique ? "unique" : "")}</td>
    <td>${esc(c.description ?? "")}</td></tr>`).join("");
  return `<section data-asset-page="${esc(s.name)}">
      <h1>${esc(s.name)} <span class="health-pill h-${esc(s.health)}">${esc(s.health.replace("_", " "))}</span></h1>
      <p>${esc(a.description ?? "")}</p>
      <dl class="facts">
        <dt>kind</dt><dd>${esc(s.kind)}${a.model ? ` (${esc(a.model.materialization)}, ${esc(a.model.path)})` : ""}${a.source ? ` (${esc(a.source.format)} from ${esc(a.source.path)})` : ""}</dd>
        <dt>team</dt><dd>${esc(s.team ?? "–")}</dd>
        <dt>owners</dt><dd>${esc(s.owners.join(", ") || "–")}</dd>
        <dt>contract</dt><dd>${esc(a.contract.id)} v${esc(a.contract.version)} (${esc(a.contract.status)}) · <code>${esc(a.contract.path)}</code></dd>
        <dt>freshness</dt><dd>${span(s.lag_seconds)} old${s.sla_seconds != null ? ` · SLA ${span(s.sla_seconds)}` : ""}</dd>
      </dl></section>
    <section><h2>Lineage</h2>${neighbourhood(a)}</section>
    <section><h2>Runs</h2>
      <div class="charts">
        ${barChart(a.runs, (r) => r.rows_stored, "rows stored per run", anomalous)}
        ${barChart(a.runs, quality, "quarantined share per run (%)", anomalous)}
        ${barChart(a.runs, (r) => r.duration_seconds, "duration per run (s)", anomalous)}
      </div>
      <p class="muted">${a.anomalies.length ? `${a.anomalies.length} run(s) with an anomaly, ringed in red.` : "No anomaly detected."}</p>
      ${runRows([...a.runs].reverse().slice(0, 15))}</section>
    <section><h2>Schema</h2><table><thead><tr><th>column</th><th>type</th><th>required</th>
      <th>key</th><th>description</th></tr></thead><tbody>${columns}</tbody></table></section>
    <section><h2>Incidents</h2>${incidentRows(a.incidents)}</section>`;
}

// ---------- lineage graph ----------

async function lineagePage() {
  const g = await api("/lineage");
  const colW = 210, rowH = 64, nodeW = 170, nodeH = 40;
  const rows = {};
  const pos = {};
  for (const n of g.nodes) {
    const r = rows[n.depth] = (rows[n.depth] ?? 0) + 1;
    pos[n.name] = { x: 10 + n.depth * colW, y: 10 + (r - 1) * rowH };
  }
  const width = 20 + (Math.max(0, ...g.nodes.map((n) => n.depth)) + 1) * colW;
  const height = 20 + Math.max(1, ...Object.values(rows)) * rowH;
  const edges = g.edges.filter((e) => pos[e.from] && pos[e.to]).map((e) => {
    const a = pos[e.from], b = pos[e.to];
    const x1 = a.x + nodeW, y1 = a.y + nodeH / 2, x2 = b.x, y2 = b.y + nodeH / 2;
    const mid = (x1 + x2) / 2;
    return `<path class="edge" data-edge="${esc(e.from)}→${esc(e.to)}"
      d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}"/>`;
  }).join("");
  const nodes = g.nodes.map((n) => {
    const p = pos[n.name];
    return `<a href="#/asset/${encodeURIComponent(n.name)}"><g class="node h-${esc(n.health)}"
        data-node="${esc(n.name)}" data-health="${esc(n.health)}">
      <rect x="${p.x}" y="${p.y}" width="${nodeW}" height="${nodeH}" rx="6"/>
      <text x="${p.x + 8}" y="${p.y + 17}">${esc(n.name)}</text>
      <text x="${p.x + 8}" y="${p.y + 32}" class="sub">${esc(n.kind)} · ${esc(n.health.replace("_", " "))}</text>
      <title>${esc(n.name)} (${esc(n.team ?? "no team")})</title></g></a>`;
  }).join("");
  return `<section><h1>Lineage</h1><p class="muted">${g.nodes.length} assets, ${g.edges.length}
      dependencies; sources on the left.</p>
    <div class="scroll"><svg id="lineage-graph" width="${width}" height="${height}"
      viewBox="0 0 ${width} ${height}">${edges}${nodes}</svg></div></section>`;
}

// ---------- incidents ----------

async function incidentsPage() {
  const { incidents } = await api("/incidents?all=true");
  const mins = (from, to) => (from && to ? span((new Date(to) - new Date(from)) / 1000) : "–");
  const rows = incidents.map((i) => `<tr data-incident="${esc(i.id)}" data-root="${esc(i.root_asset)}">
    <td>${esc(i.id)}</td><td>${badge(i.status)}</td><td>${esc(i.kind)}</td>
    <td>${assetLink(i.root_asset)}</td><td>${esc(i.title)}</td><td>${esc(i.team ?? "–")}</td>
    <td>${when(i.started_at)}</td><td>${mins(i.started_at, i.detected_at)}</td>
    <td>${mins(i.started_at, i.resolved_at)}</td>
    <td>${(i.affected ?? []).length}</td></tr>`).join("");
  return `<section><h1>Incidents</h1>${incidents.length ? `<table><thead><tr><th>#</th>
    <th>status</th><th>kind</th><th>asset</th><th>title</th><th>team</th><th>started</th>
    <th>time to detect</th><th>time to resolve</th><th class="num">affected</th></tr></thead>
    <tbody>${rows}</tbody></table>` : `<p class="muted" data-empty="incidents">No incident yet.</p>`}
    </section>`;
}

// ---------- routing and polling ----------

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  if (hash.startsWith("/asset/")) return ["asset", () => assetPage(decodeURIComponent(hash.slice(7)))];
  if (hash === "/lineage") return ["lineage", lineagePage];
  if (hash === "/incidents") return ["incidents", incidentsPage];
  return ["overview", overview];
}

async function render() {
  const ticket = ++rendering;
  const [name, page] = route();
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === name);
  }
  try {
    const html = await page();
    if (ticket !== rendering) return; // a newer render started meanwhile
    login.hidden = true;
    view.dataset.view = name;
    view.innerHTML = html;
    live.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    live.className = "ok";
    view.dataset.updated = String(Date.now());
  } catch (e) {
    if (ticket !== rendering) return;
    if (e instanceof Unauthorized) {
      login.hidden = false;
      document.getElementById("login-error").textContent =
        sessionStorage.getItem(TOKEN_KEY) ? "The server refused that token." : "";
      view.dataset.view = "login";
      view.innerHTML = "";
      live.textContent = "token needed";
      live.className = "bad";
      return;
    }
    live.textContent = `not updated: ${e.message}`;
    live.className = "bad";
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    await render();
    schedule();
  }, POLL_MS);
}

login.addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
  render();
});
window.addEventListener("hashchange", () => { render(); schedule(); });
render();
schedule();
