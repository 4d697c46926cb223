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
  else if (state === "infected") tx(rec.status, "upRefused", { e: reason ? ours(reason, "BC_INFECTED") : t("upInfected") });
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
  function again(wait) {
    if (g !== gen) return;
    setFileState(rec, "retrying");
    pause(Math.max(delay, wait || 0)).then(function () {
      if (g !== gen) return;
      rec.percent = 0;
      setFileState(rec, "uploading");
      sendFile(rec, g, Math.min(delay * 2, 30000));
    });
  }
  xhr.onerror = xhr.ontimeout = function () { again(0); };
  xhr.onload = function () {
    if (g !== gen) return;
    var data = {};
    try { data = JSON.parse(xhr.responseText) || {}; } catch (e) { /* not JSON: a proxy's page */ }
    var code = xhr.status;
    // Over the upload limit (429): the file waits on this device until then.
    if (code === 429) return again(busySeconds({ status: 429, retry_after_seconds: data.retry_after_seconds }) * 1000);
    if (code === 0 || code >= 500) return again(0);
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
    else if (code === 413) setFileState(rec, "refused", ours(data.error, data.errcode));
    else if (data.errcode === "BC_CASE_CLOSED") { setFileState(rec, "refused", t("errClosed")); setClosed(); }
    else setFileState(rec, "refused", ours(data.error, data.errcode) || t("errOther"));
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
