// gatehouse control-room dashboard. No libraries, no build step, no internet needed.
// Data: GET /api/v1/dashboard (bearer token) at start and when polling; live pushes over
// /ws/dashboard (the token is the first message, never in a URL). Words come from the
// gettext catalogues through i18n.js; the language is chosen per browser and remembered.
"use strict";
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "gatehouse.dashboard.token";
const LANG_KEY = "gatehouse.dashboard.lang";
const POLL_MS = 3000;
// the hub pushes a summary at least every 5 s: older than this, the feed is not live
const LIVE_STALE_MS = 12000;
// a websocket that has not said hello by then is not coming: poll meanwhile
const HELLO_TIMEOUT_MS = 4000;
const MODES = ["ONLINE", "OFFLINE", "MANIFEST", "EMERGENCY", "CLOSED"];
const SEVERITY_WORD = { alarm: () => t("ALARM"), warn: () => t("WARNING"), ok: () => t("OK"), info: () => t("INFO") };
const MODE_WORD = { ONLINE: () => t("ONLINE"), OFFLINE: () => t("OFFLINE"), MANIFEST: () => t("MANIFEST"),
                    EMERGENCY: () => t("EMERGENCY"), CLOSED: () => t("CLOSED"), UNKNOWN: () => t("UNKNOWN") };
const modeWord = (m) => (MODE_WORD[m] ? MODE_WORD[m]() : m);
const SEVERITY_ICON = { alarm: "⚠", warn: "▲", ok: "✔", info: "•" };
const PALETTE = ["#4dc3ff", "#ffb347", "#8be28b", "#ff7eb6", "#c5a3ff", "#ffe066", "#6ee7d8", "#ff8c69"];
const DASHES = ["", "6 3", "2 3", "8 3 2 3"];

const state = { token: null, role: "viewer", summary: null, ws: null, feed: "connecting", pollTimer: null,
                chartBy: "gate", alerts: [], retry: 0, lastData: 0, lastVia: null, helloTimer: null };

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
  showLogin(t("Signed out."));
});

// ---- API -----------------------------------------------------------------------------------
class AuthError extends Error {}

async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + state.token, ...(options.headers || {}) };
  if (options.body) headers["content-type"] = "application/json";
  const r = await fetch(path, { cache: "no-store", ...options, headers });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status === 401) throw new AuthError((body && body.error && body.error.message) || t("token refused"));
  if (!r.ok) throw new Error((body && body.error && body.error.message) || ("HTTP " + r.status));
  return body;
}

async function loadSummary(via = "poll") {
  const s = await api("/api/v1/dashboard");
  state.role = s.role;
  state.viewer = s.viewer;
  renderWho();
  gotData(via);
  render(s);
  return s;
}

function renderWho() {
  if (!state.viewer) return;
  const role = { viewer: t("viewer"), supervisor: t("supervisor"), admin: t("admin") }[state.role] || state.role;
  $("who").textContent = state.viewer + " (" + role + ")";
}

// ---- live feed ------------------------------------------------------------------------------
// The badge says what the numbers on screen are, judged by when data last arrived and how:
// LIVE (pushed over the feed within the last few seconds), POLLING (fetched), NO DATA (stale),
// CONNECTING only before the first data. It never says CONNECTING while data flows.
const FEED_WORD = { live: () => "● " + t("LIVE"), polling: () => "◐ " + t("POLLING"), down: () => "○ " + t("NO DATA"),
                    connecting: () => "○ " + t("CONNECTING") };
function setFeed(kind) {
  state.feed = kind;
  const el = $("feed");
  el.className = "feed " + kind;
  el.textContent = FEED_WORD[kind]();
  el.title = state.lastData ? t("last update {time}", { time: fmtClock(state.lastData / 1000) }) : t("live feed state");
}

function gotData(via) {
  state.lastData = Date.now();
  if (via === "ws") state.lastVia = "ws";
  else if (!(state.ws && state.ws.helloed)) state.lastVia = "poll";
  judgeFeed();
}

function judgeFeed() {
  if (!state.lastData) { setFeed(state.token ? "connecting" : "down"); return; }
  const age = Date.now() - state.lastData;
  const live = state.ws && state.ws.helloed && state.lastVia === "ws";
  if (live && age < LIVE_STALE_MS) setFeed("live");
  else if (age < POLL_MS * 3 + 2000) setFeed("polling");
  else setFeed("down");
}

