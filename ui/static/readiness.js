// The readiness page: GET /api/v1/readiness every 10 s; supervisors waive a ✖ in a named
// supervisor's name (POST /api/v1/readiness/waivers) or withdraw a waiver; the PDF is fetched with the token.
// The page's own words are translated; what the hub found (detail, action) is the hub's text.
"use strict";
let last = null;

// Checks by their stable key (the last part of line.key); a check the page does not know
// shows as the hub named it.
const CHECK_WORD = {
  capacity: () => t("capacity"), seats: () => t("double-sold seats"), gates: () => t("admitted at"),
  enrolled: () => t("enrolled"), online: () => t("online"), replica: () => t("replica"),
  manifest_printed: () => t("manifest printed"), manifest_pushed: () => t("manifest on the gate"),
  stewards: () => t("steward PINs"), mode: () => t("mode"), scanner: () => t("scanner"),
  turnstile: () => t("turnstile"), clock: () => t("clock"),
};

function checkWord(line) {
  const word = CHECK_WORD[line.key.slice(line.key.lastIndexOf(":") + 1)];
  return word ? word() : line.check;
}

function subjectWord(line) {
  if (line.scope === "zone" && line.subject.startsWith("zone ")) return t("zone {name}", { name: line.subject.slice(5) });
  if (line.scope === "gate" && line.subject.startsWith("gate ")) return t("gate {gate}", { gate: line.subject.slice(5) });
  return line.subject;
}

async function waive(line) {
  const what = `${subjectWord(line)}: ${checkWord(line)}`;
  const supervisor = prompt(t("Waive “{check}”.", { check: what }) + "\n" +
                            t("Supervisor who takes responsibility (name):"));
  if (!supervisor) return;
  const reason = prompt(t("Reason (recorded in the audit log)"));
  if (!reason) return;
  try {
    await api("/api/v1/readiness/waivers", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ check: line.key, supervisor, reason }) });
    await load();
  } catch (e) { showError(e); }
}

async function withdraw(line) {
  const what = `${subjectWord(line)}: ${checkWord(line)}`;
  if (!confirm(t("Withdraw the waiver of “{check}” given by {supervisor}?",
                 { check: what, supervisor: line.waiver.supervisor }))) return;
  try {
    await api(`/api/v1/readiness/waivers/${line.waiver.waiver_id}/withdraw`, { method: "POST" });
    await load();
  } catch (e) { showError(e); }
}

function render() {
  const r = last;
  if (!r) return;
  const v = document.getElementById("verdict");
  v.textContent = r.ready ? t("✔ READY") : t("✖ NOT READY — {n} open", { n: fmtNumber(r.failing) });
  v.className = "verdict " + (r.ready ? "ok" : "fail");
  document.getElementById("summary").textContent = [r.event_name, t("checks: {n}", { n: fmtNumber(r.lines.length) }),
    t("waived: {n}", { n: fmtNumber(r.waived) }), t("hub seq {seq}", { seq: r.hub_seq })].filter(Boolean).join(" · ");
  document.getElementById("at").textContent = t("as of {time}", { time: fmtClock(r.at) });
  const rows = r.lines.map((ln) => {
    const mark = { ok: "✔", fail: "✖", waived: "✔ " + t("waived") }[ln.status];
    const what = el("td", {}, ln.detail);
    if (ln.status === "fail" && ln.action) what.append(el("div", { class: "action" }, "→ " + ln.action));
    if (ln.waiver) what.append(el("div", { class: "action" }, t("waived by {supervisor} ({actor}): {reason}",
      { supervisor: ln.waiver.supervisor, actor: ln.waiver.actor, reason: ln.waiver.reason })));
    const act = el("td");
    if (ln.status === "fail") act.append(el("button", { onclick: () => waive(ln) }, t("Waive…")));
    if (ln.status === "waived") act.append(el("button", { onclick: () => withdraw(ln) }, t("Withdraw waiver")));
    return el("tr", { "data-key": ln.key, class: ln.status }, el("td", {}, mark), el("td", {}, subjectWord(ln)),
      el("td", {}, checkWord(ln)), what, act);
  });
  document.getElementById("lines").replaceChildren(...rows);
}

async function load() {
  try {
    last = await api("/api/v1/readiness");
    showError(null);
    render();
  } catch (e) { showError(e); }
}

document.getElementById("pdf").addEventListener("click", async () => {
  try {
    const blob = await api("/api/v1/readiness.pdf");
    window.open(URL.createObjectURL(blob), "_blank");
  } catch (e) { showError(e); }
});

(async () => {
  await initLanguage(render);
  if (!needToken()) {
    load();
    setInterval(load, 10000);
  }
})();
