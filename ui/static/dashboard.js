// gatehouse control-room dashboard. No libraries, no build step, no internet needed.
// Data: GET /api/v1/dashboard (bearer token) at start and when polling; live pushes over
// /ws/dashboard (the token is the first message, never in a URL).
"use strict";
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "gatehouse.dashboard.token";
const POLL_MS = 3000;
const MODES = ["ONLINE", "OFFLINE", "MANIFEST", "EMERGENCY", "CLOSED"];
const SEVERITY_WORD = { alarm: "ALARM", warn: "WARNING", ok: "OK", info: "INFO" };
const SEVERITY_ICON = { alarm: "⚠", warn: "▲", ok: "✔", info: "•" };
const PALETTE = ["#4dc3ff", "#ffb347", "#8be28b", "#ff7eb6", "#c5a3ff", "#ffe066", "#6ee7d8", "#ff8c69"];
const DASHES = ["", "6 3", "2 3", "8 3 2 3"];

const state = { token: null, role: "viewer", summary: null, ws: null, feed: "down", pollTimer: null,
                chartBy: "gate", alerts: [], retry: 0 };

// ---- token ---------------------------------------------------------------------------------
function takeTokenFromFragment() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search);  // keep it off screen and history
}

function showLogin(message) {
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").focus();
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("token").value.trim();
  if (!t) return;
  sessionStorage.setItem(TOKEN_KEY, t);
  $("token").value = "";
  start();
});

$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  stopFeed();
  state.token = null;
  showLogin("Signed out.");
});

// ---- API -----------------------------------------------------------------------------------
class AuthError extends Error {}

async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + state.token, ...(options.headers || {}) };
  if (options.body) headers["content-type"] = "application/json";
  const r = await fetch(path, { cache: "no-store", ...options, headers });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status === 401) throw new AuthError((body && body.error && body.error.message) || "token refused");
  if (!r.ok) throw new Error((body && body.error && body.error.message) || ("HTTP " + r.status));
  return body;
}

async function loadSummary() {
  const s = await api("/api/v1/dashboard");
  state.role = s.role;
  $("who").textContent = s.viewer + " (" + s.role + ")";
  render(s);
  return s;
}

// ---- live feed ------------------------------------------------------------------------------
function setFeed(kind) {
  state.feed = kind;
  const el = $("feed");
  el.className = "feed " + kind;
  el.textContent = { live: "● LIVE", polling: "◐ POLLING", down: "○ NO DATA" }[kind];
}

function stopFeed() {
  if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
  if (state.pollTimer) { clearInterval(state.pollTimer); state.pollTimer = null; }
}

function startPolling() {
  if (state.pollTimer) return;
  state.pollTimer = setInterval(async () => {
    try { await loadSummary(); if (state.feed !== "live") setFeed("polling"); }
    catch (e) { if (e instanceof AuthError) { stopFeed(); showLogin(e.message); } else setFeed("down"); }
  }, POLL_MS);
}

function connectFeed() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/ws/dashboard");
  state.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ token: state.token }));
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "hello") {
      state.retry = 0;
      setFeed("live");
      if (state.pollTimer) { clearInterval(state.pollTimer); state.pollTimer = null; }
    } else if (msg.type === "summary") {
      render(msg.summary);
    } else if (msg.type === "alert") {
      addAlert(msg.alert);
    } else if (msg.type === "resync") {
      loadSummary().catch(() => {});
    } else if (msg.type === "error") {
      ws.onclose = null;
      stopFeed();
      showLogin("The live feed refused the token (" + msg.code + ").");
    }
  };
  ws.onclose = () => {
    state.ws = null;
    setFeed(state.summary ? "polling" : "down");
    startPolling();  // keep the numbers coming while the feed is down
    const delay = Math.min(15000, 500 * 2 ** state.retry++) * (0.5 + Math.random() / 2);
    setTimeout(() => { if (state.token && !state.ws) connectFeed(); }, delay);
  };
}

async function start() {
  stopFeed();
  state.token = sessionStorage.getItem(TOKEN_KEY);
  if (!state.token) { showLogin(); return; }
  try {
    await loadSummary();
  } catch (e) {
    if (e instanceof AuthError) { sessionStorage.removeItem(TOKEN_KEY); showLogin(e.message); return; }
    setFeed("down");
  }
  $("login").hidden = true;
  connectFeed();
}

