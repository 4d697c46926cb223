// --- offline form: leave a message ------------------------------------------
// The draft lives in saved.offline, so a reload or a lost connection loses
// nothing; its client_id makes a resend return the same case, never a second.
var offlineFiles = []; // File objects cannot be stored: this page only

function showOffline(choice, nextOpening, reason) {
  var convert = !!(choice && choice.convert);
  var d = saved.offline;
  if (!d || (choice && (!!d.convert !== convert || d.department !== choice.department))) {
    d = { client_id: newId(), department: choice.department, topic: choice.topic || "",
      name: choice.name || "", description: choice.description || "", email: "", phone: "",
      consent: !!choice.consent, convert: convert || undefined };
  }
  if (nextOpening !== undefined) d.next_opening = nextOpening;
  if (reason !== undefined) d.reason = reason;
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
  // Closed: when it opens next. Open but nobody online: say that instead of
  // a "next opening" that is later than now (it is open now).
  var state = dept ? availability(dept).state : null;
  var next = d.next_opening || (state === "closed" ? dept.next_opening : null);
  var nobody = !next && (d.reason === "nobody_online" || state === "nobody_online");
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
  f.files = h("input", { type: "file", multiple: true, class: "sr", tabindex: "-1", "aria-hidden": "true",
    label: "offFiles", on: { change: function () {
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
      next ? h("p", { class: "state", t: ["next", { t: hours(next, true) }] })
        : nobody ? h("p", { class: "state", t: "nobody" }) : null,
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
        result = await proven("POST", "/offline-messages", body, 60000, token);
        break;
      } catch (err) {
        if (retryable(err)) { // nothing is lost: the draft is stored, try again
          if (busySeconds(err)) tx(f.error, "busy", { s: busySeconds(err) });
          else tx(f.error, "offNet");
          await pause(retryDelay(err, delay));
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
