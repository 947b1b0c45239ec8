// The seats page: double-sold seats with revoke / re-seat / shared-zone actions, zones over
// capacity, and a move file upload (dry run by default). The page's own words are translated;
// zone names, seats, holders and the hub's messages about a move file are shown as sent.
"use strict";
const JSON_HEADERS = { "Content-Type": "application/json" };
let last = null;
let lastResult = null;

async function act(fn) {
  try { await fn(); showError(null); await load(); } catch (e) { showError(e); }
}

function ticketCell(tk) {
  const cell = el("div", {}, `${tk.number} ${tk.holder ? "(" + tk.holder + ")" : ""} `);
  cell.append(el("button", { onclick: () => {
    if (confirm(t("Revoke ticket {number}? Its credential is refused REVOKED at every gate.", { number: tk.number })))
      act(() => api(`/api/v1/tickets/${tk.ticket_id}/revoke`, { method: "POST" }));
  } }, t("Revoke")), " ");
  cell.append(el("button", { onclick: () => {
    const seat = prompt(t("New seat for ticket {number}:", { number: tk.number }));
    if (seat) act(() => api(`/api/v1/tickets/${tk.ticket_id}/upgrade`, { method: "POST", headers: JSON_HEADERS,
      body: JSON.stringify({ seat }) }));
  } }, t("Re-seat…")));
  return cell;
}

function render() {
  const m = last;
  if (m) {
    document.getElementById("count").textContent = m.double_sold_truncated
      ? t("({n}, the first {listed} listed)", { n: fmtNumber(m.double_sold_count), listed: fmtNumber(m.double_sold.length) })
      : `(${fmtNumber(m.double_sold_count)})`;
    const clashes = m.double_sold.map((c) => el("tr", { "data-key": c.key },
      el("td", {}, c.zone), el("td", {}, c.seat), el("td", {}, ...c.tickets.map(ticketCell)),
      el("td", {}, el("button", { onclick: () => {
        if (confirm(t("Mark every seat of zone {zone} as shared (standing)? Its seats are then never double-sold.",
                      { zone: c.zone })))
          act(() => api(`/api/v1/zones/${c.zone_id}/seating`, { method: "POST", headers: JSON_HEADERS,
            body: JSON.stringify({ shared_seats: true }) }));
      } }, t("Zone has shared seats")))));
    document.getElementById("clashes").replaceChildren(...clashes);
    document.getElementById("clashes-none").hidden = clashes.length > 0;
    const over = m.over_capacity.map((o) => el("tr", {},
      el("td", {}, o.zone), el("td", { class: "num" }, fmtNumber(o.tickets)),
      el("td", { class: "num" }, fmtNumber(o.capacity)), el("td", { class: "num" }, fmtNumber(o.excess))));
    document.getElementById("over").replaceChildren(...over);
    document.getElementById("over-none").hidden = over.length > 0;
  }
  if (lastResult) document.getElementById("result").textContent = lastResult();
}

async function load() {
  try {
    last = await api("/api/v1/seats/mismatches?limit=2000");
    render();
  } catch (e) { showError(e); }
}

const lineText = (x) => "\n" + t("line {line}: {reason}", { line: x.line, reason: x.reason });

document.getElementById("reseat").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = document.getElementById("file").files[0];
  const form = new FormData();
  form.append("file", file);
  const q = new URLSearchParams({ dry_run: document.getElementById("dry").checked,
    partial: document.getElementById("partial").checked });
  try {
    const r = await api("/api/v1/tickets/reseat?" + q, { method: "POST", body: form });
    const counts = { moved: fmtNumber(r.moved), unchanged: fmtNumber(r.unchanged), refused: fmtNumber(r.refused) };
    lastResult = () => (r.dry_run ? t("Dry run: would move {moved}, unchanged {unchanged}, refused {refused}", counts)
      : t("Moved {moved}, unchanged {unchanged}, refused {refused}", counts)) + r.errors.map(lineText).join("") +
      r.warnings.map((w) => "\n" + t("warning: {text}", { text: w })).join("");
    render();
    await load();
  } catch (e) {
    const errs = (e.body && e.body.error && e.body.error.errors) || [];
    lastResult = () => e.message + errs.map(lineText).join("");
    render();
  }
});

(async () => {
  await initLanguage(render);
  if (!needToken()) load();
})();
