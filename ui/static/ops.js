// Shared by the readiness and seats pages: the dashboard's token (same tab), the dashboard's
// language (the same picker, remembered in this browser), JSON calls, tiny DOM helpers.
// Words come from the gettext catalogues through i18n.js (loaded before this file).
"use strict";
const TOKEN_KEY = "gatehouse.dashboard.token";
const LANG_KEY = "gatehouse.dashboard.lang";

function token() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + token(), ...(options.headers || {}) };
  const r = await fetch(path, { ...options, headers });
  const type = r.headers.get("content-type") || "";
  const body = type.includes("json") ? await r.json() : await r.blob();
  if (!r.ok) {
    const err = new Error((body && body.error && body.error.message) || ("HTTP " + r.status));
    err.body = body;
    err.status = r.status;
    throw err;
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

function showError(e) {
  const box = document.getElementById("error");
  box.textContent = e ? (e.message || String(e)) : "";
}

function needToken() {
  if (token()) return false;
  document.getElementById("login").hidden = false;
  document.getElementById("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = document.getElementById("token").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    location.reload();
  });
  document.getElementById("token").focus();
  return true;
}

// The language: the one chosen on the dashboard or here (localStorage), else the browser's
// (Accept-Language, "auto"). `rerender` redraws what the page built from data after a switch.
function fillLanguages() {
  const sel = document.getElementById("lang");
  sel.replaceChildren(...I18N.languages.map((l) => el("option", { value: l.tag, lang: l.tag }, l.name)));
  sel.value = I18N.lang;
}

async function initLanguage(rerender) {
  try { await loadCatalogue(localStorage.getItem(LANG_KEY) || "auto"); }
  catch (e) { try { await loadCatalogue("en"); } catch (e2) { /* English is in the page itself */ } }
  fillLanguages();
  document.getElementById("lang").addEventListener("change", async () => {
    try {
      await loadCatalogue(document.getElementById("lang").value);
      localStorage.setItem(LANG_KEY, I18N.lang);
    } catch (e) { /* keep the current language; the select shows it again */ }
    fillLanguages();
    rerender();
  });
}
