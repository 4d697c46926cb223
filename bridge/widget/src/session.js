// --- the case on this device: start over, resume link, start-up ---------------
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
  var confirm = /(?:^#|&)bc-confirm=([^&]+)/.exec(location.hash || "");
  (async function attempt() {
    try {
      // The link of a video appointment's first mail confirms it (double
      // opt-in); the chat then shows the result (its box, or "not booked").
      if (confirm) {
        await api("POST", "/appointments/" + confirm[1] + "/confirm", null, 15000, token)
          .catch(function (e) { if (retryable(e)) throw e; });
      }
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
      lang: lang, open: true, outbox: [], appointment: !!confirm };
    save();
    showChat();
    openPanel(false);
  })();
  return true;
}
function clearHash() {
  var rest = location.hash.replace(/(^#|&)bc-(resume|confirm)=[^&]*/g, "$1").replace(/&&+/g, "&")
    .replace(/^#&/, "#").replace(/&$/, "");
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