function stopFeed() {
  if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
  if (state.pollTimer) { clearInterval(state.pollTimer); state.pollTimer = null; }
  if (state.helloTimer) { clearTimeout(state.helloTimer); state.helloTimer = null; }
}

function startPolling() {
  if (state.pollTimer) return;
  state.pollTimer = setInterval(async () => {
    try { await loadSummary("poll"); }
    catch (e) { if (e instanceof AuthError) { stopFeed(); showLogin(e.message); } else judgeFeed(); }
  }, POLL_MS);
}

function connectFeed() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/ws/dashboard");
  state.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ token: state.token }));
  // a feed that neither says hello nor closes (a proxy holding it open) must not freeze the page
  state.helloTimer = setTimeout(() => { if (!ws.helloed) startPolling(); }, HELLO_TIMEOUT_MS);
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "hello") {
      state.retry = 0;
      ws.helloed = true;
      if (state.pollTimer) { clearInterval(state.pollTimer); state.pollTimer = null; }
    } else if (msg.type === "summary") {
      gotData("ws");
      render(msg.summary);
    } else if (msg.type === "alert") {
      addAlert(msg.alert);
    } else if (msg.type === "resync") {
      loadSummary("ws").catch(() => {});
    } else if (msg.type === "error") {
      ws.onclose = null;
      stopFeed();
      showLogin(t("The live feed refused the token ({code}).", { code: msg.code }));
    }
  };
  ws.onclose = () => {
    state.ws = null;
    judgeFeed();
    startPolling();  // keep the numbers coming while the feed is down
    const delay = Math.min(15000, 500 * 2 ** state.retry++) * (0.5 + Math.random() / 2);
    setTimeout(() => { if (state.token && !state.ws) connectFeed(); }, delay);
  };
}

