// --- video appointments: book, walk in, the appointment box, the waiting room ---
// GET /services lists what can be booked; the start view offers "book a video
// appointment" when there is anything. Booking: department, services (their
// durations add up), a free time, name, e-mail, phone (optional), consent.
// The booked case is a chat like any other, with the appointment box on top:
// when, what to have at hand, the waiting room (from shortly before; the
// place in it and the expected start), cancel.
var services = null;
async function loadServices() {
  if (services) return services;
  try { services = (await api("GET", "/services")).services || []; } catch (e) { services = []; }
  return services;
}
function bookable() {
  var ids = {};
  (services || []).forEach(function (s) { ids[s.department] = true; });
  return ((status && status.departments) || []).filter(function (d) { return ids[d.id]; });
}
// The start view's entry point, once the services are known.
function bookingEntry(into) {
  loadServices().then(function () {
    if (!bookable().length || !into.isConnected) return;
    into.replaceChildren(h("div", { class: "booking-entry" }, [
      h("p", { t: "bookIntro" }),
      h("button", { type: "button", class: "secondary", t: "bookVideo", on: { click: function () { showBooking(); } } })
    ]));
  });
}

var booking = null; // { dept, picked: {id: true}, from: Date string, slot }
function showBooking(keep) {
  ++viewSeq;
  var depts = bookable();
  booking = keep || { dept: depts.length === 1 ? depts[0].id : null, picked: {}, from: null, slot: null };
  ui.chat = ui.depts = ui.offline = null;
  ui.bookError = h("p", { class: "error", id: "bc-book-error", role: "alert" });
  ui.bookDepts = h("fieldset", null, [h("legend", { t: "bookDept" })].concat(depts.map(function (d) {
    return h("label", { class: "dept" }, [
      h("input", { type: "radio", name: "bc-book-dept", value: d.id, checked: booking.dept === d.id,
        on: { change: function () { booking.dept = d.id; booking.picked = {}; booking.slot = null; renderServices(); } } }),
      h("span", { class: "name" }, d.name)
    ]);
  })));
  ui.bookServices = h("fieldset", { hidden: true });
  ui.bookSlots = h("div", { class: "slots", role: "region", "aria-live": "polite", label: "bookSlots" });
  ui.bookForm = h("div", { hidden: true });
  ui.view.replaceChildren(h("div", { class: "view booking" }, [
    h("div", { class: "scroll" }, [
      h("h2", { class: "title", t: "bookVideo" }),
      ui.bookDepts, ui.bookServices, ui.bookSlots, ui.bookForm
    ]),
    h("div", { class: "actions" }, [ui.bookError,
      h("button", { type: "button", class: "secondary", t: "bookBack", on: { click: function () { showStart(); } } })])
  ]));
  renderServices();
  var first = ui.bookDepts.querySelector("input");
  if (first) first.focus();
}

function renderServices() {
  var offered = (services || []).filter(function (s) { return s.department === booking.dept; });
  ui.bookServices.hidden = !offered.length;
  ui.bookServices.replaceChildren(h("legend", { t: "bookServices" }));
  offered.forEach(function (s) {
    ui.bookServices.append(h("label", { class: "service" }, [
      h("input", { type: "checkbox", value: s.id, checked: !!booking.picked[s.id], on: { change: function (e) {
        if (e.target.checked) booking.picked[s.id] = true; else delete booking.picked[s.id];
        booking.slot = null; booking.from = null; renderSlots();
      } } }),
      h("span", null, [
        h("span", { class: "name" }, s.name), " ",
        h("span", { class: "note", t: ["bookMinutes", { m: s.duration_minutes }] }),
        s.prepare ? h("span", { class: "note", t: ["bookPrepare", { p: s.prepare }] }) : null
      ])
    ]));
  });
  renderSlots();
}
function pickedIds() { return Object.keys(booking.picked); }

