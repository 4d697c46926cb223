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
  ui.video = h("div", { class: "video", hidden: true });
  // A video appointment: when, what to have at hand, the waiting room.
  ui.appt = h("div", { class: "video appointment", role: "region", label: "apptTitle", hidden: true });
  // "Anna Schmidt schreibt …", said politely by screen readers.
  ui.typing = h("div", { class: "typing", role: "status", "aria-live": "polite" });
  // Focusable, so keyboard users can scroll the history with the arrow keys.
  ui.log = h("div", { class: "log", role: "log", "aria-live": "polite", label: "log", tabindex: "0" });
  ui.scroll = h("div", { class: "scroll" }, ui.log);
  ui.input = h("textarea", { rows: "1", label: "input", maxlength: String(MAX_LEN), "aria-describedby": "bc-hint",
    on: { keydown: onKey, input: function () { grow(); if (ui.input.value) typing(true); } } });
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
    ui.confirm, ui.banner, ui.queue, ui.offer, ui.appt, ui.video, ui.scroll, ui.closed,
    h("form", { class: "composer", on: { submit: function (e) { e.preventDefault(); sendFromInput(); } } },
      [ui.attachBtn, ui.fileInput, ui.input, ui.sendBtn]),
    ui.typing,
    h("div", { class: "hint", id: "bc-hint", t: "hint" }),
    ui.drop
  ]);
  ui.view.replaceChildren(ui.chat);
  awaiting(!!saved.done);
  video = { on: false };
  appt = null;
  if (saved.appointment) loadAppointment(gen);
  showQueue(saved.queue);
  poll(gen);
}

// After an offline message nobody reads along: the chat's one confirmation is
// its timeline line (offline_received); the composer says how the answer
// comes, until staff write or join.
function awaiting(on) {
  var d = saved.done || {};
  var how = d.email ? t("byMail", { e: d.email }) : d.phone ? t("byPhone", { p: d.phone }) : t("byMailOrPhone");
  tx(ui.input, on ? "placeholderLater" : "placeholder", null, "placeholder");
  var hint = ui.chat.querySelector("#bc-hint");
  if (on) tx(hint, "hintLater", { how: how }); else tx(hint, "hint");
  ui.chat.classList.toggle("later", on);
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
  var text = who === "staff" ? linkified(ev.body || "") : ev.body || "";
  return h("div", { class: "msg " + who, "data-cursor": who === "citizen" ? ev.cursor : null },
    [meta, h("div", { class: "text" }, text)]);
}
// Web addresses in staff messages become links: http(s) only (never
// javascript: or data:), opened in a new tab without referrer or opener. The
// text stays text nodes; nothing is parsed as HTML.
var URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"']+/gi;
function linkified(text) {
  var parts = [], last = 0, m;
  URL_IN_TEXT.lastIndex = 0;
  while ((m = URL_IN_TEXT.exec(text))) {
    var url = m[0].replace(/[.,;:!?)\]}]+$/, ""); // "siehe https://x.de/a." ends before the dot
    var href = safeHref(url);
    if (!href) continue;
    parts.push(text.slice(last, m.index));
    parts.push(h("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, url));
    last = m.index + url.length;
    URL_IN_TEXT.lastIndex = last;
  }
  parts.push(text.slice(last));
  return parts;
}
function safeHref(url) {
  try {
    var u = new URL(url);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch (e) {
    return null;
  }
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
    if (ev.sender === "citizen") el.setAttribute("data-cursor", ev.cursor);
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
  if (ev.sender === "staff") stopAwaiting();
  if (!replay && ev.sender === "staff" && ui.panel.hidden) unread++;
}
// Staff typing and how far staff have read (GET …/events "typing", "read").
function showSignals(names, read) {
  if (!names.length) ui.typing.textContent = "";
  else tx(ui.typing, names.length === 1 ? "typingOne" : "typingMany", { n: names.join(", ") });
  var upTo = read ? +read : 0;
  ui.log.querySelectorAll(".msg.citizen[data-cursor]").forEach(function (el) {
    var seen = +el.getAttribute("data-cursor") <= upTo;
    var mark = el.querySelector(".read");
    if (seen && !mark) el.querySelector(".meta").append(h("span", { class: "read", t: "read" }));
  });
}
function stopAwaiting() {
  if (saved.done) { delete saved.done; save(); }
  awaiting(false);
}

// What system events change besides their line in the log.
function systemEvent(ev, replay) {
  var kind = ev.kind;
  if (kind === "closed") setClosed();
  else if (kind === "transferred" && !replay) refreshCase(gen);
  else if (kind === "queue") showQueue({ position: ev.position, estimated_wait_minutes: ev.estimated_wait_minutes });
  else if (kind === "routed" || kind === "staff_joined") { showQueue(null); stopAwaiting(); }
  else if (kind === "queue_closed") {
    showQueue(null);
    if (ev.next_opening !== undefined && saved.queue_next !== ev.next_opening) {
      saved.queue_next = ev.next_opening; save();
    }
    if (ev.offline_offer !== false) showOffer(true);
  }
  else if (kind === "offline_received") { showOffer(false); awaiting(true); }
  else if (kind === "handover_consent") handoverAsk(ev.ask);
  else if (/^handover_|^handed_over$/.test(kind || "")) dropHandoverAsk();
  else if (kind === "video_started") videoStarted(!!ev.audio_only);
  else if (kind === "video_ended") videoEnded();
  if (kind === "waiting" || kind === "called" || kind === "closed") appointmentEvent(ev, replay);
}

// Staff ask to hand the case to a partner authority (bots/handover): the line
// above says to whom and what they would see; the answer is the citizen's.
// Any answer (here, in another tab, or the partner's) removes the buttons.
var handoverBox = null;
function handoverAsk(ask) {
  dropHandoverAsk();
  var buttons = [true, false].map(function (yes) {
    return h("button", {
      type: "button", class: yes ? "primary" : "secondary", t: yes ? "handoverYes" : "handoverNo",
      on: { click: function () { answerHandover(yes, buttons, ask); } }
    });
  });
  handoverBox = h("div", { class: "handover", role: "group", label: "handoverAsk" }, buttons);
  place(handoverBox, stuckToBottom());
}
// The answer names its question: a newer one (another partner) is not
// answered by a click on an older one (409, and the newer one is shown).
function answerHandover(yes, buttons, ask) {
  buttons.forEach(function (b) { b.disabled = true; });
  api("POST", "/cases/" + saved.case_id + "/handover", { consent: yes, ask: ask }).then(dropHandoverAsk, function (e) {
    if (e.status === 409) return dropHandoverAsk(); // answered before
    buttons.forEach(function (b) { b.disabled = false; });
  });
}
function dropHandoverAsk() {
  if (handoverBox) handoverBox.remove();
  handoverBox = null;
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
  if (!ui.banner) return;
  if (!ok && ui.banner._t && ui.banner._t.text[0] !== "reconnecting") tx(ui.banner, "reconnecting");
  if (ui.banner.hidden !== ok) reflow(function () { ui.banner.hidden = ok; });
}
// Over the message limit: the message waits on this device and goes out then.
function setBusy(seconds) {
  if (!ui.banner) return;
  tx(ui.banner, "slowDown", { s: seconds });
  if (ui.banner.hidden) reflow(function () { ui.banner.hidden = false; });
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