async function start() {
  stopFeed();
  state.token = sessionStorage.getItem(TOKEN_KEY);
  if (!state.token) { showLogin(); return; }
  setFeed("connecting");
  try {
    await loadSummary("poll");
  } catch (e) {
    if (e instanceof AuthError) { sessionStorage.removeItem(TOKEN_KEY); showLogin(e.message); return; }
    judgeFeed();
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
const time = (at) => fmtClock(at);
function ago(at, now) {
  if (!at) return t("never");
  const s = Math.max(0, Math.round(now - at));
  if (s < 60) return t("{n} s ago", { n: fmtNumber(s) });
  if (s < 3600) return t("{n} min ago", { n: fmtNumber(Math.floor(s / 60)) });
  return t("{n} h ago", { n: fmtNumber(Math.floor(s / 3600)) });
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
  renderForecast(s);
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
  if (e.active) parts.push(t("Control room ({gates}): {reason} — by {who} at {time}", {
    gates: e.gates ? e.gates.join(", ") : t("all gates"), reason: e.reason, who: e.by, time: time(e.at) }));
  if (gatesInEmergency.length) parts.push(t("Gates in EMERGENCY: {gates}", { gates: gatesInEmergency.join(", ") }));
  $("emergency-text").textContent = parts.join(" · ");
  $("emergency-end").hidden = !(e.active && isSupervisor());
}

function renderKpis(s) {
  const st = s.stats;
  $("k-entries").textContent = fmtNumber(st.entries_total);
  const lastMinute = Math.floor(s.at / 60) * 60;
  let sum5 = 0;
  for (const row of st.per_gate_minute) if (row.minute > lastMinute - 300) sum5 += row.entries;
  $("k-rate").textContent = fmtNumber(sum5 / 5, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  let inside = 0, cap = 0;
  for (const z of st.occupancy) { inside += z.inside; cap += z.capacity || 0; }
  $("k-inside").textContent = fmtNumber(inside);
  $("k-capacity").textContent = cap ? t("of {capacity} ({percent})", { capacity: fmtNumber(cap),
    percent: fmtNumber(inside / cap, { style: "percent" }) }) : "";
  // Entries and Inside now reconcile: entries = inside + went out + did not pass + passage
  // never reported. Admits still waiting for their passage count as inside until the
  // turnstile says otherwise; the hub's figures (stats), never recounted here.
  const f = s.entry_figures || { not_passed: 0, exits: 0 };
  $("k-entries-sub").textContent = t("did not pass: {n}", { n: fmtNumber(f.not_passed) }) + " · " +
    t("went out: {n}", { n: fmtNumber(f.exits) });
  const unconfirmed = st.unconfirmed_total || 0;
  $("k-unconfirmed").hidden = !unconfirmed;
  $("k-unconfirmed").textContent = t("passage never reported: {n}", { n: fmtNumber(unconfirmed) });
  $("k-pending").textContent = t("waiting at a turnstile: {n}", { n: fmtNumber(st.pending_total || 0) });
  $("k-refused").textContent = fmtNumber(Object.values(st.refusals_by_reason).reduce((a, b) => a + b, 0));
  $("k-conflicts").textContent = st.open_conflicts;
  $("k-conflicts").parentElement.classList.toggle("attention", st.open_conflicts > 0);
  const live = s.gates.filter((g) => g.connected).length;
  const active = s.gates.filter((g) => g.status === "active").length;
  $("k-gates").textContent = fmtNumber(live) + " / " + fmtNumber(active);
  const counts = {};
  for (const g of s.gates) if (g.mode && g.mode !== "ONLINE") counts[g.mode] = (counts[g.mode] || 0) + 1;
  $("k-modes").textContent = Object.entries(counts).map(([m, n]) => fmtNumber(n) + " " + modeWord(m)).join(", ") || t("all online");
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
  const W = Math.max(480, box.clientWidth || 900), H = 240, L = 44, R = 150, T = 12, B = 26;
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
  svg.setAttribute("aria-hidden", "true");
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
    add("text", { x: L - 6, y: y(n) + 4, class: "axis", "text-anchor": "end" }, fmtNumber(Math.round(n)));
  }
  for (let i = 0; i < minutes - 5; i += 10) {
    add("text", { x: x(i), y: H - 6, class: "axis", "text-anchor": "middle" }, fmtClock(start + i * 60, false));
  }
  add("text", { x: x(minutes - 1), y: H - 6, class: "axis", "text-anchor": "middle" }, t("now"));
  const keys = [...series.keys()].sort((a, b) => String(names[a] || a).localeCompare(String(names[b] || b), undefined, { numeric: true }));
  if (!keys.length) add("text", { x: (W - R + L) / 2, y: H / 2, class: "empty", "text-anchor": "middle" }, t("No entries in the last hour"));
  const ends = [];
  keys.forEach((k, idx) => {
    const v = series.get(k);
    const colour = PALETTE[idx % PALETTE.length];
    const pts = v.map((n, i) => `${x(i).toFixed(1)},${y(n).toFixed(1)}`).join(" ");
    const line = add("polyline", { points: pts, fill: "none", stroke: colour, "stroke-width": 2.2,
                                   "stroke-dasharray": DASHES[Math.floor(idx / PALETTE.length) % DASHES.length] });
    line.append(Object.assign(document.createElementNS(NS, "title"), { textContent: names[k] || k }));
    ends.push({ value: v[minutes - 1], name: String(names[k] || k), colour });
  });
  // Label each line at its end (colour is not the only way to tell them apart). Lines ending
  // on the same value share one label ("North 1, South 2: 0"), and labels are spread within
  // the plot's height so none overlaps another or falls off the chart.
  const groups = new Map();
  for (const e of ends) {
    if (!groups.has(e.value)) groups.set(e.value, []);
    groups.get(e.value).push(e);
  }
  const labels = [...groups.entries()].map(([value, members]) => ({
    y: y(value) + 4, value, colour: members.length === 1 ? members[0].colour : "var(--fg)",
    names: members.map((m) => m.name), colours: members.map((m) => m.colour) }));
  labels.sort((a, b) => a.y - b.y);
  const GAP = 14, top = T + 8, bottom = H - B - 2;
  const room = Math.max(1, Math.floor((bottom - top) / GAP) + 1);
  while (labels.length > room) {  // more labels than rows: merge the two closest values
    let best = 0;
    for (let i = 1; i < labels.length - 1; i++) if (labels[i + 1].y - labels[i].y < labels[best + 1].y - labels[best].y) best = i;
    const [a, b] = labels.splice(best, 2);
    labels.splice(best, 0, { y: (a.y + b.y) / 2, value: null, colour: "var(--fg)", names: [...a.names, ...b.names],
                             colours: [...a.colours, ...b.colours], range: [Math.min(a.value ?? Infinity, b.value ?? Infinity), Math.max(a.value ?? -Infinity, b.value ?? -Infinity)] });
  }
  for (let i = 0; i < labels.length; i++) labels[i].y = Math.max(labels[i].y, i ? labels[i - 1].y + GAP : top);
  for (let i = labels.length - 1; i >= 0; i--) labels[i].y = Math.min(labels[i].y, i < labels.length - 1 ? labels[i + 1].y - GAP : bottom);
  const maxChars = Math.floor((R - 10) / 7.2);
  for (const lab of labels) {
    const value = lab.value !== null ? fmtNumber(lab.value) : fmtNumber(lab.range[0]) + "–" + fmtNumber(lab.range[1]);
    const who = lab.names.length <= 2 ? lab.names.join(", ") : t("{n} lines", { n: fmtNumber(lab.names.length) });
    let text = who + ": " + value;
    if (text.length > maxChars) text = who.slice(0, Math.max(3, maxChars - value.length - 3)) + "…: " + value;
    const label = add("text", { x: W - R + 6, y: lab.y, class: "series", style: "fill: " + lab.colour }, text);
    label.append(Object.assign(document.createElementNS(NS, "title"), { textContent: lab.names.join(", ") + ": " + value }));
  }
  box.setAttribute("aria-label", t("entries per minute chart") + ": " +
    ends.map((e) => e.name + " " + fmtNumber(e.value)).join(", "));
  box.replaceChildren(svg);
}

// a top of scale that divides into four whole-number gridlines
function niceMax(n) {
  for (const top of [4, 8, 12, 16, 20, 40, 60, 80, 100, 200, 400, 600, 800, 1000, 2000, 4000]) if (n <= top) return top;
  return Math.ceil(n / 4000) * 4000;
}

// ---- forecast ------------------------------------------------------------------------------------------
function suggestionText(sg, gateName) {
  if (sg.kind === "open_lanes") {
    return sg.lanes > 0 ? t("open {n} more lanes", { n: fmtNumber(sg.lanes) }) : t("opening lanes alone will not do: delay or hold kick-off");
  }
  if (sg.kind === "redirect") {
    return t("send fans from {busy} to {spare}", { busy: sg.from_gates.map(gateName).join(", "), spare: sg.to_gates.map(gateName).join(", ") });
  }
  return sg.kind;
}

function renderForecast(s) {
  const f = s.forecast;
  const body = $("forecast").querySelector("tbody");
  body.replaceChildren();
  if (!f) return;
  const gateName = (id) => { const g = s.gates.find((x) => x.gate_id === id); return g ? (g.name || id) : id; };
  const rateSource = f.lane_rate_source === "measured" ? t("measured") : t("guidance");
  $("forecast-head").textContent = (f.kickoff_at ? t("kick-off {time}", { time: fmtClock(f.kickoff_at, false) }) : t("kick-off not set")) +
    " · " + t("{rate} per lane per minute ({source})", { rate: fmtNumber(f.lane_rate_per_min, { maximumFractionDigits: 1 }), source: rateSource });
  if (!f.zones.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "empty", text: t("No zones yet") })));
  for (const z of f.zones) {
    let status;
    if (!f.kickoff_at) status = el("span", { class: "muted", text: "–" });
    else if (z.alert) {
      status = el("div", { class: "late" },
        el("b", { text: "▲ " + t("LATE by {time}", { time: fmtDuration(z.late_s) }) }),
        ...z.suggestions.map((sg) => el("div", { class: "suggestion", text: "→ " + suggestionText(sg, gateName) })));
    } else status = el("span", { class: "in-time", text: "✔ " + t("in time") });
    const inside = z.clear_at === null ? t("not within 3 h") : z.not_arrived === 0 ? t("all in") : fmtClock(z.clear_at, false);
    body.append(el("tr", { "data-zone": z.zone_id, class: z.alert ? "alert-row" : "" },
      el("td", {}, el("b", { text: z.name })),
      el("td", { class: "num", text: fmtNumber(z.arrived) }),
      el("td", { class: "num", text: fmtNumber(z.not_arrived) }),
      el("td", { class: "num", text: fmtNumber(z.rate_per_min, { maximumFractionDigits: 1 }) }),
      el("td", { class: "num", text: fmtNumber(z.lanes) }),
      el("td", { class: "num", text: "~" + fmtNumber(z.queue) }),
      el("td", { text: inside }),
      el("td", {}, status)));
  }
  const gbody = $("forecast-gates").querySelector("tbody");
  gbody.replaceChildren();
  for (const g of f.gates) {
    gbody.append(el("tr", { "data-gate": g.gate_id },
      el("td", {}, el("b", { text: g.name })),
      el("td", {}, el("span", { class: "mode " + g.mode, text: modeWord(g.mode) })),
      el("td", { class: "num", text: fmtNumber(g.arrivals) }),
      el("td", { class: "num", text: fmtNumber(g.not_arrived) }),
      el("td", { class: "num", text: fmtNumber(g.rate_per_min, { maximumFractionDigits: 1 }) }),
      el("td", { class: "num", text: g.utilisation === null ? "–" : fmtNumber(g.utilisation, { style: "percent" }) + (g.spare ? " · " + t("spare") : "") }),
      el("td", { class: "num", text: "~" + fmtNumber(g.queue) }),
      el("td", { class: "num", text: fmtDuration(g.clear_s) })));
  }
}

