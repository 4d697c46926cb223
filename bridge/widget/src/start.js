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
  ui.error = h("p", { class: "error", id: "bc-start-error", role: "alert" });
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
    ui.leaveBtn = h("button", { type: "button", class: "secondary", hidden: true, t: "leave",
      on: { click: leaveInstead } });
    var form = h("form", { class: "view", novalidate: true, on: { submit: startCase } }, [
      h("div", { class: "scroll" }, [
        notice ? h("p", { class: "notice", role: "status", t: notice }) : null,
        h("p", { class: "intro", t: "intro" }),
        ui.depts, ui.topic,
        h("div", { class: "field" }, [h("label", { for: "bc-name", t: "name" }), ui.name]),
        h("div", { class: "privacy" }, [
          h("p", null, [h("span", { t: "privacy" }), " ", privacyLink, "."]),
          h("label", { class: "consent", for: "bc-consent" }, [ui.consent, h("span", { t: "consent" })])
        ]),
        helpLinks(s),
        ui.bookEntry = h("div", null)
      ]),
      // The error sits next to the button so it is seen without scrolling.
      h("div", { class: "actions" }, [ui.error, ui.startBtn, ui.leaveBtn])
    ]);
    renderDepts();
    ui.view.replaceChildren(form);
    bookingEntry(ui.bookEntry);
    if (focusWhenReady && !ui.panel.hidden) focusWhenReady = !focusFirst();
  });
}

// What a chat started now would meet (GET /status "availability"): someone
// free, a queue, office hours with nobody online, or closed.
function availability(d) {
  return d.availability || { state: d.live ? "available" : "closed" };
}
function deptState(d) {
  var a = availability(d);
  if (a.state === "available") return d.until ? t("until", { t: hours(d.until, false) }) : t("live");
  if (a.state === "busy") return t("queueNow", { m: a.wait_minutes || 1 });
  if (a.state === "nobody_online") return t("nobody");
  return d.next_opening ? t("next", { t: hours(d.next_opening, true) }) : t("offline");
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
        servedBy(d) ? h("span", { class: "note", t: ["servedBy", { d: d.name, b: servedBy(d) }] }) : null,
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
  var by = dept && dept.live ? servedBy(dept) : null;
  if (by) tx(ui.startBtn, "startWith", { b: by });
  else tx(ui.startBtn, dept && !dept.live ? "leave" : "start");
  // Another department would answer: the citizen may write to this one instead.
  ui.leaveBtn.hidden = !by;
  if (by) tx(ui.leaveBtn, "leaveFor", { d: dept.name });
}
function servedBy(d) {
  var by = availability(d).served_by;
  return by ? by.name || by.id : null;
}
function leaveInstead() {
  var dept = ui.depts.querySelector("input:checked");
  if (!dept) return;
  offlineFor(choiceOf(dept), department(dept.value));
}
// What the start form holds for the checked department.
function choiceOf(dept) {
  return { department: dept.value, topic: ui.topicSelect.value || "", name: ui.name.value.trim(),
    consent: ui.consent.checked };
}
// The offline form for a department that cannot chat now, with why: closed
// (and when it opens) or open with nobody online.
function offlineFor(choice, info) {
  var why = info ? availability(info).state : undefined;
  return showOffline(choice, why === "closed" ? info.next_opening : null, why);
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
  var choice = choiceOf(dept);
  var info = department(dept.value);
  // Not reachable now: a message (the form asks for consent); nobody online
  // within office hours is said so, not "next opening" (it is open now).
  if (info && !info.live) return offlineFor(choice, info);
  if (!ui.consent.checked) {
    ui.consent.setAttribute("aria-invalid", "true");
    return fail("needConsent", ui.consent);
  }
  ui.error.textContent = "";
  ui.startBtn.disabled = true;
  try {
    var c = await proven("POST", "/cases", {
      department: dept.value, consent: true, name: choice.name || undefined,
      topic: choice.topic || undefined, language: lang
    });
  } catch (err) {
    ui.startBtn.disabled = false;
    // Nobody there after all (closed meanwhile, nobody online): leave a message.
    if (err.errcode === "BC_OFFLINE") return showOffline(choice, err.next_opening, err.reason);
    // Too many chats from here just now: say so kindly; the choices stay filled in.
    if (busySeconds(err)) return tx(ui.error, "busy", { s: busySeconds(err) });
    return fail(err.errcode === "BC_CONSENT_REQUIRED" ? "needConsent" : "down", null);
  }
  saved = { case_id: c.case_id, token: c.token, reference: c.reference, cursor: "0", seen: "0",
    lang: lang, open: true, outbox: [], department: dept.value, name: choice.name,
    queue: c.state === "queued" ? c.queue || null : null };
  save();
  showChat();
  ui.input.focus();
}
// The error is said next to the button and tied to the field it is about.
function fail(key, focusEl) {
  tx(ui.error, key);
  if (!focusEl) return;
  var field = focusEl.type === "radio" ? ui.depts : focusEl;
  field.setAttribute("aria-describedby", ui.error.id);
  if (field === focusEl) focusEl.setAttribute("aria-invalid", "true");
  focusEl.focus();
}
// Accessibility statement, Leichte Sprache and sign language, where the town has them.
function helpLinks(s) {
  var links = [["accessibility_url", "a11yLink"], ["easy_language_url", "easyLink"],
    ["sign_language_url", "signLink"]].filter(function (l) { return s[l[0]]; });
  if (!links.length) return null;
  return h("ul", { class: "links" }, links.map(function (l) {
    return h("li", null, h("a", { href: s[l[0]], target: "_blank", rel: "noopener noreferrer", t: l[1] }));
  }));
}
