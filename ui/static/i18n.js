// gatehouse pages get their words from the project's gettext catalogues (i18n/locales/*.po),
// which the hub and the gate agent export as JSON at /i18n/<lang>.json. This file only looks
// them up: there is no second dictionary here. Numbers and times are formatted with the
// browser's Intl for the page's language (the same CLDR data Babel uses on the server).
"use strict";
const I18N = { lang: "en", name: "English", messages: {}, languages: [] };

// t("Gate {gate}", { gate: "North 1" }): the message in the page's language, placeholders filled.
function t(msg, values) {
  const s = I18N.messages[msg] || msg;
  if (!values) return s;
  return s.replace(/\{(\w+)\}/g, (m, k) => (Object.prototype.hasOwnProperty.call(values, k) ? String(values[k]) : m));
}

// A message with a context (msgctxt): reason messages are keyed by their stable code.
function tctx(context, msg) {
  return I18N.messages[context + "\u0004" + msg] || null;
}

// The staff message of a reason code; English (and unknown codes) fall back to what the
// server sent, which is the English message from tickets/reasons.py.
function reasonText(code, fallback, rightGates) {
  const own = tctx("reason", code);
  if (!own) return fallback || code;
  if (code === "WRONG_GATE" && rightGates && rightGates.length) {
    return own + ": " + t("use gate {gates}", { gates: rightGates.join(", ") });
  }
  return own;
}

function fmtNumber(n, options) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return new Intl.NumberFormat(I18N.lang, options).format(n);
}

function fmtClock(epochS, withSeconds = true) {
  if (!epochS) return "–";
  const opts = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (withSeconds) opts.second = "2-digit";
  return new Intl.DateTimeFormat(I18N.lang, opts).format(new Date(epochS * 1000));
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const m = Math.round(seconds / 60);
  if (m < 60) return t("{n} min", { n: fmtNumber(m) });
  return t("{h} h {m} min", { h: fmtNumber(Math.floor(m / 60)), m: fmtNumber(m % 60) });
}

// Put the catalogue's words into every element marked with data-i18n (text), and
// data-i18n-placeholder / -title / -aria-label (attributes). The English text is the key,
// so switching language again always starts from the same key.
function applyI18n(root) {
  const scope = root || document;
  for (const e of scope.querySelectorAll("[data-i18n]")) e.textContent = t(e.getAttribute("data-i18n"));
  for (const attr of ["placeholder", "title", "aria-label"]) {
    for (const e of scope.querySelectorAll(`[data-i18n-${attr}]`)) e.setAttribute(attr, t(e.getAttribute(`data-i18n-${attr}`)));
  }
  document.documentElement.lang = I18N.lang;
}

function useCatalogue(doc) {
  I18N.lang = doc.lang;
  I18N.name = doc.name;
  I18N.messages = doc.messages || {};
  I18N.languages = doc.languages || [];
  applyI18n(document);
}

// Load a language ("auto": the best match for the browser's Accept-Language). Resolves to the
// language actually loaded; on failure the page stays in the language it has.
async function loadCatalogue(lang) {
  const r = await fetch("/i18n/" + encodeURIComponent(lang || "auto") + ".json", { cache: "no-cache" });
  if (!r.ok) throw new Error("catalogue " + lang + ": HTTP " + r.status);
  useCatalogue(await r.json());
  return I18N.lang;
}