// ---- occupancy and refusals -------------------------------------------------------------------------
function bar(label, value, ratio, text, cls) {
  const fill = el("span", { class: "fill " + (cls || "") });
  fill.style.width = Math.min(100, Math.max(0, ratio * 100)).toFixed(1) + "%";
  return el("li", {}, el("span", { class: "bar-label", text: label, title: label }),
            el("span", { class: "track", "aria-hidden": "true" }, fill), el("span", { class: "bar-value", text }));
}

function renderOccupancy(s) {
  const list = $("occupancy");
  list.replaceChildren();
  if (!s.stats.occupancy.length) list.append(el("li", { class: "empty", text: t("No zones yet") }));
  for (const z of s.stats.occupancy) {
    const ratio = z.capacity ? z.inside / z.capacity : 0;
    const level = ratio >= 1 ? "over" : ratio >= 0.9 ? "high" : "";
    const flag = ratio >= 1 ? " " + t("FULL") : ratio >= 0.9 ? " " + t("NEAR CAPACITY") : "";
    const text = z.capacity ? `${fmtNumber(z.inside)} / ${fmtNumber(z.capacity)} (${fmtNumber(ratio, { style: "percent" })})${flag}`
                            : t("{n} (no capacity set)", { n: fmtNumber(z.inside) });
    const li = bar(z.name, z.inside, ratio, text, level);
    // the hub's own figures for the zone: admits waiting for their passage (counted inside)
    // and admits whose passage never came (not counted)
    const notes = [];
    if (z.pending) notes.push(t("waiting at a turnstile: {n}", { n: fmtNumber(z.pending) }));
    if (z.unconfirmed) notes.push(t("passage never reported: {n}", { n: fmtNumber(z.unconfirmed) }));
    if (notes.length) li.append(el("span", { class: "bar-note" + (z.unconfirmed ? " attention" : ""), text: notes.join(" · ") }));
    list.append(li);
  }
}

