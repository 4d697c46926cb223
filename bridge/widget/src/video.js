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