// ---- rendering helpers ---------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
const time = (t) => (t ? new Date(t * 1000).toLocaleTimeString([], { hour12: false }) : "–");
function ago(t, now) {
  if (!t) return "never";
  const s = Math.max(0, Math.round(now - t));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  return Math.floor(s / 3600) + " h ago";
}
const isSupervisor = () => state.role === "supervisor" || state.role === "admin";

// ---- render --------------------------------------------------------------------------------------
function render(s) {
  state.summary = s;
  $("event-name").textContent = s.event.name ? "· " + s.event.name : "";
  for (const b of document.querySelectorAll(".supervisor")) b.hidden = !isSupervisor();
  mergeAlerts(s.alerts);
  renderEmergency(s);
  renderKpis(s);
  renderChart(s);
  renderOccupancy(s);
  renderRefusals(s);
  renderGates(s);
  renderConflicts(s);
  renderAlerts();
}

function renderEmergency(s) {
  const e = s.emergency || {};
  const gatesInEmergency = s.gates.filter((g) => g.mode === "EMERGENCY").map((g) => g.name || g.gate_id);
  const active = e.active || gatesInEmergency.length > 0;
  $("emergency-banner").hidden = !active;
  document.body.classList.toggle("in-emergency", active);
  const parts = [];
  if (e.active) parts.push("Control room (" + (e.gates ? e.gates.join(", ") : "all gates") + "): " + e.reason + " — by " + e.by + " at " + time(e.at));
  if (gatesInEmergency.length) parts.push("Gates in EMERGENCY: " + gatesInEmergency.join(", "));
  $("emergency-text").textContent = parts.join(" · ");
  $("emergency-end").hidden = !(e.active && isSupervisor());
}

function renderKpis(s) {
  const st = s.stats;
  $("k-entries").textContent = st.entries_total.toLocaleString();
  const lastMinute = Math.floor(s.at / 60) * 60;
  let sum5 = 0;
  for (const row of st.per_gate_minute) if (row.minute > lastMinute - 300) sum5 += row.entries;
  $("k-rate").textContent = (sum5 / 5).toFixed(1);
  let inside = 0, cap = 0;
  for (const z of st.occupancy) { inside += z.inside; cap += z.capacity || 0; }
  $("k-inside").textContent = inside.toLocaleString();
  $("k-capacity").textContent = cap ? "of " + cap.toLocaleString() + " (" + Math.round(100 * inside / cap) + " %)" : "";
  $("k-refused").textContent = Object.values(st.refusals_by_reason).reduce((a, b) => a + b, 0).toLocaleString();
  $("k-conflicts").textContent = st.open_conflicts;
  $("k-conflicts").parentElement.classList.toggle("attention", st.open_conflicts > 0);
  const live = s.gates.filter((g) => g.connected).length;
  const active = s.gates.filter((g) => g.status === "active").length;
  $("k-gates").textContent = live + " / " + active;
  const counts = {};
  for (const g of s.gates) if (g.mode && g.mode !== "ONLINE") counts[g.mode] = (counts[g.mode] || 0) + 1;
  $("k-modes").textContent = Object.entries(counts).map(([m, n]) => n + " " + m).join(", ") || "all online";
  $("k-gates").parentElement.classList.toggle("attention", live < active);
}

// ---- chart (inline SVG) ----------------------------------------------------------------------------
$("by-gate").addEventListener("click", () => setChartBy("gate"));
$("by-zone").addEventListener("click", () => setChartBy("zone"));
function setChartBy(by) {
  state.chartBy = by;
  $("by-gate").classList.toggle("active", by === "gate");
  $("by-zone").classList.toggle("active", by === "zone");
  $("by-gate").setAttribute("aria-selected", by === "gate");
  $("by-zone").setAttribute("aria-selected", by === "zone");
  if (state.summary) renderChart(state.summary);
}