function renderRefusals(s) {
  const list = $("refusals");
  list.replaceChildren();
  const items = Object.entries(s.stats.refusals_by_reason).sort((a, b) => b[1] - a[1]);
  if (!items.length) list.append(el("li", { class: "empty", text: t("No refusals in the last hour") }));
  const max = items.length ? items[0][1] : 1;
  for (const [reason, n] of items) {
    const li = bar(reason, n, n / max, fmtNumber(n), "refusal");
    li.title = reasonText(reason, s.reason_messages && s.reason_messages[reason]);
    list.append(li);
  }
}

// ---- gates -------------------------------------------------------------------------------------------
function renderGates(s) {
  const body = $("gates").querySelector("tbody");
  body.replaceChildren();
  const zoneName = {};
  for (const z of s.stats.occupancy) zoneName[z.zone_id] = z.name;
  const pending = (s.entry_figures && s.entry_figures.pending_by_gate) || {};
  for (const g of s.gates) {
    const mode = g.mode || "UNKNOWN";
    const link = g.status !== "active" ? el("span", { class: "link revoked", text: "✖ " + t("revoked") })
      : g.connected ? el("span", { class: "link up", text: "● " + t("connected") })
      : el("span", { class: "link down", text: "○ " + t("not connected") });
    const upload = g.backlog === null || g.backlog === undefined ? "–" : fmtNumber(g.backlog);
    const zones = g.zones.length ? " · " + g.zones.map((z) => zoneName[z] || t("zone {n}", { n: z })).join(", ") : "";
    const waiting = pending[g.gate_id] ? " · " + t("waiting at a turnstile: {n}", { n: fmtNumber(pending[g.gate_id]) }) : "";
    const tr = el("tr", { "data-gate": g.gate_id, class: "mode-" + mode },
      el("td", {}, el("b", { text: g.name || g.gate_id }), el("div", { class: "sub", text: g.gate_id + zones + waiting })),
      el("td", {}, link),
      el("td", {}, el("span", { class: "mode " + mode, text: modeWord(mode) })),
      el("td", { class: "cause", text: g.mode && g.mode !== "ONLINE" ? g.mode_cause : "" }),
      el("td", { text: ago(g.last_seen, s.at) }),
      el("td", { text: upload }),
      el("td", {}, manifestLink(g.manifest_pdf, "PDF", `manifest-${g.gate_id}.pdf`), " · ",
        manifestLink(g.manifest_csv, "CSV", `manifest-${g.gate_id}.csv`)),
      el("td", {}, isSupervisor() && g.status === "active" ? el("button", {
        class: "danger small", text: t("Emergency"),
        onclick: () => confirmEmergency([g.gate_id], t("Emergency at {gate}", { gate: g.name || g.gate_id })) }) : null),
    );
    body.append(tr);
  }
  if (!s.gates.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "empty", text: t("No gates enrolled") })));
}

