/*!
 * Bürgerchat citizen widget (v0). Plain JavaScript: no build step, no external
 * resources (except Jitsi's own IFrame API, loaded from the town's Jitsi only when
 * the citizen joins a video call), everything in a Shadow DOM so the town's page and
 * the widget cannot restyle each other.
 *
 * Embed with one tag (the API address is taken from the script's own src):
 *   <script src="https://chat.musterstadt.example/widget/widget.js" async></script>
 * Optional attributes on that tag:
 *   data-api="https://…"   the bridge's public URL, if it is not where widget.js is served
 *   data-lang="en"         English instead of German (citizens can switch in the panel)
 *
 * A personal link from an "Sie haben eine Antwort" e-mail ends in
 *   #bc-resume=<case_id>.<resume token>
 * and opens that conversation on the page carrying this tag.
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
  var SMALL_SCREEN = 600; // px: below this a video call opens in its own tab
  var JITSI_LOAD_MS = 20000; // Jitsi's external_api.js must load within this

  // --- texts ---------------------------------------------------------------
  var TEXT = {
    de: {
      open: "Bürgerchat öffnen", close: "Chat schließen", title: "Bürgerchat", other: "EN",
      otherLabel: "Switch to English", intro: "Schreiben Sie uns – wir helfen gerne weiter.",
      depts: "Womit können wir helfen?", live: "Jetzt live",
      offline: "gerade nicht besetzt – Sie können eine Nachricht hinterlassen",
      until: "Jetzt live bis {t}", next: "Nächste Sprechzeit: {t}",
      topic: "Thema (optional)", topicAny: "Bitte wählen…",
      name: "Ihr Name (optional)",
      privacy: "Ihre Nachrichten werden gespeichert, damit Mitarbeitende der Stadtverwaltung Ihr Anliegen bearbeiten können. Details in den",
      privacyLink: "Datenschutzhinweisen",
      consent: "Ich habe die Datenschutzhinweise gelesen und bin mit der Speicherung meiner Angaben einverstanden.",
      start: "Chat starten", leave: "Nachricht hinterlassen",
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
      errOther: "bitte erneut versuchen", unread: "Bürgerchat öffnen – {n} neue Nachricht(en)",
      // queue
      queue: "Sie sind Nr. {n} in der Warteschlange – geschätzte Wartezeit ca. {m} Min.",
      queueNext: "Sie sind Nr. {n} in der Warteschlange – gleich sind Sie an der Reihe.",
      queueClosed: "Hinterlassen Sie uns Ihr Anliegen – wir melden uns per E-Mail oder Telefon.",
      // offline form
      offTitle: "Nachricht hinterlassen",
      offIntro: "{d} ist gerade nicht besetzt. Schreiben Sie uns Ihr Anliegen – wir melden uns per E-Mail oder Telefon.",
      offDesc: "Ihr Anliegen", offDescHint: "Beschreiben Sie kurz, worum es geht.",
      offName: "Ihr Name", offEmail: "E-Mail-Adresse", offPhone: "Telefonnummer",
      offContact: "Wie erreichen wir Sie?",
      offContactHint: "Mindestens eine Angabe: E-Mail-Adresse oder Telefonnummer.",
      offFiles: "Anhänge (optional)",
      offFilesHint: "Fotos, PDF oder Office-Dateien; sie werden vor der Weitergabe auf Schadsoftware geprüft.",
      offRemove: "{f} entfernen", offSend: "Nachricht senden", back: "Zurück", offSending: "Wird gesendet…",
      errDesc: "Bitte beschreiben Sie Ihr Anliegen.",
      errDescLong: "Die Beschreibung ist zu lang: höchstens {n} Zeichen.",
      errName: "Bitte geben Sie Ihren Namen an.",
      errContact: "Bitte geben Sie eine E-Mail-Adresse oder eine Telefonnummer an, damit wir Ihnen antworten können.",
      errEmail: "Bitte prüfen Sie die E-Mail-Adresse (zum Beispiel name@beispiel.de).",
      errPhone: "Bitte prüfen Sie die Telefonnummer: mindestens 5 Ziffern, dazu nur Leerzeichen und + - / ( ).",
      errFix: "Bitte prüfen Sie die markierten Angaben.",
      offNet: "Keine Verbindung. Ihre Nachricht ist auf diesem Gerät gespeichert und wird gesendet, sobald die Verbindung wieder da ist.",
      offFailed: "Die Nachricht konnte nicht gesendet werden: {e}",
      offDone: "Vielen Dank – Ihre Nachricht ist eingegangen.",
      offDoneRef: "Ihre Vorgangsnummer: {r}",
      offDoneNext: "Das Team bearbeitet Ihr Anliegen zur nächsten Sprechzeit ({t}).",
      offDoneSoon: "Das Team bearbeitet Ihr Anliegen so bald wie möglich.",
      offDoneMail: "Eine Bestätigung geht an {e}. Sobald es eine Antwort gibt, bekommen Sie eine E-Mail mit einem Link zurück zu diesem Gespräch.",
      offDonePhone: "Wir melden uns telefonisch unter {p}.",
      offDoneOk: "Verstanden",
      // resume link
      resuming: "Ihr Gespräch wird geöffnet…",
      linkExpired: "Dieser Link ist abgelaufen – persönliche Links gelten aus Sicherheitsgründen nur begrenzte Zeit. Ihr Anliegen ist nicht verloren: Schreiben Sie uns einfach eine neue Nachricht und nennen Sie die Vorgangsnummer aus der E-Mail.",
      linkInvalid: "Dieser Link ist nicht mehr gültig, zum Beispiel weil das Anliegen abgeschlossen ist. Sie können gern ein neues Anliegen starten.",
      // video
      videoOn: "Eine Videoberatung läuft.", audioOn: "Ein Telefonat läuft.",
      videoJoin: "Videoberatung beitreten", audioJoin: "Telefonat beitreten",
      videoChecking: "Kamera und Mikrofon werden geprüft…", audioChecking: "Das Mikrofon wird geprüft…",
      videoLoading: "Die Verbindung wird aufgebaut…",
      videoDenied: "Ihr Browser hat den Zugriff auf Kamera und Mikrofon nicht erlaubt. So geben Sie ihn frei: Klicken Sie oben links neben der Internetadresse auf das Schloss- oder Kamera-Symbol, stellen Sie Kamera und Mikrofon auf „Zulassen“ und klicken Sie dann erneut auf „Videoberatung beitreten“.",
      audioDenied: "Ihr Browser hat den Zugriff auf das Mikrofon nicht erlaubt. So geben Sie ihn frei: Klicken Sie oben links neben der Internetadresse auf das Schloss-Symbol, stellen Sie das Mikrofon auf „Zulassen“ und klicken Sie dann erneut auf „Telefonat beitreten“.",
      videoNoDevice: "Wir finden kein Mikrofon an diesem Gerät. Bitte schließen Sie ein Headset an und versuchen Sie es erneut.",
      videoBusy: "Kamera oder Mikrofon werden gerade von einem anderen Programm benutzt. Bitte schließen Sie es und versuchen Sie es erneut.",
      videoUnsupported: "Dieser Browser kann keine Videoberatung öffnen. Bitte nutzen Sie einen aktuellen Firefox, Chrome, Edge oder Safari.",
      videoFailed: "Die Videoberatung konnte nicht geladen werden. Bitte versuchen Sie es erneut.",
      videoGone: "Die Beratung ist bereits beendet.",
      helpline: "Sie erreichen uns auch telefonisch:",
      videoTab: "Videoberatung in neuem Tab öffnen", audioTab: "Telefonat in neuem Tab öffnen",
      videoTabOpened: "Die Beratung ist in einem neuen Tab geöffnet.",
      videoLeave: "Beratung verlassen", videoFrame: "Videoberatung",
      // transcript
      transcript: "Gesprächsverlauf als PDF herunterladen", transcriptBusy: "Das PDF wird erstellt…",
      transcriptFailed: "Das PDF konnte nicht erstellt werden. Bitte versuchen Sie es gleich noch einmal.",
      // attachments
      attach: "Datei anhängen", dropHere: "Datei hier ablegen",
      upProgress: "wird hochgeladen… {p} %", upPending: "wird geprüft", upDelivered: "zugestellt",
      upRefused: "abgewiesen: {e}", upInfected: "Schadsoftware gefunden – die Datei wurde nicht übermittelt",
      upType: "Dieser Dateityp ist nicht erlaubt. Bitte senden Sie Fotos, PDF- oder Office-Dateien.",
      upTooLarge: "Die Datei ist zu groß: höchstens {n} MB.", upUnscanned: "konnte nicht geprüft werden",
      upDownload: "{f} herunterladen", upRetrying: "Verbindung unterbrochen – wird erneut versucht"
    },
    en: {
      open: "Open citizen chat", close: "Close chat", title: "Citizen chat", other: "DE",
      otherLabel: "Auf Deutsch umschalten", intro: "Write to us – we are happy to help.",
      depts: "What can we help you with?", live: "Live now",
      offline: "not staffed right now – you can leave a message",
      until: "Live now until {t}", next: "Next consultation: {t}",
      topic: "Topic (optional)", topicAny: "Please choose…",
      name: "Your name (optional)",
      privacy: "Your messages are stored so that staff of the town administration can handle your request. Details in the",
      privacyLink: "privacy notice",
      consent: "I have read the privacy notice and agree that my details are stored.", start: "Start chat",
      leave: "Leave a message",
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
      errOther: "please try again", unread: "Open citizen chat – {n} new message(s)",
      queue: "You are number {n} in the queue – estimated wait about {m} min.",
      queueNext: "You are number {n} in the queue – it is your turn shortly.",
      queueClosed: "Leave us your request – we will get back to you by e-mail or phone.",
      offTitle: "Leave a message",
      offIntro: "{d} is not staffed right now. Write down your request – we will get back to you by e-mail or phone.",
      offDesc: "Your request", offDescHint: "Describe briefly what it is about.",
      offName: "Your name", offEmail: "E-mail address", offPhone: "Phone number",
      offContact: "How can we reach you?",
      offContactHint: "At least one: e-mail address or phone number.",
      offFiles: "Attachments (optional)",
      offFilesHint: "Photos, PDF or office files; they are checked for malware before anyone gets them.",
      offRemove: "Remove {f}", offSend: "Send message", back: "Back", offSending: "Sending…",
      errDesc: "Please describe your request.",
      errDescLong: "The description is too long: at most {n} characters.",
      errName: "Please enter your name.",
      errContact: "Please give an e-mail address or a phone number so that we can answer you.",
      errEmail: "Please check the e-mail address (for example name@example.com).",
      errPhone: "Please check the phone number: at least 5 digits, besides only spaces and + - / ( ).",
      errFix: "Please check the marked fields.",
      offNet: "No connection. Your message is kept on this device and will be sent as soon as the connection is back.",
      offFailed: "The message could not be sent: {e}",
      offDone: "Thank you – your message has arrived.",
      offDoneRef: "Your case number: {r}",
      offDoneNext: "The team will handle your request in the next consultation hours ({t}).",
      offDoneSoon: "The team will handle your request as soon as possible.",
      offDoneMail: "A confirmation goes to {e}. When there is an answer, you get an e-mail with a link back to this conversation.",
      offDonePhone: "We will call you at {p}.",
      offDoneOk: "Got it",
      resuming: "Opening your conversation…",
      linkExpired: "This link has expired – personal links are only valid for a limited time, for your security. Your request is not lost: just write us a new message and mention the case number from the e-mail.",
      linkInvalid: "This link is no longer valid, for example because the request was closed. You are welcome to start a new one.",
      videoOn: "A video consultation is running.", audioOn: "A phone call is running.",
      videoJoin: "Join video consultation", audioJoin: "Join phone call",
      videoChecking: "Checking camera and microphone…", audioChecking: "Checking the microphone…",
      videoLoading: "Connecting…",
      videoDenied: "Your browser did not allow access to camera and microphone. To allow it: click the lock or camera icon left of the web address at the top, set camera and microphone to “Allow”, then click “Join video consultation” again.",
      audioDenied: "Your browser did not allow access to the microphone. To allow it: click the lock icon left of the web address at the top, set the microphone to “Allow”, then click “Join phone call” again.",
      videoNoDevice: "We cannot find a microphone on this device. Please connect a headset and try again.",
      videoBusy: "Camera or microphone are in use by another program. Please close it and try again.",
      videoUnsupported: "This browser cannot open a video consultation. Please use a current Firefox, Chrome, Edge or Safari.",
      videoFailed: "The video consultation could not be loaded. Please try again.",
      videoGone: "The consultation has already ended.",
      helpline: "You can also reach us by phone:",
      videoTab: "Open the video consultation in a new tab", audioTab: "Open the phone call in a new tab",
      videoTabOpened: "The consultation is open in a new tab.",
      videoLeave: "Leave the consultation", videoFrame: "Video consultation",
      transcript: "Download the conversation as PDF", transcriptBusy: "Creating the PDF…",
      transcriptFailed: "The PDF could not be created. Please try again in a moment.",
      attach: "Attach a file", dropHere: "Drop the file here",
      upProgress: "uploading… {p} %", upPending: "being checked", upDelivered: "delivered",
      upRefused: "refused: {e}", upInfected: "malware found – the file was not delivered",
      upType: "This kind of file is not allowed. Please send photos, PDF or office files.",
      upTooLarge: "The file is too large: at most {n} MB.", upUnscanned: "could not be checked",
      upDownload: "Download {f}", upRetrying: "Connection lost – trying again"
    }
  };
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
  // Server messages for citizens come as "Deutsch / English": the citizen's half.
  function ours(message) {
    var parts = String(message || "").split(" / ");
    return parts.length === 2 ? parts[lang === "en" ? 1 : 0] : String(message || "");
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
    try { return d.toLocaleString(lang === "en" ? "en-GB" : "de-DE", opts); } catch (e) { return d.toLocaleString(); }
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
      new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "de-DE", opts).formatToParts(d)
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
    return megabytes(bytes).toLocaleString(lang === "en" ? "en-GB" : "de-DE") + " MB";
  }

  // --- talking to the bridge -------------------------------------------------
  var stopAll = new AbortController(); // aborted when the stored case is forgotten
  var gen = 0; // bumped at the same time: loops of an old case notice and stop

  // JSON in, JSON out. `token` overrides the stored chat token (resume links).
  async function api(method, path, body, timeoutMs, token) {
    var res = await request(method, path, body ? JSON.stringify(body) : undefined, timeoutMs, token,
      body ? "application/json" : null);
    var data = await res.json().catch(function () { return {}; });
    if (!res.ok) throw Object.assign(new Error(data.error || res.statusText), data, { status: res.status });
    return data;
  }
  async function request(method, path, body, timeoutMs, token, type) {
    var ctrl = new AbortController(), abort = function () { ctrl.abort(); };
    var timer = setTimeout(abort, timeoutMs || 15000), stop = stopAll.signal;
    stop.addEventListener("abort", abort);
    var headers = { Accept: "application/json" };
    if (type) headers["Content-Type"] = type;
    token = token || (path.indexOf("/cases/") === 0 ? saved.token : null);
    if (token) headers.Authorization = "Bearer " + token;
    try {
      var res = await fetch(API + path, {
        method: method, headers: headers, body: body,
        signal: ctrl.signal, credentials: "omit", cache: "no-store"
      });
      if (res.ok && !/json/.test(res.headers.get("Content-Type") || "")) {
        res.blobData = await res.blob(); // read before the timer ends: a PDF takes a while
      }
    } catch (e) {
      throw Object.assign(new Error("network"), { network: true });
    } finally {
      clearTimeout(timer);
      stop.removeEventListener("abort", abort);
    }
    return res;
  }
  // A file from the bridge (transcript, attachment), as a blob.
  async function download(path, timeoutMs) {
    var res = await request("GET", path, undefined, timeoutMs);
    if (!res.ok) {
      var data = await res.json().catch(function () { return {}; });
      throw Object.assign(new Error(data.error || res.statusText), data, { status: res.status });
    }
    return res.blobData;
  }
  // A token the bridge no longer accepts, or a case it does not know.
  function gone(e) { return e.status === 401 || e.status === 403 || e.status === 404; }
  function retryable(e) { return !e.status || e.status >= 500 || e.status === 429; }

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
  function department(id) {
    return ((status && status.departments) || []).filter(function (d) { return d.id === id; })[0] || null;
  }

  // Each view replaces the last; an answer for a view that is gone is dropped.
  var viewSeq = 0;
  function showStart(notice) {
    var seq = ++viewSeq;
    ui.chat = ui.depts = ui.offline = null;
    ui.error = h("p", { class: "error", role: "alert" });
    var body = h("div", { class: "scroll" }, [
      notice ? h("p", { class: "notice", role: "status", t: notice }) : null,
      h("p", { class: "intro", t: "intro" }),
      h("p", { t: "loading" })
    ]);
    ui.view.replaceChildren(body);
    loadStatus(true).then(function (s) { // fresh: who is live changes during the day
      if (seq !== viewSeq) return;
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

  function deptState(d) {
    return d.live ? (d.until ? t("until", { t: hours(d.until, false) }) : t("live"))
      : (d.next_opening ? t("next", { t: hours(d.next_opening, true) }) : t("offline"));
  }

  function renderDepts() {
    var checked = (ui.depts.querySelector("input:checked") || {}).value;
    var list = status.departments || [];
    ui.depts.replaceChildren(h("legend", { t: "depts" }));
    list.forEach(function (d) {
      ui.depts.append(h("label", { class: "dept" }, [
        h("input", { type: "radio", name: "bc-dept", value: d.id,
          checked: d.id === checked || list.length === 1, on: { change: renderTopics } }),
        h("span", null, [
          h("span", { class: "name" }, d.name),
          h("span", { class: "state" + (d.live ? " live" : "") }, deptState(d)),
          d.note ? h("span", { class: "note" }, d.note) : null // e.g. a holiday or closure
        ])
      ]));
    });
    renderTopics();
  }

  // Topics are optional per department: [{id, label}] from /status. A department
  // that is not staffed turns the button into "leave a message".
  function renderTopics() {
    var id = (ui.depts.querySelector("input:checked") || {}).value;
    var dept = department(id);
    ui.topicSelect = topicSelect("bc-topic", dept, ui.topicSelect && ui.topicSelect.value);
    ui.topic.hidden = !(dept && dept.topics && dept.topics.length);
    ui.topic.replaceChildren(h("label", { for: "bc-topic", t: "topic" }), ui.topicSelect);
    tx(ui.startBtn, dept && !dept.live ? "leave" : "start");
  }
  function topicSelect(id, dept, value) {
    var topics = (dept && dept.topics) || [];
    var select = h("select", { id: id }, [h("option", { value: "", t: "topicAny" })].concat(
      topics.map(function (x) {
        return typeof x === "string" ? h("option", { value: x }, x)
          : h("option", { value: x.id }, x.label || x.name || x.id);
      })));
    if (value) select.value = value;
    return select;
  }

  async function startCase(e) {
    e.preventDefault();
    var dept = ui.depts.querySelector("input:checked");
    if (!dept) return fail("needDept", ui.depts.querySelector("input"));
    var choice = { department: dept.value, topic: ui.topicSelect.value || "", name: ui.name.value.trim(),
      consent: ui.consent.checked };
    var info = department(dept.value);
    if (info && !info.live) return showOffline(choice, info.next_opening); // the form asks for consent
    if (!ui.consent.checked) {
      ui.consent.setAttribute("aria-invalid", "true");
      return fail("needConsent", ui.consent);
    }
    ui.error.textContent = "";
    ui.startBtn.disabled = true;
    try {
      var c = await api("POST", "/cases", {
        department: dept.value, consent: true, name: choice.name || undefined,
        topic: choice.topic || undefined, language: lang
      });
    } catch (err) {
      ui.startBtn.disabled = false;
      // Nobody there after all (closed meanwhile, nobody online): leave a message.
      if (err.errcode === "BC_OFFLINE") return showOffline(choice, err.next_opening);
      return fail(err.errcode === "BC_CONSENT_REQUIRED" ? "needConsent" : "down", null);
    }
    saved = { case_id: c.case_id, token: c.token, reference: c.reference, cursor: "0", seen: "0",
      lang: lang, open: true, outbox: [], department: dept.value, name: choice.name,
      queue: c.state === "queued" ? c.queue || null : null };
    save();
    showChat();
    ui.input.focus();
  }
  function fail(key, focusEl) {
    tx(ui.error, key);
    if (focusEl) focusEl.focus();
  }

  // --- offline form: leave a message ------------------------------------------
  // The draft lives in saved.offline, so a reload or a lost connection loses
  // nothing; its client_id makes a resend return the same case, never a second.
  var offlineFiles = []; // File objects cannot be stored: this page only

  function showOffline(choice, nextOpening) {
    var convert = !!(choice && choice.convert);
    var d = saved.offline;
    if (!d || (choice && (!!d.convert !== convert || d.department !== choice.department))) {
      d = { client_id: newId(), department: choice.department, topic: choice.topic || "",
        name: choice.name || "", description: choice.description || "", email: "", phone: "",
        consent: !!choice.consent, convert: convert || undefined };
    }
    if (nextOpening !== undefined) d.next_opening = nextOpening;
    d.open = true;
    saved.offline = d;
    save();
    var seq = ++viewSeq;
    ui.chat = ui.depts = null;
    ui.view.replaceChildren(h("div", { class: "scroll" }, h("p", { t: "loading" })));
    loadStatus().then(function () { if (seq === viewSeq) renderOffline(); });
  }

  function renderOffline() {
    var d = saved.offline;
    var dept = department(d.department);
    var next = d.next_opening || (dept && dept.next_opening);
    var f = ui.offline = { fields: {}, invalid: {} };
    function field(name, control, labelKey, hintKey) {
      var err = h("p", { class: "field-error", id: "bc-off-" + name + "-err", "aria-live": "polite" });
      var hint = hintKey ? h("p", { class: "field-hint", id: "bc-off-" + name + "-hint", t: hintKey }) : null;
      control.id = "bc-off-" + name;
      control.setAttribute("aria-describedby", (hint ? hint.id + " " : "") + err.id);
      if (control.type !== "checkbox" && control.type !== "file") {
        control.value = d[name] || "";
        control.addEventListener("input", function () {
          d[name] = control.value; save(); setFieldError(name, null);
          if (name === "email" || name === "phone") setFieldError("contact", null);
        });
      }
      f.fields[name] = { control: control, error: err };
      return h("div", { class: "field" }, [h("label", { for: control.id, t: labelKey }), control, hint, err]);
    }
    var topicControl = dept && dept.topics && dept.topics.length
      ? topicSelect("bc-off-topic", dept, d.topic)
      : h("input", { type: "text", maxlength: "200" });
    var desc = h("textarea", { rows: "5", maxlength: String(MAX_LEN), required: true });
    f.consent = h("input", { type: "checkbox", on: { change: function () {
      d.consent = f.consent.checked; save(); setFieldError("consent", null);
    } } });
    f.consent.checked = !!d.consent;
    f.files = h("input", { type: "file", multiple: true, class: "sr", tabindex: "-1", on: { change: function () {
      addOfflineFiles(f.files.files); f.files.value = "";
    } } });
    f.fileList = h("ul", { class: "files" });
    f.error = h("p", { class: "error", role: "alert" });
    f.sendBtn = h("button", { type: "submit", class: "primary", t: "offSend" });
    var privacyLink = status && status.privacy_url
      ? h("a", { href: status.privacy_url, target: "_blank", rel: "noopener noreferrer", t: "privacyLink" })
      : h("span", { t: "privacyLink" });
    var consentErr = h("p", { class: "field-error", id: "bc-off-consent-err", "aria-live": "polite" });
    f.consent.id = "bc-off-consent";
    f.consent.setAttribute("aria-describedby", consentErr.id);
    f.fields.consent = { control: f.consent, error: consentErr };
    var contactErr = h("p", { class: "field-error", id: "bc-off-contact-err", "aria-live": "polite" });
    var form = h("form", { class: "view offline", novalidate: true, on: { submit: sendOffline } }, [
      h("div", { class: "scroll" }, [
        h("h3", { t: "offTitle" }),
        h("p", { class: "intro", t: ["offIntro", { d: dept ? dept.name : "" }] }),
        next ? h("p", { class: "state", t: ["next", { t: hours(next, true) }] }) : null,
        field("topic", topicControl, "topic"),
        field("description", desc, "offDesc", "offDescHint"),
        field("name", h("input", { type: "text", maxlength: "200", autocomplete: "name", required: true }),
          "offName"),
        h("fieldset", { class: "contact", "aria-describedby": "bc-off-contact-hint bc-off-contact-err" }, [
          h("legend", { t: "offContact" }),
          h("p", { class: "field-hint", id: "bc-off-contact-hint", t: "offContactHint" }),
          field("email", h("input", { type: "email", maxlength: "254", autocomplete: "email" }), "offEmail"),
          field("phone", h("input", { type: "tel", maxlength: "40", autocomplete: "tel" }), "offPhone"),
          contactErr
        ]),
        h("div", { class: "field" }, [
          h("span", { class: "label", t: "offFiles" }),
          h("p", { class: "field-hint", t: "offFilesHint" }),
          f.fileList,
          h("button", { type: "button", class: "secondary small", t: "attach",
            on: { click: function () { f.files.click(); } } }),
          f.files
        ]),
        h("div", { class: "privacy" }, [
          h("p", null, [h("span", { t: "privacy" }), " ", privacyLink, "."]),
          h("label", { class: "consent", for: "bc-off-consent" }, [f.consent, h("span", { t: "consent" })]),
          consentErr
        ])
      ]),
      h("div", { class: "actions" }, [
        f.error,
        h("div", { class: "row" }, [
          h("button", { type: "button", class: "secondary", t: "back", on: { click: leaveOffline } }),
          f.sendBtn
        ])
      ])
    ]);
    f.fields.contact = { control: f.fields.email.control, error: contactErr };
    f.topicControl = topicControl;
    topicControl.addEventListener("change", function () { d.topic = topicControl.value; save(); });
    renderOfflineFiles();
    ui.view.replaceChildren(form);
    if (!ui.panel.hidden) (d.description ? f.sendBtn : desc).focus();
    if (d.sending) sendOffline(); // a reload interrupted sending: go on
  }

  function addOfflineFiles(list) {
    Array.prototype.forEach.call(list || [], function (file) { offlineFiles.push(file); });
    renderOfflineFiles();
  }
  function renderOfflineFiles() {
    var f = ui.offline;
    if (!f) return;
    f.fileList.replaceChildren.apply(f.fileList, offlineFiles.map(function (file, i) {
      return h("li", null, [
        h("span", null, file.name + " (" + fileSize(file.size) + ")"), " ",
        h("button", { type: "button", class: "link", label: ["offRemove", { f: file.name }],
          on: { click: function () { offlineFiles.splice(i, 1); renderOfflineFiles(); } } }, "×")
      ]);
    }));
  }

  function leaveOffline() {
    var d = saved.offline;
    d.open = false; save();
    if (d.convert && saved.case_id) showChat(); else showStart();
  }

  // A control is marked invalid for its own error; e-mail and phone also for the
  // shared "give at least one" error.
  function setFieldError(name, message) {
    var o = ui.offline, f = o && o.fields[name];
    if (!f) return;
    f.error.textContent = message || "";
    o.invalid[name] = !!message;
    Object.keys(o.fields).forEach(function (k) {
      if (k === "contact") return;
      var bad = o.invalid[k] || ((k === "email" || k === "phone") && o.invalid.contact);
      if (bad) o.fields[k].control.setAttribute("aria-invalid", "true");
      else o.fields[k].control.removeAttribute("aria-invalid");
    });
  }

  // The same rules as the bridge, so most mistakes are caught before sending.
  function validateOffline(d) {
    var errors = {};
    var digits = (d.phone || "").replace(/\D/g, "");
    if (!d.description.trim()) errors.description = t("errDesc");
    else if (d.description.length > MAX_LEN) errors.description = t("errDescLong", { n: MAX_LEN });
    if (!d.name.trim()) errors.name = t("errName");
    if (d.email.trim() && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(d.email.trim())) errors.email = t("errEmail");
    if (d.phone.trim() && (!/^\+?[0-9 ()\/.-]+$/.test(d.phone.trim()) || digits.length < 5)) errors.phone = t("errPhone");
    if (!d.email.trim() && !d.phone.trim()) errors.contact = t("errContact");
    if (!d.consent) errors.consent = t("needConsent");
    return errors;
  }

  var offlineSending = false;
  async function sendOffline(e) {
    if (e) e.preventDefault();
    var f = ui.offline, d = saved.offline;
    if (!f || offlineSending) return;
    Object.keys(f.fields).forEach(function (k) { setFieldError(k, null); });
    f.error.textContent = "";
    var errors = validateOffline(d);
    var names = Object.keys(errors);
    if (names.length) {
      names.forEach(function (k) { setFieldError(k, errors[k]); });
      tx(f.error, "errFix");
      d.sending = false; save();
      f.fields[names[0]].control.focus();
      return;
    }
    offlineSending = true;
    d.sending = true; save();
    tx(f.sendBtn, "offSending");
    f.sendBtn.disabled = true;
    var body = {
      client_id: d.client_id, department: d.department, topic: d.topic || undefined,
      description: d.description, name: d.name.trim(), email: d.email.trim() || undefined,
      phone: d.phone.trim() || undefined, consent: true, language: lang
    };
    var token = null;
    if (d.convert) { body.case_id = saved.case_id; token = saved.token; }
    var delay = 1000, g = gen, result = null;
    try {
      while (g === gen && ui.offline === f) {
        try {
          result = await api("POST", "/offline-messages", body, 20000, token);
          break;
        } catch (err) {
          if (retryable(err)) { // nothing is lost: the draft is stored, try again
            tx(f.error, "offNet");
            await pause(delay);
            delay = Math.min(delay * 2, 30000);
            continue;
          }
          d.sending = false; save();
          if (err.field && f.fields[err.field]) {
            setFieldError(err.field, err.error);
            tx(f.error, "errFix");
            f.fields[err.field].control.focus();
          } else {
            tx(f.error, "offFailed", { e: err.error || err.message });
          }
          return;
        }
      }
    } finally {
      offlineSending = false;
      if (ui.offline === f) { tx(f.sendBtn, "offSend"); f.sendBtn.disabled = false; }
    }
    if (!result) return;
    var files = offlineFiles;
    offlineFiles = [];
    var done = { reference: result.reference, email: body.email || null, phone: body.phone || null,
      next_opening: d.next_opening || (department(d.department) || {}).next_opening || null };
    var keep = d.convert && saved.case_id === result.case_id ? saved : {};
    saved = { case_id: result.case_id, token: result.token, reference: result.reference,
      cursor: keep.cursor || "0", seen: keep.seen || "0", lang: lang, open: !ui.panel.hidden,
      outbox: keep.outbox || [], department: d.department, name: body.name, done: done };
    save();
    showChat();
    files.forEach(function (file) { uploadFile(file); });
  }

  // --- chat ------------------------------------------------------------------
  var shown = {}; // cursor -> element and client_id -> element: nothing twice
  var atts = {}; // attachment_id -> {el, file, state}
  var unread = 0;

  function showChat() {
    ++viewSeq;
    restart(); // one event stream per case, even when the chat is shown again
    shown = {}; atts = {};
    ui.offline = null;
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
    // Queue position, a running call, the end of live hours: said aloud as they change.
    ui.queue = h("div", { class: "queue", role: "status", "aria-live": "polite", hidden: true });
    ui.offer = h("div", { class: "offer", hidden: true }, [
      h("p", { t: "queueClosed" }),
      h("button", { type: "button", class: "primary", t: "leave", on: { click: convertToOffline } })
    ]);
    ui.done = doneBox();
    ui.video = h("div", { class: "video", hidden: true });
    ui.log = h("div", { class: "log", role: "log", "aria-live": "polite", label: "log" });
    ui.scroll = h("div", { class: "scroll" }, ui.log);
    ui.input = h("textarea", { rows: "1", label: "input", maxlength: String(MAX_LEN), "aria-describedby": "bc-hint",
      on: { keydown: onKey, input: grow } });
    tx(ui.input, "placeholder", null, "placeholder");
    ui.sendBtn = h("button", { type: "submit", class: "send", label: "send" }, svg(ICON_SEND));
    ui.fileInput = h("input", { type: "file", multiple: true, class: "sr", tabindex: "-1", "aria-hidden": "true",
      on: { change: function () {
        Array.prototype.forEach.call(ui.fileInput.files, uploadFile); ui.fileInput.value = "";
      } } });
    ui.attachBtn = h("button", { type: "button", class: "attach", label: "attach",
      on: { click: function () { ui.fileInput.click(); } } }, svg(ICON_CLIP));
    ui.transcriptStatus = h("p", { class: "small", role: "status", "aria-live": "polite" });
    ui.transcriptBtn = h("button", { type: "button", class: "secondary", t: "transcript", on: { click: downloadTranscript } });
    ui.closed = h("div", { class: "closed", hidden: true }, [
      h("p", { t: "closed" }),
      ui.transcriptBtn, ui.transcriptStatus,
      h("button", { type: "button", class: "secondary", t: "newCase", on: { click: forget } })
    ]);
    ui.drop = h("div", { class: "drop", hidden: true, "aria-hidden": "true" }, h("span", { t: "dropHere" }));
    ui.chat = h("div", { class: "view chat", on: {
      dragenter: onDrag, dragover: onDrag, dragleave: onDragLeave, drop: onDrop
    } }, [
      h("div", { class: "casebar" }, [ui.ref, ui.endBtn]),
      ui.confirm, ui.banner, ui.done, ui.queue, ui.offer, ui.video, ui.scroll, ui.closed,
      h("form", { class: "composer", on: { submit: function (e) { e.preventDefault(); sendFromInput(); } } },
        [ui.attachBtn, ui.fileInput, ui.input, ui.sendBtn]),
      h("div", { class: "hint", id: "bc-hint", t: "hint" }),
      ui.drop
    ]);
    ui.view.replaceChildren(ui.chat);
    video = { on: false };
    showQueue(saved.queue);
    poll(gen);
  }

  // What happens after an offline message, until the citizen has read it.
  function doneBox() {
    var d = saved.done;
    if (!d) return h("div", { hidden: true });
    var box = h("div", { class: "done", role: "status" }, [
      h("p", { class: "strong", t: "offDone" }),
      h("p", { t: ["offDoneRef", { r: d.reference }] }),
      h("p", { t: d.next_opening ? ["offDoneNext", { t: hours(d.next_opening, true) }] : "offDoneSoon" }),
      d.email ? h("p", { t: ["offDoneMail", { e: d.email }] }) : null,
      !d.email && d.phone ? h("p", { t: ["offDonePhone", { p: d.phone }] }) : null,
      h("button", { type: "button", class: "secondary small", t: "offDoneOk", on: { click: function () {
        delete saved.done; save(); reflow(function () { box.hidden = true; }); ui.input.focus();
      } } })
    ]);
    return box;
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
    if (ev.type === "attachment") return attachmentEvent(ev, replay, follow);
    if (ev.kind === "queue") { // the box above the log says it, updated in place
      shown["c" + ev.cursor] = h("div");
      return systemEvent(ev, replay);
    }
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
    systemEvent(ev, replay);
    if (!replay && ev.sender === "staff" && ui.panel.hidden) unread++;
  }

  // What system events change besides their line in the log.
  function systemEvent(ev, replay) {
    var kind = ev.kind;
    if (kind === "closed") setClosed();
    else if (kind === "transferred" && !replay) refreshCase(gen);
    else if (kind === "queue") showQueue({ position: ev.position, estimated_wait_minutes: ev.estimated_wait_minutes });
    else if (kind === "routed" || kind === "staff_joined") showQueue(null);
    else if (kind === "queue_closed") {
      showQueue(null);
      if (ev.next_opening !== undefined && saved.queue_next !== ev.next_opening) {
        saved.queue_next = ev.next_opening; save();
      }
      if (ev.offline_offer !== false) showOffer(true);
    }
    else if (kind === "offline_received") showOffer(false);
    else if (kind === "video_started") videoStarted(!!ev.audio_only);
    else if (kind === "video_ended") videoEnded();
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
      ui.input.disabled = ui.sendBtn.disabled = ui.attachBtn.disabled = true;
      ui.endBtn.hidden = ui.confirm.hidden = true;
      ui.queue.hidden = ui.offer.hidden = true;
    });
    videoEnded();
  }

  // --- queue ---------------------------------------------------------------------
  function showQueue(q) {
    if (!ui.queue) return;
    if (saved.queue !== q) { saved.queue = q || null; save(); }
    reflow(function () {
      ui.queue.hidden = !q;
      if (q) tx(ui.queue, q.estimated_wait_minutes > 0 ? "queue" : "queueNext",
        { n: q.position, m: q.estimated_wait_minutes });
    });
  }
  function showOffer(on) {
    if (ui.offer && ui.offer.hidden === on) reflow(function () { ui.offer.hidden = !on; });
  }
  // Live hours ended while queued: the same case becomes an offline message.
  function convertToOffline() {
    var mine = Array.prototype.map.call(ui.log.querySelectorAll(".msg.citizen:not(.file) .text"),
      function (el) { return el.textContent; }).join("\n\n");
    showOffline({ convert: true, department: saved.department, name: saved.name || "",
      description: mine, consent: false }, saved.queue_next);
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
      if (c.department && c.department.id) { saved.department = c.department.id; save(); }
      if (c.state) showQueue(c.state === "queued" ? c.queue || null : null);
      if (c.state === "offline") showOffer(false);
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
          if (retryable(e)) { // worth another try
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

  // --- attachments ---------------------------------------------------------------
  // One bubble per file. The upload shows its progress; the bridge's answer and the
  // event stream then say "being checked", "delivered" or "refused" on the same
  // bubble. Images the citizen sent are previewed from their own file.
  function fileBubble(sender, name, size, senderName, ts) {
    var rec = {
      sender: sender, name: name, size: size,
      status: h("div", { class: "status", role: "status", "aria-live": "polite" }),
      progress: h("progress", { max: "100", value: "0", hidden: true, label: ["upProgress", { p: 0 }] }),
      preview: h("div", { class: "preview", hidden: true })
    };
    var meta = h("div", { class: "meta" }, [
      sender === "staff" ? h("span", { class: "who" }, senderName || "") : h("span", { class: "sr", t: "you" }),
      sender === "staff" ? " · " : null, when(ts || new Date().toISOString())
    ]);
    rec.title = h("div", { class: "fname" }, [name, h("span", { class: "fsize" }, " · " + fileSize(size))]);
    rec.el = h("div", { class: "msg file " + (sender === "staff" ? "staff" : "citizen") }, [
      meta, h("div", { class: "text" }, [rec.title, rec.progress, rec.preview]), rec.status
    ]);
    return rec;
  }
  function setFileState(rec, state, reason) {
    rec.state = state;
    rec.el.classList.toggle("failed", state === "refused" || state === "infected");
    rec.progress.hidden = state !== "uploading";
    if (state === "uploading") tx(rec.status, "upProgress", { p: rec.percent || 0 });
    else if (state === "retrying") tx(rec.status, "upRetrying");
    else if (state === "pending") tx(rec.status, "upPending");
    else if (state === "delivered") tx(rec.status, rec.sender === "staff" ? "upDownload" : "upDelivered",
      { f: rec.name });
    else if (state === "infected") tx(rec.status, "upRefused", { e: reason ? ours(reason) : t("upInfected") });
    else if (state === "refused") tx(rec.status, "upRefused", { e: reason || t("upUnscanned") });
    if (state === "delivered") showPreview(rec);
    if (state === "delivered" && rec.sender === "staff" && !rec.link) {
      rec.link = h("button", { type: "button", class: "link", t: ["upDownload", { f: rec.name }],
        on: { click: function () { saveAttachment(rec); } } });
      rec.status.replaceChildren(rec.link);
    }
  }
  function isImage(rec) { return /^image\/(png|jpe?g|gif|webp)$/.test(rec.mimetype || (rec.file && rec.file.type) || ""); }
  async function showPreview(rec) {
    if (!isImage(rec) || rec.previewed) return;
    rec.previewed = true;
    var blob = rec.file;
    if (!blob && rec.id) { // after a reload: the scanned copy from the bridge
      try { blob = await download("/cases/" + saved.case_id + "/attachments/" + rec.id, 30000); } catch (e) { return; }
    }
    if (!blob) return;
    var follow = stuckToBottom();
    rec.preview.replaceChildren(h("img", { src: URL.createObjectURL(blob), alt: rec.name }));
    rec.preview.hidden = false;
    if (follow) rec.preview.firstChild.addEventListener("load", function () { ui.scroll.scrollTop = ui.scroll.scrollHeight; });
  }
  async function saveAttachment(rec) {
    try {
      var blob = await download("/cases/" + saved.case_id + "/attachments/" + rec.id, 60000);
    } catch (e) { return; }
    offerDownload(blob, rec.name);
  }
  function offerDownload(blob, name) {
    var url = URL.createObjectURL(blob);
    var a = h("a", { href: url, download: name, hidden: true });
    ui.root.append(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
  }

  function attachmentEvent(ev, replay, follow) {
    var rec = atts[ev.attachment_id];
    if (!rec) {
      rec = fileBubble(ev.sender, ev.filename || ev.body, ev.size, ev.sender_name, ev.ts);
      rec.id = ev.attachment_id;
      rec.mimetype = ev.mimetype;
      atts[ev.attachment_id] = rec;
    } else if (!rec.placed && rec.el.parentNode) {
      rec.el.remove(); // our upload bubble: now it has its place in cursor order
    }
    rec.mimetype = rec.mimetype || ev.mimetype;
    shown["c" + ev.cursor] = rec.el;
    if (!rec.placed) { rec.el.classList.remove("pending"); place(rec.el, follow); rec.placed = true; }
    setFileState(rec, ev.state, ev.error);
    if (!replay && ev.sender === "staff" && ui.panel.hidden) unread++;
  }

  function uploadFile(file) {
    if (!ui.chat || ui.attachBtn.disabled) return;
    var rec = fileBubble("citizen", file.name, file.size);
    rec.file = file; rec.mimetype = file.type; rec.client_id = newId();
    rec.el.classList.add("pending");
    ui.log.append(rec.el);
    ui.scroll.scrollTop = ui.scroll.scrollHeight;
    var limit = status && status.max_upload_bytes;
    if (limit && file.size > limit) {
      rec.el.classList.remove("pending");
      return setFileState(rec, "refused", t("upTooLarge", { n: megabytes(limit) }));
    }
    setFileState(rec, "uploading");
    sendFile(rec, gen, 1000);
  }
  // multipart 'file' + 'client_id' (a resend with the same id is the same upload).
  // XMLHttpRequest, since fetch cannot report upload progress.
  function sendFile(rec, g, delay) {
    var xhr = new XMLHttpRequest();
    var form = new FormData();
    form.append("client_id", rec.client_id);
    form.append("file", rec.file, rec.file.name);
    xhr.open("POST", API + "/cases/" + saved.case_id + "/attachments");
    xhr.setRequestHeader("Authorization", "Bearer " + saved.token);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.timeout = 10 * 60 * 1000;
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable || rec.state !== "uploading") return;
      rec.percent = Math.floor(e.loaded / e.total * 100);
      rec.progress.value = rec.percent;
      tx(rec.progress, "upProgress", { p: rec.percent }, "aria-label");
      if (rec.percent % 10 === 0) tx(rec.status, "upProgress", { p: rec.percent });
    };
    function again() {
      if (g !== gen) return;
      setFileState(rec, "retrying");
      pause(delay).then(function () {
        if (g !== gen) return;
        rec.percent = 0;
        setFileState(rec, "uploading");
        sendFile(rec, g, Math.min(delay * 2, 30000));
      });
    }
    xhr.onerror = xhr.ontimeout = again;
    xhr.onload = function () {
      if (g !== gen) return;
      var data = {};
      try { data = JSON.parse(xhr.responseText) || {}; } catch (e) { /* not JSON: a proxy's page */ }
      var code = xhr.status;
      if (code === 0 || code >= 500 || code === 429) return again();
      if (code === 401 || code === 403 || code === 404) return expire();
      if (!rec.placed) rec.el.classList.remove("pending"); // done sending: it keeps its place
      if (data.attachment_id) {
        var known = atts[data.attachment_id];
        if (known && known !== rec) { // the stream was faster: keep its bubble, add our file
          known.file = rec.file;
          rec.el.remove();
          rec = known;
        } else {
          rec.id = data.attachment_id;
          atts[data.attachment_id] = rec;
        }
      }
      if (code === 201) setFileState(rec, "delivered");
      else if (code === 202) { if (rec.state !== "delivered") setFileState(rec, "pending"); }
      else if (data.errcode === "BC_INFECTED") setFileState(rec, "infected", data.error);
      else if (data.errcode === "BC_UNSUPPORTED_MEDIA_TYPE") setFileState(rec, "refused", t("upType"));
      else if (code === 413) setFileState(rec, "refused", ours(data.error));
      else if (data.errcode === "BC_CASE_CLOSED") { setFileState(rec, "refused", t("errClosed")); setClosed(); }
      else setFileState(rec, "refused", ours(data.error) || t("errOther"));
    };
    xhr.send(form);
  }

  var dragDepth = 0;
  function hasFiles(e) {
    return e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types || [], "Files") >= 0;
  }
  function onDrag(e) {
    if (!hasFiles(e) || ui.attachBtn.disabled) return;
    e.preventDefault();
    if (e.type === "dragenter") dragDepth++;
    e.dataTransfer.dropEffect = "copy";
    ui.drop.hidden = false;
  }
  function onDragLeave() {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) ui.drop.hidden = true;
  }
  function onDrop(e) {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth = 0;
    ui.drop.hidden = true;
    if (ui.attachBtn.disabled) return;
    Array.prototype.forEach.call(e.dataTransfer.files, uploadFile);
  }

  // --- transcript ------------------------------------------------------------------
  async function downloadTranscript() {
    ui.transcriptBtn.disabled = true;
    tx(ui.transcriptStatus, "transcriptBusy");
    try {
      var blob = await download("/cases/" + saved.case_id + "/transcript", 120000);
      offerDownload(blob, "Verlauf-" + (saved.reference || "Buergerchat") + ".pdf");
      ui.transcriptStatus.textContent = "";
      delete ui.transcriptStatus._t;
    } catch (e) {
      tx(ui.transcriptStatus, gone(e) ? "expired" : "transcriptFailed");
    } finally {
      ui.transcriptBtn.disabled = false;
    }
  }

  // --- video -------------------------------------------------------------------------
  // Staff start a call with !video / !audio: the stream says video_started, the
  // widget offers a join button; video_ended takes it away again.
  var video = { on: false };
  function videoStarted(audioOnly) {
    if (video.api) return; // already in this call
    video = { on: true, audioOnly: audioOnly };
    renderVideo();
  }
  function videoEnded() {
    leaveCall();
    video = { on: false };
    if (ui.video) reflow(function () { ui.video.hidden = true; ui.video.replaceChildren(); });
  }
  function renderVideo(messageKey, helpline, link) {
    if (!ui.video || !video.on) return;
    var a = video.audioOnly;
    video.button = h("button", { type: "button", class: "primary join", on: { click: joinCall } },
      [svg(ICON_CAM), h("span", { t: a ? "audioJoin" : "videoJoin" })]);
    video.status = h("div", { class: "video-status", role: "status", "aria-live": "polite" }, [
      messageKey ? h("p", { t: messageKey }) : null,
      helpline ? h("p", { class: "helpline" }, [h("span", { t: "helpline" }), " ",
        h("a", { href: "tel:" + helpline.replace(/[^+0-9]/g, "") }, helpline)]) : null,
      link ? h("p", null, h("a", { href: link, target: "_blank", rel: "noopener", t: a ? "audioTab" : "videoTab" }))
        : null
    ]);
    reflow(function () {
      ui.video.replaceChildren(h("p", { class: "video-title", t: a ? "audioOn" : "videoOn" }), video.button, video.status);
      ui.video.hidden = false;
    });
  }
  function videoMessage(key, helpline) {
    if (!video.status) return;
    video.status.replaceChildren(
      h("p", { t: key }),
      helpline ? h("p", { class: "helpline" }, [h("span", { t: "helpline" }), " ",
        h("a", { href: "tel:" + helpline.replace(/[^+0-9]/g, "") }, helpline)]) : null
    );
  }

  // Camera and microphone once, stopped right away: a refusal is explained here,
  // before the conference page would fail less helpfully.
  async function checkDevices(audioOnly) {
    var media = navigator.mediaDevices;
    if (!media || !media.getUserMedia) return "unsupported";
    async function tryOnce(withVideo) {
      var stream = await media.getUserMedia({ audio: true, video: withVideo });
      stream.getTracks().forEach(function (track) { track.stop(); });
    }
    try {
      await tryOnce(!audioOnly);
      return "ok";
    } catch (e) {
      if ((e.name === "NotFoundError" || e.name === "OverconstrainedError") && !audioOnly) {
        try { await tryOnce(false); return "nocamera"; } catch (e2) { e = e2; }
      }
      if (e.name === "NotFoundError" || e.name === "OverconstrainedError") return "nodevice";
      if (e.name === "NotReadableError" || e.name === "AbortError") return "busy";
      return "denied"; // NotAllowedError, SecurityError
    }
  }

  async function joinCall() {
    var g = gen, a = video.audioOnly;
    video.button.disabled = true;
    videoMessage(a ? "audioChecking" : "videoChecking");
    var info = null;
    try {
      info = await api("GET", "/cases/" + saved.case_id + "/video");
    } catch (e) {
      if (g !== gen) return;
      video.button.disabled = false;
      if (e.status === 404) return videoEnded();
      return videoMessage(retryable(e) ? "down" : "videoFailed");
    }
    var fetched = Date.now();
    var devices = await checkDevices(a);
    if (g !== gen || !video.on) return;
    if (devices !== "ok" && devices !== "nocamera") {
      video.button.disabled = false;
      var key = { unsupported: "videoUnsupported", nodevice: "videoNoDevice", busy: "videoBusy" }[devices]
        || (a ? "audioDenied" : "videoDenied");
      return videoMessage(key, info.helpline);
    }
    if (Date.now() - fetched > 60000) { // the permission prompt took long: a fresh token
      try { info = await api("GET", "/cases/" + saved.case_id + "/video"); } catch (e) {
        video.button.disabled = false;
        return e.status === 404 ? videoEnded() : videoMessage("videoFailed", info.helpline);
      }
    }
    video.info = info;
    var url = info.join_url || ("https://" + info.domain + "/" + info.room + (info.jwt ? "?jwt=" + info.jwt : ""));
    if (window.innerWidth < SMALL_SCREEN) {
      var tab = window.open(url, "_blank");
      video.button.disabled = false;
      if (tab) { tab.opener = null; videoMessage("videoTabOpened"); }
      else renderVideo(null, null, url); // a pop-up blocker: a link the citizen taps
      return;
    }
    videoMessage("videoLoading");
    try {
      await loadJitsi(info.iframe_api_url || "https://" + info.domain + "/external_api.js");
      if (g !== gen || !video.on) return;
      embed(info, devices === "nocamera" || a);
    } catch (e) {
      if (g !== gen) return;
      leaveCall();
      renderVideo("videoFailed", info.helpline);
    }
  }

  var jitsiScript = null; // one load per page; a failed one is tried again
  function loadJitsi(url) {
    if (window.JitsiMeetExternalAPI) return Promise.resolve();
    if (jitsiScript && jitsiScript.url === url) return jitsiScript.promise;
    var promise = new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      var timer = setTimeout(function () { done(new Error("timeout")); }, JITSI_LOAD_MS);
      function done(err) {
        clearTimeout(timer);
        if (!err && typeof window.JitsiMeetExternalAPI !== "function") err = new Error("no JitsiMeetExternalAPI");
        if (err) { tag.remove(); jitsiScript = null; reject(err); } else resolve();
      }
      tag.src = url;
      tag.async = true;
      tag.onload = function () { done(null); };
      tag.onerror = function () { done(new Error("load failed")); };
      document.head.append(tag);
    });
    jitsiScript = { url: url, promise: promise };
    return promise;
  }

  function embed(info, cameraOff) {
    var frame = h("div", { class: "call-frame", role: "region", label: "videoFrame" });
    var leave = h("button", { type: "button", class: "secondary small", t: "videoLeave", on: { click: function () {
      leaveCall(); renderVideo();
    } } });
    reflow(function () {
      ui.video.replaceChildren(frame, leave);
      ui.panel.classList.add("calling");
    });
    var options = {
      roomName: info.room, parentNode: frame, width: "100%", height: "100%", lang: lang,
      userInfo: { displayName: info.display_name || saved.name || "" },
      configOverwrite: { startWithVideoMuted: !!cameraOff, startAudioOnly: !!info.audio_only,
        prejoinPageEnabled: false, prejoinConfig: { enabled: false } },
      interfaceConfigOverwrite: { SHOW_JITSI_WATERMARK: false }
    };
    if (info.jwt) options.jwt = info.jwt;
    var conference = new window.JitsiMeetExternalAPI(info.domain, options);
    video.api = conference;
    if (typeof conference.addListener === "function") {
      conference.addListener("readyToClose", function () { leaveCall(); renderVideo(); });
      conference.addListener("errorOccurred", function (e) {
        if (e && e.error && e.error.isFatal) { leaveCall(); renderVideo("videoFailed", info.helpline); }
      });
    }
  }
  function leaveCall() {
    if (video.api) {
      try { video.api.dispose(); } catch (e) { /* the frame is gone anyway */ }
      video.api = null;
    }
    if (ui.panel) ui.panel.classList.remove("calling");
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
  // Stops the loops (event stream, outbox, uploads) of whatever case was shown.
  function restart() {
    gen++;
    leaveCall();
    stopAll.abort();
    stopAll = new AbortController();
    wakeAll();
  }
  function reset() {
    restart();
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

  // --- resume link from an e-mail: #bc-resume=<case_id>.<token> ------------------------
  function resumeFromLink() {
    var m = /(?:^#|&)bc-resume=([^&]+)/.exec(location.hash || "");
    if (!m) return false;
    var value = decodeURIComponent(m[1]), dot = value.indexOf(".");
    var caseId = value.slice(0, dot), token = value.slice(dot + 1);
    if (dot < 1 || !token) return false;
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    ui.view.replaceChildren(h("div", { class: "scroll" }, h("p", { role: "status", t: "resuming" })));
    loadStatus();
    (async function attempt() {
      try {
        var c = await api("POST", "/cases/" + encodeURIComponent(caseId) + "/resume", null, 15000, token);
      } catch (e) {
        if (retryable(e)) { // keep the link in the address bar until it worked
          ui.view.replaceChildren(h("div", { class: "scroll" }, [
            h("p", { class: "error", role: "alert", t: "down" }),
            h("button", { type: "button", class: "secondary", t: "retry", on: { click: attempt } })
          ]));
          return;
        }
        clearHash();
        reset();
        focusWhenReady = true;
        showStart(e.errcode === "BC_LINK_EXPIRED" ? "linkExpired" : "linkInvalid");
        return;
      }
      clearHash();
      saved = { case_id: c.case_id, token: c.token, reference: c.reference, cursor: "0", seen: "0",
        lang: lang, open: true, outbox: [] };
      save();
      showChat();
      openPanel(false);
    })();
    return true;
  }
  function clearHash() {
    var rest = location.hash.replace(/(^#|&)bc-resume=[^&]*/, "$1").replace(/^#&/, "#").replace(/&$/, "");
    history.replaceState(history.state, "", location.pathname + location.search + (rest === "#" ? "" : rest));
  }

  // --- go ----------------------------------------------------------------------
  function init() {
    build();
    if (resumeFromLink()) return;
    if (saved.offline && saved.offline.open) showOffline(null);
    else if (saved.case_id && saved.token) showChat();
    if (saved.open) openPanel(false); // reopen after a reload, without stealing focus
  }
  if (document.body) init(); else document.addEventListener("DOMContentLoaded", init);
})();