function renderChart(s) {
  const NS = "http://www.w3.org/2000/svg";
  const box = $("chart");
  const W = Math.max(480, box.clientWidth || 900), H = 220, L = 44, R = 120, T = 10, B = 26;
  const end = Math.floor(s.at / 60) * 60, minutes = 60, start = end - (minutes - 1) * 60;
  const rows = state.chartBy === "gate" ? s.stats.per_gate_minute : s.stats.per_zone_minute;
  const keyOf = (r) => (state.chartBy === "gate" ? r.gate_id : r.zone_id);
  const names = {};
  if (state.chartBy === "gate") for (const g of s.gates) names[g.gate_id] = g.name || g.gate_id;
  else for (const z of s.stats.occupancy) names[z.zone_id] = z.name;
  const series = new Map();
  for (const r of rows) {
    if (r.minute < start) continue;
    const k = keyOf(r);
    if (!series.has(k)) series.set(k, new Array(minutes).fill(0));
    series.get(k)[Math.round((r.minute - start) / 60)] = r.entries;
  }
  let max = 1;
  for (const v of series.values()) for (const n of v) max = Math.max(max, n);
  max = niceMax(max);
  const x = (i) => L + (i / (minutes - 1)) * (W - L - R);
  const y = (n) => T + (1 - n / max) * (H - T - B);
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  for (let i = 0; i <= 4; i++) {
    const n = (max * i) / 4;
    add("line", { x1: L, x2: W - R, y1: y(n), y2: y(n), class: "grid" });
    add("text", { x: L - 6, y: y(n) + 4, class: "axis", "text-anchor": "end" }, String(Math.round(n)));
  }
  for (let i = 0; i < minutes; i += 10) {
    add("text", { x: x(i), y: H - 6, class: "axis", "text-anchor": "middle" },
        new Date((start + i * 60) * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false }));
  }
  add("text", { x: x(minutes - 1), y: H - 6, class: "axis", "text-anchor": "middle" }, "now");
  const keys = [...series.keys()].sort((a, b) => String(a).localeCompare(String(b), undefined, { numeric: true }));
  if (!keys.length) add("text", { x: (W - R + L) / 2, y: H / 2, class: "empty", "text-anchor": "middle" }, "No entries in the last hour");
  const labels = [];
  keys.forEach((k, idx) => {
    const v = series.get(k);
    const colour = PALETTE[idx % PALETTE.length];
    const pts = v.map((n, i) => `${x(i).toFixed(1)},${y(n).toFixed(1)}`).join(" ");
    const line = add("polyline", { points: pts, fill: "none", stroke: colour, "stroke-width": 2.2,
                                   "stroke-dasharray": DASHES[Math.floor(idx / PALETTE.length) % DASHES.length] });
    line.append(Object.assign(document.createElementNS(NS, "title"), { textContent: names[k] || k }));
    labels.push({ y: y(v[minutes - 1]), text: (names[k] || k) + ": " + v[minutes - 1], colour });
  });
  // label each line at its end (the colour is not the only way to tell them apart)
  labels.sort((a, b) => a.y - b.y);
  let last = -Infinity;
  for (const lab of labels) {
    const ly = Math.max(lab.y + 4, last + 13);
    last = ly;
    add("text", { x: W - R + 6, y: ly, class: "series", fill: lab.colour }, lab.text);
  }
  box.replaceChildren(svg);
}

// a top of scale that divides into four whole-number gridlines
function niceMax(n) {
  for (const top of [4, 8, 12, 16, 20, 40, 60, 80, 100, 200, 400, 600, 800, 1000, 2000, 4000]) if (n <= top) return top;
  return Math.ceil(n / 4000) * 4000;
}

// ---- occupancy and refusals -------------------------------------------------------------------------
function bar(label, value, ratio, text, cls) {
  const fill = el("span", { class: "fill " + (cls || "") });
  fill.style.width = Math.min(100, Math.max(0, ratio * 100)).toFixed(1) + "%";
  return el("li", {}, el("span", { class: "bar-label", text: label }),
            el("span", { class: "track" }, fill), el("span", { class: "bar-value", text }));
}

function renderOccupancy(s) {
  const list = $("occupancy");
  list.replaceChildren();
  if (!s.stats.occupancy.length) list.append(el("li", { class: "empty", text: "No zones yet" }));
  for (const z of s.stats.occupancy) {
    const ratio = z.capacity ? z.inside / z.capacity : 0;
    const level = ratio >= 1 ? "over" : ratio >= 0.9 ? "high" : "";
    const flag = ratio >= 1 ? " FULL" : ratio >= 0.9 ? " NEAR CAPACITY" : "";
    const text = z.capacity ? `${z.inside.toLocaleString()} / ${z.capacity.toLocaleString()} (${Math.round(ratio * 100)} %)${flag}`
                            : `${z.inside.toLocaleString()} (no capacity set)`;
    list.append(bar(z.name, z.inside, ratio, text, level));
  }
}

