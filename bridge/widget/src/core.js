// --- basics: icons, stored state, translation, building elements, formats ------
var ICON_CHAT = "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z";
var ICON_SEND = "M2 21l21-9L2 3v7l15 2-15 2z";
var ICON_CLIP = "M16.5 6.5l-8.6 8.6a1.5 1.5 0 0 0 2.1 2.1l8.6-8.6a3.5 3.5 0 0 0-5-5L5 12.2a5.5 5.5 0 0 0 7.8 7.8l7.2-7.2-1.4-1.4-7.2 7.2a3.5 3.5 0 0 1-5-5l8.6-8.6a1.5 1.5 0 0 1 2.1 2.1l-8.6 8.6-.1-.1z";
var ICON_CAM = "M4 6h11a2 2 0 0 1 2 2v2.5l4-3v9l-4-3V16a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2z";

// --- stored state: survives reloads and page changes on the town's site ----
function load() {
  try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch (e) { return {}; }
}
var saved = load();
function save() {
  try { localStorage.setItem(KEY, JSON.stringify(saved)); } catch (e) { /* private mode: this page only */ }
}
// The citizen's own choice; else the page's language if the town set data-lang;
// else the first of the browser's languages we have; else German.
function pickLang() {
  var wanted = [saved.lang, script.getAttribute("data-lang")]
    .concat(navigator.languages || [navigator.language]);
  for (var i = 0; i < wanted.length; i++) {
    var code = String(wanted[i] || "").toLowerCase().split("-")[0];
    if (TEXT[code]) return code;
  }
  return "de";
}
var lang = pickLang();
function langInfo() {
  return LANGS.filter(function (l) { return l.code === lang; })[0] || LANGS[0];
}

function t(key, params) {
  var s = (TEXT[lang] && TEXT[lang][key]) || TEXT.de[key] || key;
  return s.replace(/\{(\w+)\}/g, function (_, k) { return params && params[k] != null ? params[k] : ""; });
}
// Translated elements remember their key, so switching language relabels them.
function tx(el, key, params, attr) {
  el._t = el._t || {};
  el._t[attr || "text"] = [key, params];
  if (attr) el.setAttribute(attr, t(key, params)); else el.textContent = t(key, params);
  return el;
}
function relabel() {
  ui.root.lang = lang;
  ui.root.dir = langInfo().dir;
  ui.root.querySelectorAll("*").forEach(function (el) {
    for (var attr in el._t || {}) tx(el, el._t[attr][0], el._t[attr][1], attr === "text" ? null : attr);
  });
}
// Server messages for citizens come as "Deutsch / English": the citizen's half,
// or for the other languages the catalogue's text for the error code (less
// specific than the server's, but in the citizen's language).
function ours(message, errcode) {
  var parts = String(message || "").split(" / ");
  if (lang !== "de" && lang !== "en" && errcode && TEXT[lang]["error." + errcode]) {
    return TEXT[lang]["error." + errcode];
  }
  return parts.length === 2 ? parts[lang === "de" ? 0 : 1] : String(message || "");
}

// Builds an element. Children that are strings become text nodes: user text is
// never parsed as HTML.
function h(tag, attrs, children) {
  var el = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) {
    var v = attrs[k];
    if (v == null || v === false) return;
    if (k === "class") el.className = v;
    else if (k === "t") Array.isArray(v) ? tx(el, v[0], v[1]) : tx(el, v);
    else if (k === "label") Array.isArray(v) ? tx(el, v[0], v[1], "aria-label") : tx(el, v, null, "aria-label");
    else if (k === "on") Object.keys(v).forEach(function (e) { el.addEventListener(e, v[e]); });
    else el.setAttribute(k, v === true ? "" : v);
  });
  [].concat(children == null ? [] : children).forEach(function (c) { if (c != null) el.append(c); });
  return el;
}
function svg(path) {
  var ns = "http://www.w3.org/2000/svg";
  var s = document.createElementNS(ns, "svg"), p = document.createElementNS(ns, "path");
  s.setAttribute("viewBox", "0 0 24 24"); s.setAttribute("aria-hidden", "true");
  p.setAttribute("d", path); s.append(p);
  return s;
}
function newId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID(); // needs https or localhost
  var b = new Uint8Array(16);
  if (window.crypto && crypto.getRandomValues) crypto.getRandomValues(b);
  else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
}
// Message times in the citizen's clock; office hours (town=true) in the town's,
// since "open until 12:00" means the town hall's noon.
function when(iso, long, town) {
  var d = new Date(iso);
  if (isNaN(d)) return "";
  var opts = long ? { weekday: "short", day: "numeric", month: "numeric", hour: "2-digit", minute: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" };
  if (town && status && status.timezone) opts.timeZone = status.timezone;
  try { return d.toLocaleString(langInfo().tag, opts); } catch (e) { return d.toLocaleString(); }
}
// Office hours as people say them, in the town's time zone: "12:00" for a time
// today, "Do 9:00" within the coming week, "Do 3.12. 9:00" further ahead.
function hours(iso, withDay) {
  var d = new Date(iso);
  if (isNaN(d)) return "";
  var opts = { weekday: "short", day: "numeric", month: "numeric", hour: "numeric", minute: "2-digit",
    hourCycle: "h23" };
  if (status && status.timezone) opts.timeZone = status.timezone;
  var parts = {};
  try {
    new Intl.DateTimeFormat(langInfo().tag, opts).formatToParts(d)
      .forEach(function (p) { parts[p.type] = p.value; });
  } catch (e) { return when(iso, withDay, true); }
  var time = parts.hour + ":" + parts.minute;
  if (!withDay) return time;
  var now = status && status.now ? new Date(status.now) : new Date();
  var far = d - now > 6 * 24 * 3600 * 1000;
  return parts.weekday.replace(/\.$/, "") + " " + (far ? parts.day + "." + parts.month + ". " : "") + time;
}
function megabytes(bytes) { return Math.round(bytes / 1048576 * 10) / 10; }
function fileSize(bytes) {
  if (bytes == null) return "";
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1048576) return Math.round(bytes / 1024) + " kB";
  return megabytes(bytes).toLocaleString(langInfo().tag) + " MB";
}