// The manifest needs the bearer token, which a plain link cannot send: fetch it, then
// open the PDF in a new tab or save the CSV. A big manifest takes a while: the link shows
// that it is being prepared, then how much has arrived.
function manifestLink(url, label, filename) {
  const a = el("a", { href: url, class: "manifest-link", onclick: async (ev) => {
    ev.preventDefault();
    if (a.dataset.busy) return;
    a.dataset.busy = "1";
    const tab = label === "PDF" ? window.open("", "_blank") : null;
    const status = el("span", { class: "progress", role: "status", text: " " + t("preparing…") });
    a.after(status);
    try {
      const r = await fetch(url, { headers: { Authorization: "Bearer " + state.token }, cache: "no-store" });
      if (!r.ok) {
        let msg = "HTTP " + r.status;
        try { msg = (await r.json()).error.message; } catch (e) { /* not JSON */ }
        throw new Error(msg);
      }
      const total = Number(r.headers.get("content-length")) || 0;
      const rows = r.headers.get("x-manifest-rows");
      const chunks = [];
      let got = 0;
      const reader = r.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        got += value.length;
        status.textContent = " " + (total ? fmtNumber(got / total, { style: "percent" }) : fmtNumber(got / 1e6, { maximumFractionDigits: 1 }) + " MB");
      }
      status.textContent = " ✔ " + (rows ? t("{n} tickets", { n: fmtNumber(Number(rows)) }) : t("done"));
      const blobUrl = URL.createObjectURL(new Blob(chunks, { type: r.headers.get("content-type") || "" }));
      if (tab) tab.location = blobUrl;
      else el("a", { href: blobUrl, download: filename }).click();
      setTimeout(() => URL.revokeObjectURL(blobUrl), 60000);
      setTimeout(() => status.remove(), 8000);
    } catch (e) {
      if (tab) tab.close();
      status.remove();
      alert(t("Manifest not available: {error}", { error: e.message }));
    } finally {
      delete a.dataset.busy;
    }
  }, text: label });
  return a;
}