function renderRefusals(s) {
  const list = $("refusals");
  list.replaceChildren();
  const items = Object.entries(s.stats.refusals_by_reason).sort((a, b) => b[1] - a[1]);
  if (!items.length) list.append(el("li", { class: "empty", text: "No refusals in the last hour" }));
  const max = items.length ? items[0][1] : 1;
  for (const [reason, n] of items) {
    const li = bar(reason, n, n / max, n.toLocaleString(), "refusal");
    li.title = (s.reason_messages && s.reason_messages[reason]) || reason;
    list.append(li);
  }
}

// ---- gates -------------------------------------------------------------------------------------------
function renderGates(s) {
  const body = $("gates").querySelector("tbody");
  body.replaceChildren();
  const zoneName = {};
  for (const z of s.stats.occupancy) zoneName[z.zone_id] = z.name;
  for (const g of s.gates) {
    const mode = g.mode || "UNKNOWN";
    const link = g.status !== "active" ? el("span", { class: "link revoked", text: "✖ revoked" })
      : g.connected ? el("span", { class: "link up", text: "● connected" })
      : el("span", { class: "link down", text: "○ not connected" });
    const upload = g.backlog === null || g.backlog === undefined ? "–" : g.backlog.toLocaleString();
    const tr = el("tr", { "data-gate": g.gate_id, class: "mode-" + mode },
      el("td", {}, el("b", { text: g.name || g.gate_id }), el("div", { class: "sub", text: g.gate_id + (g.zones.length ? " · " + g.zones.map((z) => zoneName[z] || "zone " + z).join(", ") : "") })),
      el("td", {}, link),
      el("td", {}, el("span", { class: "mode " + mode, text: mode })),
      el("td", { class: "cause", text: g.mode && g.mode !== "ONLINE" ? g.mode_cause : "" }),
      el("td", { text: ago(g.last_seen, s.at) }),
      el("td", { text: upload }),
      el("td", {}, manifestLink(g.manifest_pdf, "PDF", `manifest-${g.gate_id}.pdf`), " · ",
        manifestLink(g.manifest_csv, "CSV", `manifest-${g.gate_id}.csv`)),
      el("td", {}, isSupervisor() && g.status === "active" ? el("button", {
        class: "danger small", text: "Emergency",
        onclick: () => confirmEmergency([g.gate_id], "Emergency at " + (g.name || g.gate_id)) }) : null),
    );
    body.append(tr);
  }
  if (!s.gates.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "empty", text: "No gates enrolled" })));
}

// The manifest needs the bearer token, which a plain link cannot send: fetch it, then
// open the PDF in a new tab or save the CSV.
function manifestLink(url, label, filename) {
  return el("a", { href: url, class: "manifest-link", onclick: async (ev) => {
    ev.preventDefault();
    const tab = label === "PDF" ? window.open("", "_blank") : null;
    try {
      const r = await fetch(url, { headers: { Authorization: "Bearer " + state.token }, cache: "no-store" });
      if (!r.ok) {
        let msg = "HTTP " + r.status;
        try { msg = (await r.json()).error.message; } catch (e) { /* not JSON */ }
        throw new Error(msg);
      }
      const blobUrl = URL.createObjectURL(await r.blob());
      if (tab) tab.location = blobUrl;
      else el("a", { href: blobUrl, download: filename }).click();
      setTimeout(() => URL.revokeObjectURL(blobUrl), 60000);
    } catch (e) {
      if (tab) tab.close();
      alert("Manifest not available: " + e.message);
    }
  }, text: label });
}

// ---- conflicts -----------------------------------------------------------------------------------------
function entryText(e) {
  if (!e || !e.at) return e ? `${e.gate_id} #${e.seq} (not received yet)` : "–";
  const who = e.staff_id ? " · steward " + e.staff_id : "";
  return `${time(e.at)} · gate ${e.gate_id} #${e.seq} · ${e.kind} ${e.reason || ""} · ${e.mode}${who}`;
}

