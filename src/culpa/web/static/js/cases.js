/* The team's cases, and a new case from a YAML file or pasted YAML (POST /api/cases). */
(function () {
  "use strict";
  var el = culpa.el;
  var body = document.querySelector("#cases-table tbody");

  function when(ts) {
    if (ts === null || ts === undefined) { return ""; }
    var d = typeof ts === "number" ? new Date(ts * 1000) : new Date(ts);
    return isNaN(d) ? String(ts) : d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function load() {
    culpa.api("GET", "/api/cases?limit=1000").then(function (doc) {
      culpa.clear(body);
      if (!doc.cases.length) {
        body.appendChild(el("tr", {}, [el("td", {colspan: "4", class: "hint", text: "No cases yet: import one below."})]));
      }
      doc.cases.forEach(function (c) {
        body.appendChild(el("tr", {"data-case": c.id}, [
          el("td", {}, [el("a", {href: "/cases/" + encodeURIComponent(c.id), text: c.title || c.id}),
            el("span", {class: "hint", text: " " + c.id + (c.owner ? ", owner " + c.owner : "")})]),
          el("td", {text: c.leading === null || c.leading === undefined ? "being analysed" : c.leading}),
          el("td", {text: String(c.version)}),
          el("td", {text: when(c.updated_at) + (c.updated_by ? " by " + c.updated_by : "")})]));
      });
    }, culpa.failed("The cases could not be loaded"));
  }

  var form = document.getElementById("import-form");
  var file = document.getElementById("import-file");
  var text = document.getElementById("import-text");
  file.addEventListener("change", function () {
    if (!file.files.length) { return; }
    file.files[0].text().then(function (t) { text.value = t; });
  });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!text.value.trim()) { culpa.message("Choose a YAML case file or paste its text first.", "error"); return; }
    culpa.api("POST", "/api/cases", text.value, {yaml: true}).then(function (made) {
      location.href = "/cases/" + encodeURIComponent(made.id);
    }, culpa.failed("The case was not created"));
  });
  load();
})();
