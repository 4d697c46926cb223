// The demo page's "Sprechzeiten" box, from GET /api/v1/status: the same hours
// the widget and routing use, so the page never contradicts the configuration
// (departments.yaml, reloaded while running). Text only, never HTML.
(function () {
  "use strict";
  var DAYS = { mo: "Mo", di: "Di", mi: "Mi", do: "Do", fr: "Fr", sa: "Sa", so: "So" };
  var list = document.getElementById("bc-hours");
  var base = document.currentScript.src.replace(/\/widget\/demo-hours\.js.*$/, "");
  function item(children) {
    var li = document.createElement("li");
    children.forEach(function (c) { li.append(c); });
    return li;
  }
  function render(status) {
    var items = (status.departments || []).map(function (d) {
      var name = document.createElement("strong");
      name.textContent = d.name;
      var days = Object.keys(d.hours || {}).map(function (day) {
        return (DAYS[day] || day) + " " + d.hours[day].map(function (p) {
          return p.replace("-", "–");
        }).join(", ");
      });
      return item([name, ": " + (days.length ? days.join(" · ") : "keine Sprechzeiten"),
        d.note ? " (" + d.note + ")" : ""]);
    });
    list.replaceChildren.apply(list, items);
  }
  fetch(base + "/api/v1/status").then(function (r) {
    if (!r.ok) throw new Error(r.status);
    return r.json();
  }).then(render).catch(function () {
    list.replaceChildren(item(["Die Sprechzeiten können gerade nicht geladen werden."]));
  });
})();