function renderConflicts(s) {
  const list = $("conflicts");
  const typing = list.contains(document.activeElement) && document.activeElement.tagName === "INPUT";
  if (typing) return;  // do not wipe what a supervisor is typing
  list.replaceChildren();
  if (!s.conflicts.length) list.append(el("li", { class: "empty", text: "No open conflicts" }));
  for (const c of s.conflicts) {
    const ticket = c.first && c.first.ticket_number ? c.first.ticket_number : c.ticket_id ?? "?";
    const li = el("li", { class: "conflict", "data-conflict": c.conflict_id },
      el("div", { class: "conflict-head" }, el("b", { text: "▲ " + c.kind.replace(/_/g, " ") }),
        el("span", { text: " ticket " + ticket + " · #" + c.conflict_id + " · " + time(c.created_at) })),
      el("div", { class: "entry", text: "1st: " + entryText(c.first) }),
      el("div", { class: "entry", text: "2nd: " + entryText(c.second) }));
    if (isSupervisor()) {
      const input = el("input", { placeholder: "Resolution (what was done)", "aria-label": "resolution", maxlength: 1000 });
      const form = el("form", { class: "resolve" }, input, el("button", { type: "submit", text: "Resolve" }));
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const resolution = input.value.trim();
        if (!resolution) { input.focus(); return; }
        try {
          await api(`/api/v1/conflicts/${c.conflict_id}/resolve`, { method: "POST", body: JSON.stringify({ resolution }) });
          input.blur();
          await loadSummary();
        } catch (e) { alert("Not resolved: " + e.message); }
      });
      li.append(form);
    }
    list.append(li);
  }
}

// ---- alerts ---------------------------------------------------------------------------------------------
const alertKey = (a) => a.source === "journal" ? a.gate_id + "#" + a.seq : a.source + a.gate_id + a.title + a.at;
function mergeAlerts(fresh) {
  const seen = new Set(state.alerts.map(alertKey));
  for (const a of fresh) if (!seen.has(alertKey(a))) state.alerts.push(a);
  state.alerts.sort((a, b) => b.at - a.at);
  state.alerts.length = Math.min(state.alerts.length, 100);
}
function addAlert(a) {
  mergeAlerts([a]);
  renderAlerts();
}

function renderAlerts() {
  const list = $("alerts");
  list.replaceChildren();
  if (!state.alerts.length) list.append(el("li", { class: "empty", text: "No alerts" }));
  for (const a of state.alerts.slice(0, 40)) {
    list.append(el("li", { class: "alert " + a.severity },
      el("span", { class: "sev", text: SEVERITY_ICON[a.severity] + " " + SEVERITY_WORD[a.severity] }),
      el("span", { class: "when", text: time(a.at) }),
      el("span", { class: "what" }, el("b", { text: (a.gate_id ? a.gate_id + " · " : "") + a.title }),
        a.text ? el("span", { class: "detail", text: " — " + a.text }) : null)));
  }
}

// ---- emergency -----------------------------------------------------------------------------------------
function confirmDialog(title, text, okLabel) {
  return new Promise((resolve) => {
    const d = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = okLabel;
    $("confirm-reason").value = "";
    d.onclose = () => resolve(d.returnValue === "ok" ? $("confirm-reason").value.trim() : null);
    d.showModal();
    $("confirm-reason").focus();
  });
}

async function confirmEmergency(gates, title) {
  const where = gates ? gates.join(", ") : "ALL gates";
  const reason = await confirmDialog(title, `Turnstiles at ${where} will be freed for egress and stay free until reset at the gate.`,
                                     "Declare emergency");
  if (!reason) return;
  try {
    await api("/api/v1/emergency", { method: "POST", body: JSON.stringify({ active: true, reason, gates }) });
    await loadSummary();
  } catch (e) { alert("Emergency NOT sent: " + e.message); }
}

$("emergency-all").addEventListener("click", () => confirmEmergency(null, "Emergency at ALL gates"));
$("emergency-end").addEventListener("click", async () => {
  const reason = await confirmDialog("End the emergency", "Gates are told the emergency is over; each resets when its fire contact is closed.",
                                     "End emergency");
  if (!reason) return;
  try {
    await api("/api/v1/emergency", { method: "POST", body: JSON.stringify({ active: false, reason }) });
    await loadSummary();
  } catch (e) { alert("Not sent: " + e.message); }
});

// ---- clock -----------------------------------------------------------------------------------------------
setInterval(() => { $("clock").textContent = new Date().toLocaleTimeString([], { hour12: false }); }, 1000);
$("clock").textContent = new Date().toLocaleTimeString([], { hour12: false });
window.addEventListener("resize", () => { if (state.summary) renderChart(state.summary); });

takeTokenFromFragment();
start();
