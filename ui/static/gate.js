// Gate staff screen: polls the agent's local /status (works with the hub unreachable).
// Words come from the gate's language catalogue, inlined in the page (i18n.js).
"use strict";
const $ = (id) => document.getElementById(id);
useCatalogue(JSON.parse($("i18n-catalogue").textContent));
let lastSeq = null;
let shownAt = 0;
let lastMode = null;
// a verdict stays on screen this long, then the screen is ready for the next fan
const VERDICT_MS = 8000;
const IDLE_TEXT = {
  MANIFEST: () => [t("MANIFEST"), t("Scanner or replica not usable — check tickets against the manifest below")],
  EMERGENCY: () => [t("EMERGENCY"), t("Free egress — let people out, do not scan")],
  CLOSED: () => [t("CLOSED"), t("This gate is closed")],
  OFFLINE: () => [t("READY"), t("Scan a ticket (offline: deciding locally)")],
};
const MODE_WORD = { ONLINE: () => t("ONLINE"), OFFLINE: () => t("OFFLINE"), MANIFEST: () => t("MANIFEST"),
                    EMERGENCY: () => t("EMERGENCY"), CLOSED: () => t("CLOSED") };
const modeWord = (m) => (MODE_WORD[m] ? MODE_WORD[m]() : m);

// GO and STOP are told by an icon and a word, and a solid or dashed border, not by colour alone.
function show(v) {
  const box = $("verdict");
  const admit = v.reason.startsWith("ADMIT");
  box.className = admit ? "admit" : "refuse";
  box.querySelector(".icon").textContent = admit ? "✔" : "✖";
  box.querySelector(".word").textContent = admit ? t("GO") : t("STOP");
  box.querySelector(".message").textContent = reasonText(v.reason, v.message, v.right_gates);
  box.querySelector(".ticket").textContent = (v.ticket ? t("Ticket {ticket}", { ticket: v.ticket }) + " · " : "") + v.reason;
  shownAt = Date.now();
}

function idle(mode) {
  const box = $("verdict");
  const [word, message] = IDLE_TEXT[mode] ? IDLE_TEXT[mode]() : [t("READY"), t("Scan a ticket")];
  box.className = "idle idle-" + mode;
  box.querySelector(".icon").textContent = "";
  box.querySelector(".word").textContent = word;
  box.querySelector(".message").textContent = message;
  box.querySelector(".ticket").textContent = "";
  shownAt = 0;
}

const clock = (at) => fmtClock(at);

// A replica snapshot from the hub (a new or rebuilt gate) can be a million rows: show how far.
function showSnapshot(snap) {
  const box = $("snapshot");
  box.hidden = !snap;
  if (!snap) return;
  const pct = snap.total_rows ? snap.done_rows / snap.total_rows : 0;
  box.querySelector(".snap-text").textContent = t("Loading tickets from the hub: {done} of {total} ({percent})", {
    done: fmtNumber(snap.done_rows), total: fmtNumber(snap.total_rows), percent: fmtNumber(pct, { style: "percent" }) });
  $("snap-bar").value = Math.round(100 * pct);
}

