// --- in step with the bridge: the event stream in, the outbox out ------------
// The event stream. It starts at cursor 0 without waiting, page by page, to
// rebuild the whole view after a reload; then it long-polls. Network trouble:
// back off and show a banner.
async function poll(g) {
  var cursor = "0", delay = 1000, replaying = true, signals = -1;
  refreshCase(g);
  while (g === gen) {
    try {
      var r = await api("GET", "/cases/" + saved.case_id + "/events?after=" + cursor +
        "&timeout=" + (replaying ? 0 : LONG_POLL) + (signals >= 0 ? "&signals=" + signals : ""), null,
        (LONG_POLL + 15) * 1000);
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
    if (r.signals !== undefined) { signals = r.signals; showSignals(r.typing || [], r.read); }
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
  typing(false);
}

// The citizen's typing, shown to staff as the ghost's: said when typing starts
// and again every few seconds while it goes on (the bridge lets it fade after
// 6 s); "stopped" when the message is sent. Failures do not matter.
var typingSent = 0;
function typing(on) {
  var now = Date.now();
  if (on && now - typingSent < 4000) return;
  if (!on && !typingSent) return;
  typingSent = on ? now : 0;
  api("POST", "/cases/" + saved.case_id + "/typing", { typing: on }).catch(function () {});
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
          if (busySeconds(e)) setBusy(busySeconds(e));
          else setOnline(false);
          await pause(retryDelay(e, delay));
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
