// Shared by the readiness and seats pages: the dashboard's token (same tab), JSON calls, tiny DOM helpers.
"use strict";
const TOKEN_KEY = "gatehouse.dashboard.token";

function token() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
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
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    location.reload();
  });
  return true;
}