async function renderSlots() {
  var seq = viewSeq, ids = pickedIds();
  ui.bookForm.hidden = true;
  if (!ids.length) { ui.bookSlots.replaceChildren(); return; }
  ui.bookSlots.replaceChildren(h("p", { t: "loading" }));
  var query = "department=" + encodeURIComponent(booking.dept) + "&services=" + encodeURIComponent(ids.join(","));
  try {
    var found = await api("GET", "/appointments/slots?" + query + "&days=7" + (booking.from ? "&from=" + booking.from : ""));
    var walk = booking.from ? null : await api("GET", "/walk-ins?" + query).catch(function () { return null; });
  } catch (e) {
    if (seq === viewSeq) ui.bookSlots.replaceChildren(h("p", { class: "error", t: "down" }));
    return;
  }
  if (seq !== viewSeq) return;
  var list = h("ul", { class: "slot-list" }), lastDay = "";
  found.slots.forEach(function (s) {
    var day = dayLabel(s.start);
    if (day !== lastDay) { list.append(h("li", { class: "day" }, day)); lastDay = day; }
    list.append(h("li", null, h("button", { type: "button", class: "slot", "data-start": s.start,
      "aria-pressed": String(booking.slot === s.start), label: ["bookSlotLabel", { d: day, t: hours(s.start, false) }],
      on: { click: function () { chooseSlot(s.start, false); } } }, hours(s.start, false))));
  });
  var next = new Date((booking.from ? new Date(booking.from) : new Date()).getTime() + 7 * 86400000);
  ui.bookSlots.replaceChildren(
    walk && walk.available ? h("div", { class: "walk-in" }, [
      h("button", { type: "button", class: "primary", t: ["walkInNow", { m: walk.wait_minutes }],
        on: { click: function () { chooseSlot(null, true); } } })
    ]) : null,
    h("p", { class: "small", t: found.slots.length ? "bookPickTime" : "bookNoSlots" }),
    list,
    h("button", { type: "button", class: "link", t: "bookLater", on: { click: function () {
      booking.from = next.toISOString().slice(0, 10); renderSlots();
    } } })
  );
}

function chooseSlot(start, walkIn) {
  booking.slot = start; booking.walkIn = walkIn;
  booking.clientId = null; // another choice is another request
  ui.bookSlots.querySelectorAll(".slot").forEach(function (b) {
    b.setAttribute("aria-pressed", String(b.getAttribute("data-start") === start));
  });
  ui.bookName = h("input", { type: "text", id: "bc-book-name", maxlength: "200", autocomplete: "name", required: true,
    value: saved.name || "" });
  ui.bookEmail = h("input", { type: "email", id: "bc-book-email", maxlength: "254", autocomplete: "email", required: !walkIn });
  ui.bookPhone = h("input", { type: "tel", id: "bc-book-phone", maxlength: "40", autocomplete: "tel" });
  ui.bookConsent = h("input", { type: "checkbox", id: "bc-book-consent" });
  var privacyLink = status && status.privacy_url
    ? h("a", { href: status.privacy_url, target: "_blank", rel: "noopener noreferrer", t: "privacyLink" })
    : h("span", { t: "privacyLink" });
  ui.bookSubmit = h("button", { type: "submit", class: "primary", t: walkIn ? "walkInSubmit" : "bookSubmit" });
  ui.bookForm.replaceChildren(h("form", { novalidate: true, on: { submit: submitBooking } }, [
    h("p", { class: "chosen", role: "status",
      t: walkIn ? "walkInChosen" : ["bookChosen", { d: dayLabel(start) + ", " + hours(start, false) }] }),
    h("div", { class: "field" }, [h("label", { for: "bc-book-name", t: "bookName" }), ui.bookName]),
    h("div", { class: "field" }, [h("label", { for: "bc-book-email", t: walkIn ? "bookEmailOptional" : "bookEmail" }), ui.bookEmail]),
    h("div", { class: "field" }, [h("label", { for: "bc-book-phone", t: "bookPhone" }), ui.bookPhone]),
    h("div", { class: "privacy" }, [
      h("p", null, [h("span", { t: "privacy" }), " ", privacyLink, "."]),
      h("label", { class: "consent", for: "bc-book-consent" }, [ui.bookConsent, h("span", { t: "consent" })])
    ]),
    ui.bookSubmit
  ]));
  ui.bookForm.hidden = false;
  ui.bookName.focus();
}