// The screen session: every /api/ call carries it. The kiosk's page has it built in; a screen
// opened from another machine is opened as …/#session=TOKEN (the gate's staff-screen.token)
// and keeps it for this tab only.
const SESSION = (() => {
  const built = document.querySelector('meta[name="gate-session"]');
  if (built && built.content) return built.content;
  const m = location.hash.match(/session=([^&]+)/);
  if (m) {
    sessionStorage.setItem("gate-session", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("gate-session") || "";
})();

// The agent's refusals of a screen call, in the screen's language (codes from status_server.py);
// any other refusal shows the agent's own words.
const SCREEN_REFUSAL = {
  session_required: () => t("This screen has no session: reload the staff screen"),
  session_invalid: () => t("The gate restarted: reload the staff screen"),
  cross_origin: () => t("Refused: the request came from another site"),
  unsupported_media_type: () => t("Refused: the screen sent something the gate does not take"),
  bad_request: () => t("Refused: the gate did not understand the request"),
  journal_unavailable: () => t("The gate cannot record anything: nothing was admitted. Call a technician"),
};

// Every call to the agent's API goes through here: JSON both ways, the session attached. A
// refusal is shown on the screen (never dropped) and gives null; a session made stale by a
// restart of the agent reloads the page once to get the new one.
async function api(path, body) {
  const init = { cache: "no-store", headers: { "x-gate-session": SESSION } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const data = await r.json().catch(() => ({}));
  if (r.ok) return data;
  const err = data.error || { code: "HTTP_" + r.status, message: "" };
  const own = SCREEN_REFUSAL[err.code];
  err.message = own ? own() : err.message || t("The gate refused the request (HTTP {status})", { status: r.status });
  const reloaded = Number(sessionStorage.getItem("gate-reloaded-at") || 0);
  if (err.code === "session_invalid" && Date.now() - reloaded > 30000) {
    sessionStorage.setItem("gate-reloaded-at", String(Date.now()));
    location.reload();
  }
  show({ reason: String(err.code).toUpperCase(), message: err.message, ticket: null });
  return null;
}

async function poll() {
  try {
    const r = await fetch("/status", { cache: "no-store" });
    const s = await r.json();
    const mode = $("mode");
    mode.textContent = modeWord(s.mode);
    mode.className = s.mode;
    showSnapshot(s.snapshot);
    $("cause").textContent = s.mode === "ONLINE" ? "" : s.mode_cause;
    $("admitted").textContent = s.lane.admitted ?? 0;
    $("refused").textContent = s.lane.refused ?? 0;
    $("not_passed").textContent = s.lane.not_passed ?? 0;
    $("backlog").textContent = s.backlog ?? "–";
    $("manifest").hidden = s.mode !== "MANIFEST";
    document.body.className = "mode-" + s.mode;
    const recent = s.recent || [];
    if (s.mode !== lastMode) {
      lastMode = s.mode;
      idle(s.mode);  // a GO from before the scanner died must not stay on screen
      if (recent.length) lastSeq = recent[0].seq;
    }
    if (recent.length && recent[0].seq !== lastSeq) {
      lastSeq = recent[0].seq;
      show(recent[0]);
    } else if (shownAt && Date.now() - shownAt > VERDICT_MS) {
      idle(s.mode);
    }
    $("recent").innerHTML = "";
    for (const v of recent.slice(0, 8)) {
      const admit = v.reason.startsWith("ADMIT");
      const li = document.createElement("li");
      li.className = admit ? "r-admit" : "r-refuse";
      const mark = document.createElement("b");
      mark.textContent = (admit ? "✔ " : "✖ ") + v.reason;
      li.append(clock(v.at) + "  ", mark, "  " + (v.ticket ?? "") + "  " + reasonText(v.reason, v.message, v.right_gates) +
                (v.manual ? "  (" + t("manual") + ")" : ""));
      $("recent").appendChild(li);
    }
  } catch (e) {
    $("mode").textContent = t("AGENT DOWN");
    $("mode").className = "EMERGENCY";
  }
}

$("keyed").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const code = $("code").value.trim();
  if (!code) return;
  $("code").value = "";
  const v = await api("/api/keyed", { code });
  if (v) show(v);
  poll();
});

$("msearch").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = $("mq").value.trim();
  if (!q) return;
  const data = await api("/api/manifest/search?q=" + encodeURIComponent(q));
  if (!data) return;
  const list = $("mresults");
  list.innerHTML = "";
  if (!data.matches.length) {
    const li = document.createElement("li");
    li.textContent = t("Not on the manifest");
    list.appendChild(li);
  }
  for (const m of data.matches) {
    const li = document.createElement("li");
    const status = { revoked: t("CANCELLED"), superseded: t("REPLACED") }[m.status] || m.status.toUpperCase();
    li.textContent = m.number + "  [" + m.check_code + "]  " + m.holder + "  " + m.zone_name + " " + m.seat +
      (m.status !== "valid" ? "  — " + status : "") + (m.ticked_by ? "  — " + t("already admitted by {steward}", { steward: m.ticked_by }) : "");
    if (m.ticked_by || m.status !== "valid") li.className = "ticked";
    li.addEventListener("click", () => { $("mtyped").value = m.number; $("msteward").focus(); });
    list.appendChild(li);
  }
});

$("madmit").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { typed: $("mtyped").value.trim(), steward_id: $("msteward").value.trim(), pin: $("mpin").value,
                 override: $("moverride").checked, note: $("mnote").value };
  $("mpin").value = "";
  const v = await api("/api/manual-admit", body);
  if (!v) return;
  if (v.reason) show({ reason: v.admitted ? "ADMIT" : v.reason, message: v.message, ticket: v.ticket });
  if (v.admitted) { $("mtyped").value = ""; $("moverride").checked = false; $("mnote").value = ""; }
  poll();
});

setInterval(poll, 400);
poll();
