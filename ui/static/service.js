// The technician's service page: the doctor's checks from GET /api/doctor, every 30 s
// (each run reads the replica through: not more often on an SD card).
// The page's words come from the gate's catalogue (inlined, as on the staff screen); the
// checks' own details are the doctor's technical English and stay as they are.
"use strict";
useCatalogue(JSON.parse(document.getElementById("i18n-catalogue").textContent));
const MARK = { ok: "✔", fail: "✖", info: "–" };
// The screen session, as on the staff screen: in the page for the kiosk, else #session=TOKEN.
const SESSION = (() => {
  const built = document.querySelector('meta[name="gate-session"]');
  if (built && built.content) return built.content;
  const m = /[#&]session=([^&]+)/.exec(location.hash);
  if (m) sessionStorage.setItem("gate-session", decodeURIComponent(m[1]));
  return sessionStorage.getItem("gate-session") || "";
})();

async function refresh() {
  const summary = document.getElementById("summary");
  const list = document.getElementById("checks");
  try {
    const r = await fetch("/api/doctor", { cache: "no-store", headers: { "x-gate-session": SESSION } });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const report = await r.json();
    list.replaceChildren(...report.checks.map((c) => {
      const li = document.createElement("li");
      li.className = c.status;
      li.dataset.check = c.name;
      li.textContent = `${MARK[c.status]} ${c.name}: ${c.detail}`;
      li.lang = "en";
      if (c.fix) {
        const fix = document.createElement("span");
        fix.className = "fix";
        fix.textContent = t("fix: {fix}", { fix: c.fix });
        li.append(fix);
      }
      return li;
    }));
    summary.textContent = report.ok ? t("All checks passed")
      : t("{n} check(s) failed", { n: fmtNumber(report.failed_count) });
    summary.className = report.ok ? "ok" : "fail";
  } catch (err) {
    summary.textContent = t("Checks unavailable: {error}", { error: err.message });
    summary.className = "fail";
  }
}

refresh();
setInterval(refresh, 30000);
