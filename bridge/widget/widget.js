/*!
 * Bürgerchat citizen widget (v0). Plain JavaScript: no build step, no external
 * resources, everything in a Shadow DOM so the town's page and the widget cannot
 * restyle each other.
 *
 * Embed with one tag (the API address is taken from the script's own src):
 *   <script src="https://chat.musterstadt.example/widget/widget.js" async></script>
 * Optional attributes on that tag:
 *   data-api="https://…"   the bridge's public URL, if it is not where widget.js is served
 *   data-lang="en"         English instead of German (citizens can switch in the panel)
 *
 * Theming: CSS custom properties cross the shadow boundary, so set them on the
 * widget's element (or :root) on the town's page, e.g.
 *   buergerchat-widget { --bc-accent: #005ca9; }
 *   --bc-accent        button, header, citizen's messages  (default #c05600, orange)
 *   --bc-accent-text   text and icons on the accent colour (#ffffff)
 *   --bc-bg            panel background                    (#ffffff)
 *   --bc-text          normal text                         (#1f2328)
 *   --bc-muted         times, system messages              (#5f6368)
 *   --bc-border        lines and input borders             (#d0d4d9)
 *   --bc-staff-bg      staff messages, privacy box         (#eef1f4)
 *   --bc-staff-text    text of staff messages              (#1f2328)
 *   --bc-live          "available now" status              (#1e7e34)
 *   --bc-offline       "not staffed" status, notices       (#8a5a00)
 *   --bc-error         errors, connection banner, badge    (#b3261e)
 *   --bc-focus         keyboard focus ring                 (#1a73e8)
 *   --bc-radius        panel corner radius                 (14px)
 *   --bc-font          font family                         (system UI font)
 *   --bc-font-size     base font size                      (15px)
 *   --bc-offset        distance of button/panel from the window's edge (20px)
 *   --bc-z             z-index of button and panel         (2147483000)
 * The defaults live in widget.css, once each.
 */
