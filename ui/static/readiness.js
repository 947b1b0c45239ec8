// The readiness page: GET /api/v1/readiness every 10 s; supervisors waive a ✖ in a named
// supervisor's name (POST /api/v1/readiness/waivers) or withdraw a waiver; the PDF is fetched with the token.
"use strict";

async function waive(line) {
  const supervisor = prompt(`Waive "${line.subject}: ${line.check}".\nSupervisor who takes responsibility (name):`);
  if (!supervisor) return;
  const reason = prompt("Reason (recorded in the audit log):");
  if (!reason) return;
  try {
    await api("/api/v1/readiness/waivers", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ check: line.key, supervisor, reason }) });
    await load();
  } catch (e) { showError(e); }
}

async function withdraw(line) {
  if (!confirm(`Withdraw ${line.waiver.supervisor}'s waiver of "${line.subject}: ${line.check}"?`)) return;
  try {
    await api(`/api/v1/readiness/waivers/${line.waiver.waiver_id}/withdraw`, { method: "POST" });
    await load();
  } catch (e) { showError(e); }
}

async function load() {
  try {
    const r = await api("/api/v1/readiness");
    showError(null);
    const v = document.getElementById("verdict");
    v.textContent = r.ready ? "✔ READY" : `✖ NOT READY — ${r.failing} open`;
    v.className = "verdict " + (r.ready ? "ok" : "fail");
    document.getElementById("summary").textContent =
      `${r.event_name} · ${r.lines.length} checks · ${r.waived} waived · hub seq ${r.hub_seq}`;
    document.getElementById("at").textContent = new Date(r.at * 1000).toLocaleTimeString();
    const rows = r.lines.map((ln) => {
      const mark = { ok: "✔", fail: "✖", waived: "✔ waived" }[ln.status];
      const what = el("td", {}, ln.detail);
      if (ln.status === "fail" && ln.action) what.append(el("div", { class: "action" }, "→ " + ln.action));
      if (ln.waiver) what.append(el("div", { class: "action" },
        `waived by ${ln.waiver.supervisor} (${ln.waiver.actor}): ${ln.waiver.reason}`));
      const act = el("td");
      if (ln.status === "fail") act.append(el("button", { onclick: () => waive(ln) }, "Waive…"));
      if (ln.status === "waived") act.append(el("button", { onclick: () => withdraw(ln) }, "Withdraw waiver"));
      return el("tr", { "data-key": ln.key, class: ln.status }, el("td", {}, mark), el("td", {}, ln.subject),
        el("td", {}, ln.check), what, act);
    });
    document.getElementById("lines").replaceChildren(...rows);
  } catch (e) { showError(e); }
}

document.getElementById("pdf").addEventListener("click", async () => {
  try {
    const blob = await api("/api/v1/readiness.pdf");
    window.open(URL.createObjectURL(blob), "_blank");
  } catch (e) { showError(e); }
});

if (!needToken()) {
  load();
  setInterval(load, 10000);
}
