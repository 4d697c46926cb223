// --- the frame: host, shadow root, button, panel ---------------------------
var ui = {};
function build() {
  var host = document.createElement("buergerchat-widget");
  var shadow = host.attachShadow({ mode: "open" });
  var css = h("link", { rel: "stylesheet", href: STATIC + "widget.css" });
  // Hidden until the styles are there, so no unstyled flash on the town's page.
  ui.root = h("div", { class: "bc", lang: lang, dir: langInfo().dir });
  // Through the CSSOM, not a style attribute: a strict CSP on the page allows it.
  ui.root.style.visibility = "hidden";
  css.addEventListener("load", function () { ui.root.style.visibility = ""; });
  css.addEventListener("error", function () { ui.root.style.visibility = ""; });
  ui.badge = h("span", { class: "badge", "aria-hidden": "true", hidden: true });
  ui.launcher = h("button", {
    class: "launcher", type: "button", "aria-expanded": "false", "aria-controls": "bc-panel",
    label: "open", on: { click: function () { ui.panel.hidden ? openPanel(true) : closePanel(); } }
  }, [svg(ICON_CHAT), ui.badge]);
  ui.town = h("div", { class: "town" });
  // Each language named in itself, so a citizen finds theirs whatever is shown.
  ui.lang = h("select", { id: "bc-lang", label: "language", on: { change: function () {
    setLang(ui.lang.value);
  } } }, LANGS.map(function (l) {
    return h("option", { value: l.code, lang: l.code, dir: l.dir, selected: l.code === lang }, l.name);
  }));
  ui.panel = h("div", {
    class: "panel", id: "bc-panel", role: "dialog", "aria-modal": "true", "aria-labelledby": "bc-title",
    hidden: true, on: { keydown: panelKey }
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
function setLang(code) {
  if (!TEXT[code]) return;
  lang = code;
  saved.lang = lang; save();
  relabel();
  if (status && ui.depts) renderDepts();
}
// The panel is a dialog: Escape closes it (focus back on the button), and Tab
// stays inside it, wrapping from the last control to the first and back.
function panelKey(e) {
  if (e.key === "Escape") { e.preventDefault(); closePanel(); return; }
  if (e.key !== "Tab") return;
  var items = focusables();
  if (!items.length) return;
  var first = items[0], last = items[items.length - 1];
  var at = ui.root.getRootNode().activeElement;
  if (e.shiftKey && (at === first || !ui.panel.contains(at))) { e.preventDefault(); last.focus(); }
  else if (!e.shiftKey && (at === last || !ui.panel.contains(at))) { e.preventDefault(); first.focus(); }
}
function focusables() {
  var sel = "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), " +
    "textarea:not([disabled]), iframe, [tabindex]:not([tabindex='-1'])";
  return [].filter.call(ui.panel.querySelectorAll(sel), function (el) {
    return !el.closest("[hidden]") && el.getClientRects().length > 0;
  });
}