(function () {
  "use strict";
  if (window.BuergerChat) return; // the tag was included twice: keep the first
  window.BuergerChat = { version: "0" };

  // --- where we come from ----------------------------------------------------
  var script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  var src = new URL(script.src, location.href);
  var STATIC = src.href.replace(/[^/]*$/, ""); // folder of widget.js (widget.css)
  var API = (script.getAttribute("data-api") || src.href.replace(/\/widget\/[^/]*$/, ""))
    .replace(/\/+$/, "").replace(/\/api\/v1$/, "") + "/api/v1";
  var KEY = "buergerchat:" + API; // one stored case per bridge, not per page
  var LONG_POLL = 25; // seconds; the bridge caps this at long_poll_max_seconds
  var MAX_LEN = 4000; // the bridge's default citizen.max_message_length

  // --- texts ---------------------------------------------------------------
  var TEXT = {
    de: {
      open: "Bürgerchat öffnen", close: "Chat schließen", title: "Bürgerchat", other: "EN",
      otherLabel: "Switch to English", intro: "Schreiben Sie uns – wir helfen gerne weiter.",
      depts: "Womit können wir helfen?", live: "jetzt erreichbar",
      offline: "gerade nicht besetzt – wir antworten so bald wie möglich", until: "erreichbar bis {t} Uhr",
      next: "wieder erreichbar ab {t} Uhr", topic: "Thema (optional)", topicAny: "Bitte wählen…",
      name: "Ihr Name (optional)",
      privacy: "Ihre Nachrichten werden gespeichert, damit Mitarbeitende der Stadtverwaltung Ihr Anliegen bearbeiten können. Details in den",
      privacyLink: "Datenschutzhinweisen",
      consent: "Ich habe die Datenschutzhinweise gelesen und bin mit der Speicherung meiner Angaben einverstanden.",
      start: "Chat starten",
      needConsent: "Bitte stimmen Sie den Datenschutzhinweisen zu. Ohne Ihre Zustimmung dürfen wir Ihre Nachrichten nicht speichern.",
      needDept: "Bitte wählen Sie aus, womit wir helfen können.", loading: "Wird geladen…",
      retry: "Erneut versuchen",
      down: "Der Chat ist gerade nicht erreichbar. Bitte versuchen Sie es gleich noch einmal.",
      expired: "Ihr bisheriger Chat ist abgelaufen oder nicht mehr gültig. Sie können gern ein neues Anliegen starten.",
      ref: "Vorgang {r}", log: "Chatverlauf", input: "Ihre Nachricht", send: "Senden",
      placeholder: "Nachricht schreiben…", hint: "Enter sendet, Umschalt+Enter für eine neue Zeile", you: "Sie",
      sending: "wird gesendet…", failed: "nicht gesendet: {e}",
      reconnecting: "Verbindung unterbrochen – wird erneut versucht", newCase: "Neues Anliegen",
      endAsk: "Diesen Chat beenden? Der Verlauf wird danach auf diesem Gerät nicht mehr angezeigt.",
      endYes: "Ja, beenden", endNo: "Abbrechen", closed: "Dieses Anliegen ist abgeschlossen.",
      errClosed: "das Anliegen ist bereits abgeschlossen", errLong: "die Nachricht ist zu lang",
      errOther: "bitte erneut versuchen", unread: "Bürgerchat öffnen – {n} neue Nachricht(en)"
    },
    en: {
      open: "Open citizen chat", close: "Close chat", title: "Citizen chat", other: "DE",
      otherLabel: "Auf Deutsch umschalten", intro: "Write to us – we are happy to help.",
      depts: "What can we help you with?", live: "available now",
      offline: "not staffed right now – we will answer as soon as we can", until: "available until {t}",
      next: "available again from {t}", topic: "Topic (optional)", topicAny: "Please choose…",
      name: "Your name (optional)",
      privacy: "Your messages are stored so that staff of the town administration can handle your request. Details in the",
      privacyLink: "privacy notice",
      consent: "I have read the privacy notice and agree that my details are stored.", start: "Start chat",
      needConsent: "Please agree to the privacy notice. Without your consent we may not store your messages.",
      needDept: "Please choose what we can help you with.", loading: "Loading…", retry: "Try again",
      down: "The chat cannot be reached right now. Please try again in a moment.",
      expired: "Your previous chat has expired or is no longer valid. You are welcome to start a new one.",
      ref: "Case {r}", log: "Conversation", input: "Your message", send: "Send",
      placeholder: "Write a message…", hint: "Enter sends, Shift+Enter for a new line", you: "You",
      sending: "sending…", failed: "not sent: {e}", reconnecting: "Connection lost – trying again",
      newCase: "New request", endAsk: "End this chat? Its history will no longer be shown on this device.",
      endYes: "Yes, end it", endNo: "Cancel", closed: "This request has been closed.",
      errClosed: "the request is already closed", errLong: "the message is too long",
      errOther: "please try again", unread: "Open citizen chat – {n} new message(s)"
    }
  };
  var ICON_CHAT = "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z";
  var ICON_SEND = "M2 21l21-9L2 3v7l15 2-15 2z";

  // --- stored state: survives reloads and page changes on the town's site ----
  function load() {
    try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch (e) { return {}; }
  }
  var saved = load();
  function save() {
    try { localStorage.setItem(KEY, JSON.stringify(saved)); } catch (e) { /* private mode: this page only */ }
  }
  var lang = saved.lang || (script.getAttribute("data-lang") === "en" ? "en" : "de");

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
    ui.root.querySelectorAll("*").forEach(function (el) {
      for (var attr in el._t || {}) tx(el, el._t[attr][0], el._t[attr][1], attr === "text" ? null : attr);
    });
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
      else if (k === "label") tx(el, v, null, "aria-label");
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
    try { return d.toLocaleString(lang === "en" ? "en-GB" : "de-DE", opts); } catch (e) { return d.toLocaleString(); }
  }

  // --- talking to the bridge -------------------------------------------------
  var stopAll = new AbortController(); // aborted when the stored case is forgotten
  var gen = 0; // bumped at the same time: loops of an old case notice and stop

  async function api(method, path, body, timeoutMs) {
    var ctrl = new AbortController(), abort = function () { ctrl.abort(); };
    var timer = setTimeout(abort, timeoutMs || 15000), stop = stopAll.signal;
    stop.addEventListener("abort", abort);
    var headers = { Accept: "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    if (saved.token && path.indexOf("/cases/") === 0) headers.Authorization = "Bearer " + saved.token;
    try {
      var res = await fetch(API + path, {
        method: method, headers: headers, body: body ? JSON.stringify(body) : undefined,
        signal: ctrl.signal, credentials: "omit", cache: "no-store"
      });
      var data = await res.json().catch(function () { return {}; });
    } catch (e) {
      throw Object.assign(new Error("network"), { network: true });
    } finally {
      clearTimeout(timer);
      stop.removeEventListener("abort", abort);
    }
    if (!res.ok) throw Object.assign(new Error(data.error || res.statusText), data, { status: res.status });
    return data;
  }
  // A token the bridge no longer accepts, or a case it does not know.
  function gone(e) { return e.status === 401 || e.status === 403 || e.status === 404; }

  // Backoff sleeps end early when the browser reports it is online again.
  var wakers = [];
  function pause(ms) {
    return new Promise(function (resolve) {
      var timer = setTimeout(done, ms * (0.8 + Math.random() * 0.4));
      function done() { clearTimeout(timer); wakers = wakers.filter(function (w) { return w !== done; }); resolve(); }
      wakers.push(done);
    });
  }
  function wakeAll() { wakers.slice().forEach(function (w) { w(); }); }
  window.addEventListener("online", wakeAll);

  // --- the frame: host, shadow root, button, panel ---------------------------
  var ui = {};
  function build() {
    var host = document.createElement("buergerchat-widget");
    var shadow = host.attachShadow({ mode: "open" });
    var css = h("link", { rel: "stylesheet", href: STATIC + "widget.css" });
    // Hidden until the styles are there, so no unstyled flash on the town's page.
    ui.root = h("div", { class: "bc", style: "visibility:hidden", lang: lang });
    css.addEventListener("load", function () { ui.root.style.visibility = ""; });
    css.addEventListener("error", function () { ui.root.style.visibility = ""; });
    ui.badge = h("span", { class: "badge", "aria-hidden": "true", hidden: true });
    ui.launcher = h("button", {
      class: "launcher", type: "button", "aria-expanded": "false", "aria-controls": "bc-panel",
      label: "open", on: { click: function () { ui.panel.hidden ? openPanel(true) : closePanel(); } }
    }, [svg(ICON_CHAT), ui.badge]);
    ui.town = h("div", { class: "town" });
    ui.lang = h("button", { type: "button", t: "other", label: "otherLabel", on: { click: switchLang } });
    ui.panel = h("div", {
      class: "panel", id: "bc-panel", role: "dialog", "aria-labelledby": "bc-title", hidden: true,
      on: { keydown: function (e) { if (e.key === "Escape") closePanel(); } }
    }, [
      h("div", { class: "head" }, [
        h("div", { class: "titles" }, [h("h2", { id: "bc-title", t: "title" }), ui.town]),
        ui.lang,
        h("button", { type: "button", class: "x", label: "close", on: { click: closePanel } }, "×")
      ]),
      ui.view = h("div", { class: "view" })
    ]);
    ui.root.append(ui.launcher, ui.panel);
    shadow.append(css, ui.root);
    document.body.append(host);
  }

  var focusWhenReady = false; // opened by the citizen before the form had loaded
  function openPanel(focus) {
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    saved.open = true; markSeen();
    if (!ui.view.firstChild) showStart(); else loadStatus(); // the town's name for the header
    if (ui.scroll) ui.scroll.scrollTop = ui.scroll.scrollHeight; // hidden panels do not scroll
    if (focus) focusWhenReady = !focusFirst();
  }
  function closePanel() {
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    saved.open = false; save();
    ui.launcher.focus();
  }
  // The most useful field first: the message box, the chosen or first department.
  function focusFirst() {
    var el = ["textarea:not([disabled])", "input:checked", "input", "button"].reduce(function (found, sel) {
      return found || ui.view.querySelector(sel);
    }, null);
    if (el) el.focus();
    return !!el;
  }
  function switchLang() {
    lang = lang === "de" ? "en" : "de";
    saved.lang = lang; save();
    relabel();
    if (status && ui.depts) renderDepts();
  }

  // --- start: departments, privacy, consent -----------------------------------
  var status = null;
  async function loadStatus(fresh) {
    if (status && !fresh) return status;
    status = await api("GET", "/status").catch(function () { return status; });
    if (status) ui.town.textContent = status.town || "";
    return status;
  }

  function showStart(notice) {
    ui.chat = ui.depts = null;
    ui.error = h("p", { class: "error", role: "alert" });
    var body = h("div", { class: "scroll" }, [
      notice ? h("p", { class: "notice", role: "status", t: notice }) : null,
      h("p", { class: "intro", t: "intro" }),
      h("p", { t: "loading" })
    ]);
    ui.view.replaceChildren(body);
    loadStatus(true).then(function (s) { // fresh: who is live changes during the day
      if (!s) {
        body.lastChild.replaceWith(h("div", null, [
          h("p", { class: "error", t: "down" }),
          h("button", { type: "button", class: "secondary", t: "retry", on: { click: function () { showStart(notice); } } })
        ]));
        return;
      }
      ui.consent = h("input", { type: "checkbox", id: "bc-consent", on: { change: function () {
        ui.consent.removeAttribute("aria-invalid"); ui.error.textContent = "";
      } } });
      ui.name = h("input", { type: "text", id: "bc-name", maxlength: "200", autocomplete: "name" });
      ui.depts = h("fieldset", null);
      ui.topic = h("div", { class: "field", hidden: true });
      var privacyLink = s.privacy_url
        ? h("a", { href: s.privacy_url, target: "_blank", rel: "noopener noreferrer", t: "privacyLink" })
        : h("span", { t: "privacyLink" });
      ui.startBtn = h("button", { type: "submit", class: "primary", t: "start" });
      var form = h("form", { class: "view", novalidate: true, on: { submit: startCase } }, [
        h("div", { class: "scroll" }, [
          notice ? h("p", { class: "notice", role: "status", t: notice }) : null,
          h("p", { class: "intro", t: "intro" }),
          ui.depts, ui.topic,
          h("div", { class: "field" }, [h("label", { for: "bc-name", t: "name" }), ui.name]),
          h("div", { class: "privacy" }, [
            h("p", null, [h("span", { t: "privacy" }), " ", privacyLink, "."]),
            h("label", { class: "consent", for: "bc-consent" }, [ui.consent, h("span", { t: "consent" })])
          ])
        ]),
        // The error sits next to the button so it is seen without scrolling.
        h("div", { class: "actions" }, [ui.error, ui.startBtn])
      ]);
      renderDepts();
      ui.view.replaceChildren(form);
      if (focusWhenReady && !ui.panel.hidden) focusWhenReady = !focusFirst();
    });
  }

  function renderDepts() {
    var checked = (ui.depts.querySelector("input:checked") || {}).value;
    var list = status.departments || [];
    ui.depts.replaceChildren(h("legend", { t: "depts" }));
    list.forEach(function (d) {
      var note = d.live ? (d.until ? t("until", { t: when(d.until, false, true) }) : t("live"))
        : (d.next_opening ? t("next", { t: when(d.next_opening, true, true) }) : t("offline"));
      ui.depts.append(h("label", { class: "dept" }, [
        h("input", { type: "radio", name: "bc-dept", value: d.id,
          checked: d.id === checked || list.length === 1, on: { change: renderTopics } }),
        h("span", null, [
          h("span", { class: "name" }, d.name),
          h("span", { class: "state" + (d.live ? " live" : "") }, note),
          d.note ? h("span", { class: "note" }, d.note) : null // e.g. a holiday or closure
        ])
      ]));
    });
    renderTopics();
  }

  // Topics are optional per department: [{id, label}] from /status.
  function renderTopics() {
    var id = (ui.depts.querySelector("input:checked") || {}).value;
    var dept = (status.departments || []).filter(function (d) { return d.id === id; })[0];
    var topics = (dept && dept.topics) || [];
    ui.topic.hidden = !topics.length;
    ui.topicSelect = h("select", { id: "bc-topic" }, [h("option", { value: "", t: "topicAny" })].concat(
      topics.map(function (x) {
        return typeof x === "string" ? h("option", { value: x }, x)
          : h("option", { value: x.id }, x.label || x.name || x.id);
      })));
    ui.topic.replaceChildren(h("label", { for: "bc-topic", t: "topic" }), ui.topicSelect);
  }

  async function startCase(e) {
    e.preventDefault();
    var dept = ui.depts.querySelector("input:checked");
    if (!dept) return fail("needDept", ui.depts.querySelector("input"));
    if (!ui.consent.checked) {
      ui.consent.setAttribute("aria-invalid", "true");
      return fail("needConsent", ui.consent);
    }
    ui.error.textContent = "";
    ui.startBtn.disabled = true;
    try {
      var c = await api("POST", "/cases", {
        department: dept.value, consent: true, name: ui.name.value.trim() || undefined,
        topic: ui.topicSelect.value || undefined, language: lang
      });
    } catch (err) {
      ui.startBtn.disabled = false;
      return fail(err.errcode === "BC_CONSENT_REQUIRED" ? "needConsent" : "down", null);
    }
    saved = { case_id: c.case_id, token: c.token, reference: c.reference, cursor: "0", seen: "0",
      lang: lang, open: true, outbox: [] };
    save();
    showChat();
    ui.input.focus();
  }
  function fail(key, focusEl) {
    tx(ui.error, key);
    if (focusEl) focusEl.focus();
  }

  // --- chat ------------------------------------------------------------------
  var shown = {}; // cursor -> element and client_id -> element: nothing twice
  var unread = 0;

  function showChat() {
    shown = {};
    ui.ref = h("span", { class: "ref", t: ["ref", { r: saved.reference || "" }] });
    ui.banner = h("div", { class: "banner", role: "status", hidden: true, t: "reconnecting" });
    ui.confirm = h("div", { class: "confirm", hidden: true }, [
      h("p", { t: "endAsk" }),
      h("button", { type: "button", class: "primary", t: "endYes", on: { click: forget } }),
      h("button", { type: "button", class: "secondary", t: "endNo", on: { click: function () {
        reflow(function () { ui.confirm.hidden = true; }); ui.endBtn.focus();
      } } })
    ]);
    ui.endBtn = h("button", { type: "button", class: "link", t: "newCase", on: { click: function () {
      reflow(function () { ui.confirm.hidden = false; }); ui.confirm.querySelector("button").focus();
    } } });
    ui.log = h("div", { class: "log", role: "log", "aria-live": "polite", label: "log" });
    ui.scroll = h("div", { class: "scroll" }, ui.log);
    ui.input = h("textarea", { rows: "1", label: "input", maxlength: String(MAX_LEN), "aria-describedby": "bc-hint",
      on: { keydown: onKey, input: grow } });
    tx(ui.input, "placeholder", null, "placeholder");
    ui.sendBtn = h("button", { type: "submit", class: "send", label: "send" }, svg(ICON_SEND));
    ui.closed = h("div", { class: "closed", hidden: true }, [
      h("p", { t: "closed" }),
      h("button", { type: "button", class: "secondary", t: "newCase", on: { click: forget } })
    ]);
    ui.chat = h("div", { class: "view" }, [
      h("div", { class: "casebar" }, [ui.ref, ui.endBtn]),
      ui.confirm, ui.banner, ui.scroll, ui.closed,
      h("form", { class: "composer", on: { submit: function (e) { e.preventDefault(); sendFromInput(); } } },
        [ui.input, ui.sendBtn]),
      h("div", { class: "hint", id: "bc-hint", t: "hint" })
    ]);
    ui.view.replaceChildren(ui.chat);
    poll(gen);
  }

  function onKey(e) {
    // Enter sends; Shift+Enter is a new line; Enter that ends an IME composition is not a send.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendFromInput(); }
  }
  function grow() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 140) + "px";
  }

  // One message bubble. Citizen right, staff left with name, system centered.
  function bubble(ev) {
    var who = ev.sender === "citizen" ? "citizen" : ev.sender === "staff" ? "staff" : "system";
    var meta = who === "system" ? null : h("div", { class: "meta" }, [
      who === "staff" ? h("span", { class: "who" }, ev.sender_name || "") : h("span", { class: "sr", t: "you" }),
      who === "staff" ? " · " : null, when(ev.ts)
    ]);
    return h("div", { class: "msg " + who }, [meta, h("div", { class: "text" }, ev.body || "")]);
  }
  function stuckToBottom() {
    var s = ui.scroll;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }
  // Confirmed messages go above the ones still being sent, in cursor order.
  function place(el, follow) {
    ui.log.insertBefore(el, ui.log.querySelector(".msg.pending"));
    if (follow) ui.scroll.scrollTop = ui.scroll.scrollHeight;
  }

  function addEvent(ev, replay) {
    if (shown["c" + ev.cursor]) return;
    var follow = stuckToBottom();
    var el = ev.client_id && shown["m" + ev.client_id];
    if (el) { // our own optimistic message, now confirmed by the stream
      el.classList.remove("pending", "failed");
      var st = el.querySelector(".status");
      if (st) st.remove();
    } else {
      el = bubble(ev);
      if (ev.client_id) shown["m" + ev.client_id] = el;
    }
    shown["c" + ev.cursor] = el;
    place(el, follow);
    if (ev.client_id) dropOutbox(ev.client_id);
    if (ev.kind === "closed") setClosed();
    if (ev.kind === "transferred" && !replay) refreshCase(gen);
    if (!replay && ev.sender === "staff" && ui.panel.hidden) unread++;
  }

  function showPending(item) {
    var el = bubble({ sender: "citizen", body: item.body, ts: item.ts });
    el.classList.add("pending");
    el.append(h("div", { class: "status", t: "sending" }));
    shown["m" + item.client_id] = el;
    ui.log.append(el);
    ui.scroll.scrollTop = ui.scroll.scrollHeight;
  }

  // Banners and boxes above or below the log take room from it: keep the newest in view.
  function reflow(change) {
    var follow = stuckToBottom();
    change();
    if (follow) ui.scroll.scrollTop = ui.scroll.scrollHeight;
  }
  function setOnline(ok) {
    if (ui.banner && ui.banner.hidden !== ok) reflow(function () { ui.banner.hidden = ok; });
  }
  function setClosed() {
    reflow(function () {
      ui.closed.hidden = false;
      ui.input.disabled = ui.sendBtn.disabled = true;
      ui.endBtn.hidden = ui.confirm.hidden = true;
    });
  }

  // The event stream. It starts at cursor 0 without waiting, page by page, to
  // rebuild the whole view after a reload; then it long-polls. Network trouble:
  // back off and show a banner.
  async function poll(g) {
    var cursor = "0", delay = 1000, replaying = true;
    refreshCase(g);
    while (g === gen) {
      try {
        var r = await api("GET", "/cases/" + saved.case_id + "/events?after=" + cursor +
          "&timeout=" + (replaying ? 0 : LONG_POLL), null, (LONG_POLL + 15) * 1000);
      } catch (e) {
        if (g !== gen) return;
        if (gone(e)) return expire();
        setOnline(false);
        await pause(delay);
        delay = Math.min(delay * 2, 30000);
        continue;
      }
      if (g !== gen) return;
      setOnline(true);
      delay = 1000;
      r.events.forEach(function (ev) { addEvent(ev, replaying); });
      cursor = r.next || cursor;
      saved.cursor = cursor;
      if (!ui.panel.hidden) markSeen(); else showUnread(replaying);
      save();
      if (replaying && !r.events.length) { // all there: resend what a reload interrupted
        replaying = false;
        (saved.outbox || []).forEach(function (item) {
          if (!shown["m" + item.client_id]) showPending(item);
        });
        flush(g);
      }
    }
  }

  // Reference and department for the bar above the log (a transfer changes it).
  function refreshCase(g) {
    api("GET", "/cases/" + saved.case_id).then(function (c) {
      if (g !== gen) return;
      tx(ui.ref, "ref", { r: c.reference + (c.department && c.department.name ? " · " + c.department.name : "") });
      if (c.closed) setClosed();
    }, function () { /* the event stream reports real trouble */ });
  }

  function sendFromInput() {
    var body = ui.input.value;
    if (!body.trim() || ui.input.disabled) return;
    if (body.length > MAX_LEN) return;
    var item = { client_id: newId(), body: body, ts: new Date().toISOString() };
    saved.outbox = (saved.outbox || []).concat([item]);
    save();
    ui.input.value = "";
    grow();
    showPending(item);
    flush(gen);
  }

  // Sends the outbox in order, one message at a time, until the bridge has each.
  // Retries reuse the client_id, so a request that did arrive but whose answer got
  // lost never makes a duplicate.
  var flushing = null; // the case generation whose outbox is being sent
  async function flush(g) {
    if (flushing === g) return;
    flushing = g;
    var delay = 1000;
    try {
      while (g === gen && saved.outbox && saved.outbox.length) {
        var item = saved.outbox[0];
        try {
          await api("POST", "/cases/" + saved.case_id + "/messages", { body: item.body, client_id: item.client_id });
          setOnline(true);
          delay = 1000;
        } catch (e) {
          if (g !== gen) return;
          if (gone(e)) return expire();
          if (!e.status || e.status >= 500 || e.status === 429) { // worth another try
            setOnline(false);
            await pause(delay);
            delay = Math.min(delay * 2, 30000);
            continue;
          }
          refused(item, e);
        }
        dropOutbox(item.client_id);
      }
    } finally {
      if (flushing === g) flushing = null;
    }
  }
  // The bridge said no for good (too long, case closed): say so on the bubble.
  function refused(item, e) {
    var el = shown["m" + item.client_id];
    if (!el) return; // sent from an outbox whose bubble the replay has not drawn yet
    var why = e.errcode === "BC_CASE_CLOSED" ? "errClosed"
      : e.field === "body" || e.errcode === "BC_TOO_LARGE" ? "errLong" : "errOther";
    el.classList.replace("pending", "failed");
    tx(el.querySelector(".status"), "failed", { e: t(why) });
    if (e.errcode === "BC_CASE_CLOSED") setClosed();
  }
  function dropOutbox(clientId) {
    var before = (saved.outbox || []).length;
    saved.outbox = (saved.outbox || []).filter(function (x) { return x.client_id !== clientId; });
    if (saved.outbox.length !== before) save();
  }

  // Unread staff messages while the panel is closed: a badge on the button.
  // After a reload the replay counts what came after the last seen cursor.
  function showUnread(replay) {
    if (replay) {
      unread = Object.keys(shown).filter(function (k) {
        return k[0] === "c" && +k.slice(1) > +(saved.seen || 0) && shown[k].classList.contains("staff");
      }).length;
    }
    ui.badge.hidden = !unread;
    ui.badge.textContent = unread > 9 ? "9+" : String(unread);
    tx(ui.launcher, unread ? "unread" : "open", { n: unread }, "aria-label");
  }
  function markSeen() {
    unread = 0;
    saved.seen = saved.cursor || "0";
    save();
    showUnread(false);
  }

  // Forget the stored case: the token stays on the server until it expires; the
  // citizen just starts over on this device.
  function reset() {
    gen++;
    stopAll.abort();
    stopAll = new AbortController();
    wakeAll();
    saved = { lang: lang, open: !ui.panel.hidden };
    save();
    unread = 0;
    showUnread(false);
  }
  function forget() {
    reset();
    focusWhenReady = true; // the button that was focused is gone
    showStart();
  }
  function expire() {
    reset();
    focusWhenReady = !ui.panel.hidden;
    showStart("expired");
  }

  // --- go ----------------------------------------------------------------------
  function init() {
    build();
    if (saved.case_id && saved.token) showChat();
    if (saved.open) openPanel(false); // reopen after a reload, without stealing focus
  }
  if (document.body) init(); else document.addEventListener("DOMContentLoaded", init);
})();