// ---- conflicts -----------------------------------------------------------------------------------------
// Conflict kinds (stable codes from the hub) in the page's language; one line each on what it means.
const KIND_WORD = {
  double_admit: () => t("double admit"),
  passage_unknown: () => t("passage unknown"),
  seq_reuse: () => t("journal number re-used"),
  manual_unknown: () => t("unknown number admitted by hand"),
};
const KIND_HELP = {
  passage_unknown: () => t("The gate never reported whether the fan passed the turnstile (gate restarted, or its journal has not arrived); not counted inside until it does."),
  seq_reuse: () => t("The gate re-used a journal number with different content (a lost journal?)."),
  manual_unknown: () => t("A steward admitted a ticket number the hub does not know."),
};
const sameEntry = (a, b) => a && b && a.gate_id === b.gate_id && a.seq === b.seq;
function entryText(e) {
  if (!e || !e.at) return e ? t("{gate} #{seq} (not received yet)", { gate: e.gate_id, seq: e.seq }) : "–";
  const who = e.staff_id ? " · " + t("steward {id}", { id: e.staff_id }) : "";
  return `${time(e.at)} · ${t("gate {gate}", { gate: e.gate_id })} #${e.seq} · ${e.kind} ${e.reason || ""} · ${e.mode}${who}`;
}

function renderConflicts(s) {
  const list = $("conflicts");
  const typing = list.contains(document.activeElement) && document.activeElement.tagName === "INPUT";
  if (typing) return;  // do not wipe what a supervisor is typing
  list.replaceChildren();
  if (!s.conflicts.length) list.append(el("li", { class: "empty", text: t("No open conflicts") }));
  for (const c of s.conflicts) {
    const ticket = c.first && c.first.ticket_number ? c.first.ticket_number : c.ticket_id ?? "?";
    const kind = KIND_WORD[c.kind] ? KIND_WORD[c.kind]() : c.kind.replace(/_/g, " ");
    const li = el("li", { class: "conflict", "data-conflict": c.conflict_id },
      el("div", { class: "conflict-head" }, el("b", { text: "▲ " + kind }),
        el("span", { text: " " + t("ticket {ticket}", { ticket }) + " · #" + c.conflict_id + " · " + time(c.created_at) })),
      ...(sameEntry(c.first, c.second)  // about one entry: show it once, with what the kind means
        ? [el("div", { class: "entry", text: entryText(c.first) })]
        : [el("div", { class: "entry", text: t("1st: {entry}", { entry: entryText(c.first) }) }),
           el("div", { class: "entry", text: t("2nd: {entry}", { entry: entryText(c.second) }) })]),
      KIND_HELP[c.kind] ? el("div", { class: "sub", text: KIND_HELP[c.kind]() }) : null);
    if (isSupervisor()) {
      const input = el("input", { placeholder: t("Resolution (what was done)"), "aria-label": t("Resolution (what was done)"), maxlength: 1000 });
      const form = el("form", { class: "resolve" }, input, el("button", { type: "submit", text: t("Resolve") }));
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const resolution = input.value.trim();
        if (!resolution) { input.focus(); return; }
        try {
          await api(`/api/v1/conflicts/${c.conflict_id}/resolve`, { method: "POST", body: JSON.stringify({ resolution }) });
          input.blur();
          await loadSummary();
        } catch (e) { alert(t("Not resolved: {error}", { error: e.message })); }
      });
      li.append(form);
    }
    list.append(li);
  }
}

// ---- alerts ---------------------------------------------------------------------------------------------
// Titles the hub sends in English are translated here (they are msgids in the catalogue);
// the detail text is the gate's own words and stays as it is.
const alertKey = (a) => a.source === "journal" ? a.gate_id + "#" + a.seq : a.source + a.gate_id + a.title + a.at;
function mergeAlerts(fresh) {
  const seen = new Set(state.alerts.map(alertKey));
  for (const a of fresh) if (!seen.has(alertKey(a))) state.alerts.push(a);
  state.alerts.sort((a, b) => b.at - a.at);
  state.alerts.length = Math.min(state.alerts.length, 200);
}
function addAlert(a) {
  mergeAlerts([a]);
  renderAlerts();
}

function alertTitle(a) {
  const args = { ...(a.title_args || {}) };
  if (args.mode) args.mode = modeWord(args.mode);
  if (args.kind) args.kind = KIND_WORD[args.kind.replace(/ /g, "_")] ? KIND_WORD[args.kind.replace(/ /g, "_")]() : args.kind;
  return t(a.title_id || a.title, args);
}