async function submitBooking(e) {
  e.preventDefault();
  ui.bookError.textContent = "";
  if (!ui.bookName.value.trim()) return bookFail("bookNeedName", ui.bookName);
  if (!booking.walkIn && !ui.bookEmail.value.trim()) return bookFail("bookNeedEmail", ui.bookEmail);
  if (!ui.bookConsent.checked) return bookFail("needConsent", ui.bookConsent);
  booking.clientId = booking.clientId || newId(); // a retry after a lost answer books once
  var body = { department: booking.dept, services: pickedIds(), name: ui.bookName.value.trim(),
    email: ui.bookEmail.value.trim() || undefined, phone: ui.bookPhone.value.trim() || undefined,
    consent: true, language: lang, client_id: booking.clientId };
  if (!booking.walkIn) body.start = booking.slot;
  ui.bookSubmit.disabled = true;
  try {
    var c = await proven("POST", booking.walkIn ? "/walk-ins" : "/appointments", body);
  } catch (err) {
    ui.bookSubmit.disabled = false;
    if (err.errcode === "BC_CLIENT_ID_REUSED" || err.errcode === "BC_NOT_BOOKED") {
      booking.clientId = null; // the details changed since the first try: a new request
      return tx(ui.bookError, "bookFailed");
    }
    if (err.errcode === "BC_SLOT_TAKEN" || err.errcode === "BC_NO_WALK_IN") {
      booking.clientId = null; booking.slot = null;
      tx(ui.bookError, err.errcode === "BC_SLOT_TAKEN" ? "bookTaken" : "walkInGone");
      return renderSlots();
    }
    if (busySeconds(err)) return tx(ui.bookError, "busy", { s: busySeconds(err) });
    if (err.errcode === "BC_INVALID_FIELD") {
      ui.bookError.textContent = ours(err.error, err.errcode);
      var field = { name: ui.bookName, email: ui.bookEmail, phone: ui.bookPhone }[err.field];
      if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
      return;
    }
    return bookFail(retryable(err) ? "down" : "bookFailed", null);
  }
  saved = { case_id: c.case_id, token: c.token, reference: c.reference, cursor: "0", seen: "0",
    lang: lang, open: true, outbox: [], department: booking.dept, name: body.name, appointment: true };
  save();
  var old = booking.replaces;
  booking = null;
  if (old) {
    await api("DELETE", "/appointments/" + encodeURIComponent(old.id), null, 15000, old.token)
      .catch(function () { /* already cancelled or missed: nothing to free */ });
  }
  showChat();
}
function bookFail(key, el) {
  tx(ui.bookError, key);
  if (el) { el.setAttribute("aria-invalid", "true"); el.setAttribute("aria-describedby", "bc-book-error"); el.focus(); }
}

