// --- in step with the bridge: the event stream in, the outbox out ------------
// The event stream. It starts at cursor 0 without waiting, page by page, to
// rebuild the whole view after a reload; then it follows the case over
// Server-Sent Events (one held response, read with fetch so the token stays in
// a header), or long-polls where a stream does not come through. Network
// trouble: back off and show a banner.
var canStream = typeof ReadableStream !== "undefined" && typeof TextDecoder !== "undefined";
var useStream = canStream;
var streamFailures = 0; // in a row, without a byte: after 3 the page long-polls
var streamAgainAt = 0; // … and tries a stream again after five minutes
function fallBack() {
  useStream = false;
  streamFailures = 0;
  streamAgainAt = Date.now() + 5 * 60 * 1000;
}
async function poll(g) {
  var st = { cursor: "0", signals: -1 }, delay = 1000, replaying = true;
  refreshCase(g);
  while (g === gen) {
    if (!replaying && useStream) {
      try {
        var how = await stream(g, st);
      } catch (e) {
        if (g !== gen) return;
        if (e.status === 401) return expire(); // the token ended (or "gone")
        // Anything else the stream refuses (a filter's 403, a 404 on the way):
        // the long-poll asks the same and tells a gone case from a blocked path.
        if (e.status && !retryable(e)) { fallBack(); continue; }
        // Blocked on the way (a filter that lets only plain requests through)
        // looks like trouble at first; three times in a row, it is not.
        if (!e.status && ++streamFailures >= 3) { fallBack(); continue; }
        if (busySeconds(e)) setBusy(busySeconds(e)); else setOnline(false);
        await pause(retryDelay(e, delay));
        delay = Math.min(delay * 2, 30000);
        continue;
      }
      if (how === "buffered") fallBack(); // a proxy holds it back: long-poll
      else { delay = 1000; streamFailures = 0; } // ended after 4-5 minutes: again at once
      continue;
    }
    if (!useStream && canStream && Date.now() > streamAgainAt) useStream = true;
    try {
      var r = await api("GET", "/cases/" + saved.case_id + "/events?after=" + st.cursor +
        "&timeout=" + (replaying ? 0 : LONG_POLL) + (st.signals >= 0 ? "&signals=" + st.signals : ""), null,
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
    take(r, st, replaying);
    if (replaying && !r.events.length) { // all there: resend what a reload interrupted
      replaying = false;
      (saved.outbox || []).forEach(function (item) {
        if (!shown["m" + item.client_id]) showPending(item);
      });
      flush(g);
    }
  }
}

// One answer of /events, or one message of /stream (the same JSON).
function take(r, st, replaying) {
  r.events.forEach(function (ev) { addEvent(ev, replaying); });
  st.cursor = r.next || st.cursor;
  if (r.signals !== undefined) { st.signals = r.signals; showSignals(r.typing || [], r.read); }
  saved.cursor = st.cursor;
  if (!ui.panel.hidden) markSeen(); else showUnread(replaying);
  save();
}

// One stream (GET …/stream, text/event-stream) until it ends. Returns
// "ended", or "buffered" when the response came but no byte of it within 8 s
// (the bridge writes at once: something between holds it back). HTTP errors
// and network trouble are thrown, as api() does.
async function stream(g, st) {
  var ctrl = new AbortController(), abort = function () { ctrl.abort(); };
  var stop = stopAll.signal, got = false, opened = false, quiet = 0;
  var arm = function () { // heartbeats every 15 s: 45 s of silence is a dead line
    clearTimeout(quiet);
    quiet = setTimeout(abort, (got ? 45 : opened ? 8 : 15) * 1000);
  };
  stop.addEventListener("abort", abort);
  arm();
  try {
    var res = await fetch(API + "/cases/" + saved.case_id + "/stream", {
      headers: { Accept: "text/event-stream", Authorization: "Bearer " + saved.token,
        "Last-Event-ID": st.cursor },
      signal: ctrl.signal, credentials: "omit", cache: "no-store"
    });
    if (!res.ok) {
      var data = await res.json().catch(function () { return {}; });
      throw Object.assign(new Error(data.error || res.statusText), data, { status: res.status });
    }
    if (!/event-stream/.test(res.headers.get("Content-Type") || "")) return "buffered";
    opened = true;
    arm();
    var reader = res.body.getReader(), text = new TextDecoder(), buf = "";
    for (;;) {
      var part = await reader.read();
      if (part.done || g !== gen) return got ? "ended" : "buffered";
      if (!got) { setOnline(true); streamFailures = 0; }
      got = true;
      arm();
      buf += text.decode(part.value, { stream: true });
      var end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        var msg = sseMessage(buf.slice(0, end));
        buf = buf.slice(end + 2);
        if (!msg) continue; // a comment: the padding, a heartbeat
        if (msg.event === "gone") throw Object.assign(new Error("gone"), msg.data, { status: 401 });
        if (msg.event === "events") take(msg.data, st, false);
      }
    }
  } catch (e) {
    if (e.status) throw e;
    if (opened && !got) return "buffered";
    throw Object.assign(new Error("network"), { network: true });
  } finally {
    clearTimeout(quiet);
    stop.removeEventListener("abort", abort);
  }
}
function sseMessage(block) {
  var event = "message", data = "";
  block.split("\n").forEach(function (line) {
    if (line.indexOf("event: ") === 0) event = line.slice(7);
    else if (line.indexOf("data: ") === 0) data += line.slice(6);
  });
  return data ? { event: event, data: JSON.parse(data) } : null;
}

// Reference and department for the bar above the log (a transfer changes it).
function refreshCase(g) {
  api("GET", "/cases/" + saved.case_id).then(function (c) {
    if (g !== gen) return;
    tx(ui.ref, "ref", { r: c.reference + (c.department && c.department.name ? " · " + c.department.name : "") });
    if (c.department && c.department.id) { saved.department = c.department.id; save(); }
    if (c.state) showQueue(c.queue || null); // (its line, or a partner's)
    if (c.state === "offline") showOffer(false);
    if (c.closed) setClosed();
    if (!appt && /^(booked|waiting|in_call)$/.test(c.state)) { saved.appointment = true; save(); loadAppointment(g); }
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