// The same alert (title, detail and severity) from one gate or many within two minutes shows
// once, with the gates, a count and the time span: gates coming up at start-up are one line
// each kind, not hundreds.
const GROUP_WINDOW_S = 120;
function groupAlerts(alerts) {
  const groups = [];
  const open = new Map();
  for (const a of alerts) {  // newest first
    const key = [alertTitle(a), a.text || "", a.severity].join("\u0001");
    const g = open.get(key);
    if (g && g.first - a.at <= GROUP_WINDOW_S) {
      g.count += 1;
      g.first = a.at;
      if (a.gate_id && !g.gates.includes(a.gate_id)) g.gates.push(a.gate_id);
    } else {
      const fresh = { ...a, count: 1, first: a.at, gates: a.gate_id ? [a.gate_id] : [] };
      open.set(key, fresh);
      groups.push(fresh);
    }
  }
  return groups;
}

function gatesText(gates) {
  if (gates.length <= 3) return gates.join(", ");
  return gates.slice(0, 3).join(", ") + " " + t("+{n} more", { n: fmtNumber(gates.length - 3) });
}

function renderAlerts() {
  const list = $("alerts");
  list.replaceChildren();
  if (!state.alerts.length) list.append(el("li", { class: "empty", text: t("No alerts") }));
  for (const a of groupAlerts(state.alerts).slice(0, 40)) {
    const when = a.count > 1 ? time(a.first) + "–" + time(a.at) : time(a.at);
    list.append(el("li", { class: "alert " + a.severity, "data-count": a.count },
      el("span", { class: "sev", text: SEVERITY_ICON[a.severity] + " " + SEVERITY_WORD[a.severity]() }),
      el("span", { class: "when", text: when }),
      el("span", { class: "what" }, el("b", { text: (a.gates.length ? gatesText(a.gates) + " · " : "") + alertTitle(a) }),
        a.text ? el("span", { class: "detail", text: " — " + a.text }) : null,
        a.count > 1 ? el("span", { class: "repeat", text: " ×" + fmtNumber(a.count) }) : null)));
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
  const where = gates ? gates.join(", ") : t("ALL gates");
  const reason = await confirmDialog(title, t("Turnstiles at {where} will be freed for egress and stay free until reset at the gate.", { where }),
                                     t("Declare emergency"));
  if (!reason) return;
  try {
    await api("/api/v1/emergency", { method: "POST", body: JSON.stringify({ active: true, reason, gates }) });
    await loadSummary();
  } catch (e) { alert(t("Emergency NOT sent: {error}", { error: e.message })); }
}

$("emergency-all").addEventListener("click", () => confirmEmergency(null, t("Emergency at ALL gates")));
$("emergency-end").addEventListener("click", async () => {
  const reason = await confirmDialog(t("End the emergency"), t("Gates are told the emergency is over; each resets when its fire contact is closed."),
                                     t("End emergency"));
  if (!reason) return;
  try {
    await api("/api/v1/emergency", { method: "POST", body: JSON.stringify({ active: false, reason }) });
    await loadSummary();
  } catch (e) { alert(t("Not sent: {error}", { error: e.message })); }
});

// ---- language ------------------------------------------------------------------------------------------
function fillLanguages() {
  const sel = $("lang");
  sel.replaceChildren(...I18N.languages.map((l) => el("option", { value: l.tag, text: l.name, lang: l.tag })));
  sel.value = I18N.lang;
}

$("lang").addEventListener("change", async () => {
  const wanted = $("lang").value;
  try {
    await loadCatalogue(wanted);
    localStorage.setItem(LANG_KEY, I18N.lang);
  } catch (e) { /* keep the current language; the select shows it again */ }
  fillLanguages();
  renderWho();
  judgeFeed();
  if (state.summary) render(state.summary);
});

// ---- clock -----------------------------------------------------------------------------------------------
function tick() {
  $("clock").textContent = fmtClock(Date.now() / 1000);
  judgeFeed();
}
window.addEventListener("resize", () => { if (state.summary) renderChart(state.summary); });

(async () => {
  try { await loadCatalogue(localStorage.getItem(LANG_KEY) || "auto"); }
  catch (e) { try { await loadCatalogue("en"); } catch (e2) { /* English is in the page itself */ } }
  fillLanguages();
  tick();
  setInterval(tick, 1000);
  takeTokenFromFragment();
  start();
})();