// --- the appointment box in the chat --------------------------------------------
var appt = null;
function loadAppointment(g) {
  api("GET", "/cases/" + saved.case_id + "/appointment").then(function (a) {
    if (g !== gen) return;
    appt = a;
    renderAppointment();
  }, function (e) {
    if (e.status === 404 && saved.appointment) { saved.appointment = false; save(); }
  });
}
function renderAppointment() {
  if (!ui.appt || !appt) return;
  var state = appt.state, parts = [
    h("p", { class: "video-title", t: "apptTitle" }),
    h("p", { t: ["apptWhen", { d: dayLabel(appt.start), from: hours(appt.start, false), to: hours(appt.end, false) }] }),
    h("p", { class: "small" }, appt.services.map(function (s) { return s.name; }).join(", "))
  ];
  appt.services.forEach(function (s) {
    if (s.prepare) parts.push(h("p", { class: "small", t: ["bookPrepare", { p: s.prepare }] }));
  });
  if (state === "booked") {
    var opens = new Date(appt.waiting_room_opens_at);
    var open = Date.now() >= opens.getTime() - 30000;
    parts.push(open
      ? h("button", { type: "button", class: "primary", t: "apptEnter", on: { click: enterWaitingRoom } })
      : h("p", { t: ["apptOpensAt", { d: dayLabel(appt.waiting_room_opens_at), t: hours(appt.waiting_room_opens_at, false) }] }));
    if (!open) scheduleOpen(opens);
    parts.push(h("button", { type: "button", class: "link", t: "apptRebook", on: { click: rebook } }));
    parts.push(h("button", { type: "button", class: "link", t: "apptCancel", on: { click: askCancel } }));
  } else if (state === "pending_confirmation") {
    parts.push(h("p", { role: "status", t: "apptPending" }));
    parts.push(h("button", { type: "button", class: "link", t: "apptCancel", on: { click: askCancel } }));
  } else if (state === "waiting") {
    ui.apptPlace = h("p", { role: "status", "aria-live": "polite" });
    ui.apptDevices = h("p", { class: "small", role: "status" });
    parts.push(ui.apptPlace, ui.apptDevices);
    showPlace(appt.waiting);
    checkWaitingDevices();
    parts.push(h("button", { type: "button", class: "link", t: "apptCancel", on: { click: askCancel } }));
  } else {
    ui.appt.hidden = true;
    return;
  }
  reflow(function () { ui.appt.replaceChildren.apply(ui.appt, parts); ui.appt.hidden = false; });
}
var openTimer = null;
function scheduleOpen(at) {
  clearTimeout(openTimer);
  var g = gen;
  openTimer = setTimeout(function () { if (g === gen) renderAppointment(); },
    Math.min(Math.max(at.getTime() - Date.now(), 1000), 2147483647));
}
async function enterWaitingRoom(e) {
  var button = e.target, g = gen;
  button.disabled = true;
  try {
    var place = await api("POST", "/cases/" + saved.case_id + "/waiting-room");
  } catch (err) {
    button.disabled = false;
    if (err.errcode === "BC_TOO_EARLY") { appt.waiting_room_opens_at = err.opens_at; return renderAppointment(); }
    return tx(ui.appt.querySelector("p") || button, retryable(err) ? "down" : "apptGone");
  }
  if (g !== gen) return;
  appt.state = "waiting"; appt.waiting = place;
  renderAppointment();
}
function showPlace(place) {
  if (!ui.apptPlace || !place) return;
  tx(ui.apptPlace, place.position > 1 ? "waitingPlace" : "waitingNext",
    { n: place.position, t: hours(place.expected_start, false) });
}
// The device check of the video call, while waiting: a problem is found now,
// not when staff are waiting in the call.
async function checkWaitingDevices() {
  tx(ui.apptDevices, "videoChecking");
  var found = await checkDevices(false);
  if (!ui.apptDevices) return;
  var key = { ok: "waitingDevicesOk", nocamera: "waitingNoCamera", unsupported: "videoUnsupported",
    nodevice: "videoNoDevice", busy: "videoBusy" }[found] || "videoDenied";
  ui.apptDevices.replaceChildren(h("span", { t: key }));
  if (found !== "ok" && appt && appt.helpline) {
    ui.apptDevices.append(" ", h("span", { t: "helpline" }), " ",
      h("a", { href: "tel:" + appt.helpline.replace(/[^+0-9]/g, "") }, appt.helpline));
  }
}
function askCancel(e) {
  var button = e.target;
  var yes = h("button", { type: "button", class: "primary", t: "apptCancelYes", on: { click: cancelAppointment } });
  var no = h("button", { type: "button", class: "secondary", t: "endNo", on: { click: renderAppointment } });
  button.replaceWith(h("div", { class: "confirm" }, [h("p", { t: "apptCancelAsk" }), yes, no]));
  yes.focus();
}
async function cancelAppointment(e) {
  e.target.disabled = true;
  try {
    await api("DELETE", "/appointments/" + encodeURIComponent(appt.appointment_id), null, 15000, saved.token);
  } catch (err) {
    e.target.disabled = false;
    return tx(e.target.parentNode.querySelector("p"), retryable(err) ? "down" : "apptGone");
  }
  appt.state = "cancelled";
  renderAppointment();
}
// Another time for the same services: the new one is booked first, then this
// one cancelled, so the citizen never stands without an appointment.
function rebook() {
  var picked = {};
  appt.services.forEach(function (s) { picked[s.id] = true; });
  showBooking({ dept: appt.department.id, picked: picked, from: null, slot: null,
    replaces: { id: appt.appointment_id, token: saved.token } });
}
// What the case's stream says about the appointment.
function appointmentEvent(ev, replay) {
  if (!appt) return;
  if (ev.kind === "waiting") { appt.waiting = ev; showPlace(ev); }
  else if (ev.kind === "called" || ev.kind === "closed") {
    appt.state = ev.kind === "called" ? "in_call" : "closed";
    renderAppointment();
    if (ev.kind === "called" && !replay && video.on && !video.api && video.button) joinCall();
  }
}

// "Dienstag, 24.11." in the town's time zone and the citizen's language.
function dayLabel(iso) {
  var opts = { weekday: "long", day: "numeric", month: "numeric" };
  if (status && status.timezone) opts.timeZone = status.timezone;
  try { return new Date(iso).toLocaleDateString(langInfo().tag, opts); } catch (e) { return iso.slice(0, 10); }
}
