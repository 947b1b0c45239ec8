// The seats page: double-sold seats with revoke / re-seat / shared-zone actions, zones over
// capacity, and a move file upload (dry run by default).
"use strict";
const JSON_HEADERS = { "Content-Type": "application/json" };

async function act(fn) {
  try { await fn(); showError(null); await load(); } catch (e) { showError(e); }
}

function ticketCell(t) {
  const cell = el("div", {}, `${t.number} ${t.holder ? "(" + t.holder + ")" : ""} `);
  cell.append(el("button", { onclick: () => {
    if (confirm(`Revoke ticket ${t.number}? Its credential is refused REVOKED at every gate.`))
      act(() => api(`/api/v1/tickets/${t.ticket_id}/revoke`, { method: "POST" }));
  } }, "Revoke"), " ");
  cell.append(el("button", { onclick: () => {
    const seat = prompt(`New seat for ticket ${t.number}:`);
    if (seat) act(() => api(`/api/v1/tickets/${t.ticket_id}/upgrade`, { method: "POST", headers: JSON_HEADERS,
      body: JSON.stringify({ seat }) }));
  } }, "Re-seat…"));
  return cell;
}

async function load() {
  try {
    const m = await api("/api/v1/seats/mismatches?limit=2000");
    document.getElementById("count").textContent = `(${m.double_sold_count}` +
      (m.double_sold_truncated ? `, the first ${m.double_sold.length} listed)` : ")");
    document.getElementById("clashes").replaceChildren(...m.double_sold.map((c) => el("tr", { "data-key": c.key },
      el("td", {}, c.zone), el("td", {}, c.seat), el("td", {}, ...c.tickets.map(ticketCell)),
      el("td", {}, el("button", { onclick: () => {
        if (confirm(`Mark every seat of zone ${c.zone} as shared (standing)? Its seats are then never double-sold.`))
          act(() => api(`/api/v1/zones/${c.zone_id}/seating`, { method: "POST", headers: JSON_HEADERS,
            body: JSON.stringify({ shared_seats: true }) }));
      } }, "Zone has shared seats")))));
    document.getElementById("over").replaceChildren(...m.over_capacity.map((o) => el("tr", {},
      el("td", {}, o.zone), el("td", {}, o.tickets), el("td", {}, o.capacity), el("td", {}, o.excess))));
  } catch (e) { showError(e); }
}

document.getElementById("reseat").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = document.getElementById("file").files[0];
  const form = new FormData();
  form.append("file", file);
  const q = new URLSearchParams({ dry_run: document.getElementById("dry").checked,
    partial: document.getElementById("partial").checked });
  const out = document.getElementById("result");
  try {
    const r = await api("/api/v1/tickets/reseat?" + q, { method: "POST", body: form });
    out.textContent = `${r.dry_run ? "Dry run: would move" : "Moved"} ${r.moved}, unchanged ${r.unchanged},` +
      ` refused ${r.refused}` + r.errors.map((e) => `\nline ${e.line}: ${e.reason}`).join("") +
      r.warnings.map((w) => `\nwarning: ${w}`).join("");
    await load();
  } catch (e) {
    const errs = (e.body && e.body.error && e.body.error.errors) || [];
    out.textContent = e.message + errs.map((x) => `\nline ${x.line}: ${x.reason}`).join("");
  }
});

if (!needToken()) load();
