/* The case page: an editor for the incident, hypotheses and evidence items; the live analysis
   of the unsaved document on every change (POST /api/cases/analyse: the server's own
   arithmetic, never a copy of it here); save with the server's versioning (a stale save shows
   what changed and lets the analyst merge); the history; each analyst's judgement beside the
   pooled one and the items they disagree on. */
(function () {
  "use strict";
  var el = culpa.el, cfg = culpa.config;
  var id = cfg.case_id;
  var $ = function (x) { return document.getElementById(x); };
  var RELIABILITY = ["A", "B", "C", "D", "E", "F"];
  var CREDIBILITY = [1, 2, 3, 4, 5, 6];
  var RATINGS = cfg.ach_order;
  var doc = null;        // the working copy (what the analyst sees)
  var base = null;       // the document at `version`, as loaded or last saved
  var version = null;
  var analysis = null;   // the live analysis of `doc`
  var seq = 0, shownSeq = 0, timer = null;
  var canEdit = cfg.role === "editor" || cfg.role === "admin";

  function copy(x) { return JSON.parse(JSON.stringify(x)); }
  function same(a, b) { return JSON.stringify(a) === JSON.stringify(b); }
  function hyps() { return (doc.hypotheses || []).map(function (h) { return h.id; }); }
  function hypColour(h) { return h.catch_all ? cfg.catch_all_colour : culpa.colour(h.actor || h.id); }

  /* ---------------- loading ---------------- */
  function load() {
    return culpa.api("GET", "/api/cases/" + encodeURIComponent(id)).then(function (row) {
      version = row.version;
      base = copy(row.doc);
      doc = copy(row.doc);
      meta(row);
      culpa.setOrder((doc.hypotheses || []).filter(function (h) { return !h.catch_all; }).map(function (h) { return h.actor || h.id; }));
      renderEditor();
      analyse(true);
      team(row);
      history();
    }, function (err) {
      culpa.clear($("main")).appendChild(el("div", {class: "card"}, [el("h1", {text: "Case " + id}),
        el("p", {class: "error", text: err.status === 404 ? "There is no case " + id + "." : err.message}),
        el("p", {}, [el("a", {href: "/cases", text: "Back to the cases"})])]));
    });
  }

  function meta(row) {
    $("case-title").textContent = (row.doc && row.doc.title) || ("Case " + id);
    document.title = $("case-title").textContent + " · culpa";
    $("case-meta").textContent = "Case " + row.id + ", version " + row.version + ", last changed by " +
      (row.updated_by || "?") + " " + when(row.updated_at) + (row.owner ? "; owner " + row.owner : "");
  }
  function when(ts) {
    if (ts === null || ts === undefined) { return ""; }
    var d = typeof ts === "number" ? new Date(ts * 1000) : new Date(ts);
    return isNaN(d) ? String(ts) : d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  /* ---------------- the editor ---------------- */
  function field(label, value, onchange, attrs) {
    attrs = attrs || {};
    var fid = "f" + Math.random().toString(36).slice(2, 9);
    var input;
    if (attrs.multiline) {
      input = el("textarea", {id: fid, name: attrs.name, rows: attrs.rows || 2});
      input.value = value === null || value === undefined ? "" : value;
    } else {
      input = el("input", {id: fid, name: attrs.name, type: attrs.type || "text", step: attrs.step, min: attrs.min, max: attrs.max,
                           placeholder: attrs.placeholder, readonly: attrs.readonly});
      input.value = value === null || value === undefined ? "" : value;
    }
    if (!canEdit) { input.disabled = true; }
    input.addEventListener(attrs.type === "checkbox" ? "change" : "input", function () { onchange(input); changed(attrs.slow); });
    return el("div", {class: attrs.wide ? "wide" : null}, [el("label", {for: fid, text: label}), input]);
  }
  function checkbox(label, checked, onchange) {
    var fid = "f" + Math.random().toString(36).slice(2, 9);
    var input = el("input", {id: fid, type: "checkbox"});
    input.checked = !!checked;
    if (!canEdit) { input.disabled = true; }
    input.addEventListener("change", function () { onchange(input.checked); changed(); });
    return el("span", {}, [input, " ", el("label", {for: fid, text: label})]);
  }
  function select(name, label, options, value, onchange, words) {
    var fid = "f" + Math.random().toString(36).slice(2, 9);
    var s = el("select", {id: fid, name: name});
    options.forEach(function (o) {
      s.appendChild(el("option", {value: String(o), text: words ? o + " — " + words[String(o)] : String(o)}));
    });
    s.value = String(value);
    if (!canEdit) { s.disabled = true; }
    s.addEventListener("change", function () { onchange(s.value); changed(); });
    return el("div", {}, [el("label", {for: fid, text: label}), s]);
  }
  function num(v) { var x = parseFloat(v); return isFinite(x) ? x : null; }
  function setOrDrop(obj, key, value) { if (value === null || value === "" || value === undefined) { delete obj[key]; } else { obj[key] = value; } }

  function renderEditor() {
    var inc = doc.incident = doc.incident || {};
    var box = culpa.clear($("incident"));
    box.appendChild(field("Title", doc.title, function (i) { doc.title = i.value; }, {wide: true, name: "title"}));
    box.appendChild(field("When (YYYY-MM-DD or ISO time)", inc.time, function (i) { inc.time = i.value; }, {name: "time", slow: true}));
    box.appendChild(field("Window (days before it the model learns from)", doc.window_days, function (i) { setOrDrop(doc, "window_days", num(i.value) === null ? null : Math.round(num(i.value))); }, {type: "number", min: 1, name: "window_days", slow: true}));
    box.appendChild(field("Latitude", inc.lat, function (i) { inc.lat = num(i.value); }, {type: "number", step: "any", name: "lat", slow: true}));
    box.appendChild(field("Longitude", inc.lon, function (i) { inc.lon = num(i.value); }, {type: "number", step: "any", name: "lon", slow: true}));
    box.appendChild(field("Place known to within (km)", inc.precision_km, function (i) { setOrDrop(inc, "precision_km", num(i.value)); }, {type: "number", step: "any", min: 0, name: "precision_km", slow: true}));
    box.appendChild(field("Event type", inc.event_type, function (i) { setOrDrop(inc, "event_type", i.value.trim()); }, {name: "event_type", slow: true}));
    box.appendChild(field("Target (who was attacked)", inc.target, function (i) { setOrDrop(inc, "target", i.value.trim()); }, {name: "target", slow: true}));
    box.appendChild(field("What happened", inc.description, function (i) { setOrDrop(inc, "description", i.value); }, {multiline: true, wide: true, name: "description"}));
    renderHypotheses();
    renderEvidence();
  }

  function renderHypotheses() {
    var box = culpa.clear($("hypotheses"));
    (doc.hypotheses || []).forEach(function (h, k) {
      var div = el("div", {class: "hyp", "data-testid": "hypothesis-editor", "data-hyp": h.id});
      var row = el("div", {class: "row"});
      row.appendChild(field("Id", h.id, function (i) { rename(h, i.value.trim()); }, {name: "id", slow: true}));
      row.appendChild(field("Actor (as in the data, or any name)", h.actor, function (i) { setOrDrop(h, "actor", i.value.trim()); }, {name: "actor", slow: true}));
      row.appendChild(field("Label", h.label, function (i) { setOrDrop(h, "label", i.value); }, {name: "label"}));
      row.appendChild(field("Prior (blank: from the model)", h.prior, function (i) { setOrDrop(h, "prior", num(i.value)); }, {type: "number", step: "any", min: 0, max: 1, name: "prior"}));
      div.appendChild(row);
      var flags = el("div", {class: "flags"}, [checkbox("catch-all (any other actor)", h.catch_all, function (v) { setOrDrop(h, "catch_all", v || null); })]);
      if (canEdit) {
        flags.appendChild(el("button", {type: "button", class: "remove", text: "Remove", "aria-label": "Remove hypothesis " + h.id, onclick: function () {
          doc.hypotheses.splice(k, 1);
          (doc.evidence || []).forEach(function (it) { if (it.likelihood) { delete it.likelihood[h.id]; } if (it.rating) { delete it.rating[h.id]; } });
          renderEditor(); changed();
        }}));
      }
      div.appendChild(flags);
      box.appendChild(div);
    });
  }

  function rename(h, to) {
    if (!to || to === h.id) { return; }
    (doc.evidence || []).forEach(function (it) {
      ["likelihood", "rating"].forEach(function (k) {
        if (it[k] && h.id in it[k]) { it[k][to] = it[k][h.id]; delete it[k][h.id]; }
      });
    });
    h.id = to;
    renderEvidence();
  }

  function renderEvidence() {
    var box = culpa.clear($("evidence"));
    (doc.evidence || []).forEach(function (it, k) {
      var div = el("div", {class: "item", "data-testid": "evidence-item", "data-item": it.id});
      var row = el("div", {class: "row"});
      row.appendChild(field("Id", it.id, function (i) { it.id = i.value.trim(); div.setAttribute("data-item", it.id); }, {name: "id"}));
      row.appendChild(field("Source", it.source, function (i) { setOrDrop(it, "source", i.value); }, {name: "source"}));
      row.appendChild(select("reliability", "Source reliability", RELIABILITY, it.reliability, function (v) { it.reliability = v; }, cfg.reliability_words));
      row.appendChild(select("credibility", "Information credibility", CREDIBILITY, it.credibility, function (v) { it.credibility = parseInt(v, 10); }, cfg.credibility_words));
      div.appendChild(row);
      div.appendChild(field("What the item says", it.text, function (i) { setOrDrop(it, "text", i.value); }, {multiline: true, name: "text"}));
      var mode = it.rating ? "rating" : "likelihood";
      var lik = el("div", {class: "lik"});
      lik.appendChild(select("mode", "Given as", ["likelihood", "rating"], mode, function (v) {
        if (v === "rating") { it.rating = {}; hyps().forEach(function (h) { it.rating[h] = "N"; }); delete it.likelihood; }
        else { it.likelihood = {}; hyps().forEach(function (h) { it.likelihood[h] = 0.5; }); delete it.rating; }
        renderEvidence();
      }, {likelihood: "P(E | H) per hypothesis", rating: "ACH rating per hypothesis"}));
      hyps().forEach(function (h) {
        if (mode === "rating") {
          it.rating = it.rating || {};
          if (!(h in it.rating)) { it.rating[h] = "N"; }
          lik.appendChild(select("rating-" + h, h, RATINGS, it.rating[h], function (v) { it.rating[h] = v; }));
        } else {
          it.likelihood = it.likelihood || {};
          if (!(h in it.likelihood)) { it.likelihood[h] = 0.5; }
          lik.appendChild(field("P(E | " + h + ")", it.likelihood[h], function (i) { var v = num(i.value); if (v !== null) { it.likelihood[h] = v; } }, {type: "number", step: "0.05", min: 0, max: 1, name: "likelihood-" + h}));
        }
      });
      div.appendChild(lik);
      var flags = el("div", {class: "flags"});
      flags.appendChild(field("Dependence group", it.group, function (i) { setOrDrop(it, "group", i.value.trim()); }, {name: "group", placeholder: "none"}));
      flags.appendChild(checkbox("undisclosed (not shown to the public)", it.undisclosed, function (v) { setOrDrop(it, "undisclosed", v || null); }));
      if (canEdit) {
        flags.appendChild(el("button", {type: "button", class: "remove", text: "Remove", "aria-label": "Remove item " + it.id, onclick: function () {
          doc.evidence.splice(k, 1); renderEvidence(); changed();
        }}));
      }
      div.appendChild(flags);
      div.appendChild(el("p", {class: "hint item-share"}));
      box.appendChild(div);
    });
    if (analysis) { itemShares(); }
  }

  $("add-hypothesis").addEventListener("click", function () {
    var n = 1; while (hyps().indexOf("H" + n) >= 0) { n++; }
    doc.hypotheses = doc.hypotheses || [];
    doc.hypotheses.push({id: "H" + n, actor: "", label: ""});
    (doc.evidence || []).forEach(function (it) {
      if (it.likelihood) { var v = Object.keys(it.likelihood).map(function (k) { return it.likelihood[k]; }); it.likelihood["H" + n] = v.length ? v.reduce(function (a, b) { return a + b; }, 0) / v.length : 0.5; }
      if (it.rating) { it.rating["H" + n] = "N"; }
    });
    renderEditor(); changed();
  });
  $("add-item").addEventListener("click", function () {
    var n = 1; doc.evidence = doc.evidence || [];
    var ids = doc.evidence.map(function (it) { return it.id; });
    while (ids.indexOf("item-" + n) >= 0) { n++; }
    var it = {id: "item-" + n, text: "", source: "", reliability: "C", credibility: 3, likelihood: {}};
    hyps().forEach(function (h) { it.likelihood[h] = 0.5; });
    doc.evidence.push(it);
    renderEvidence(); changed();
  });
  if (!canEdit) {
    ["add-hypothesis", "add-item", "save"].forEach(function (b) { $(b).disabled = true; });
    $("save-state").textContent = "You are a viewer: you can try changes here, but not save them.";
  }

  /* ---------------- the live analysis ---------------- */
  function changed(slow) {
    dirty();
    clearTimeout(timer);
    timer = setTimeout(function () { analyse(false); }, slow ? 400 : 0);
  }
  function dirty() {
    var d = !same(doc, base);
    $("save-state").textContent = d ? "Unsaved changes." : (canEdit ? "Saved (version " + version + ")." : $("save-state").textContent);
    $("save").disabled = !canEdit || !d;
  }

  function analyse(first) {
    var mine = ++seq;
    var post = $("posterior");
    post.setAttribute("data-state", "pending");
    var t0 = performance.now();
    culpa.api("POST", "/api/cases/analyse", {doc: doc}).then(function (res) {
      if (mine < shownSeq) { return; }
      if (res.analysis === null) { waitFor(res.analysis_job, mine); return; }
      shownSeq = mine;
      if (mine !== seq) { return; }
      analysis = res.analysis;
      var ms = Math.round(performance.now() - t0);
      $("analysis-state").textContent = "Analysed in " + ms + " ms.";
      post.setAttribute("data-ms", String(ms));
      $("analysis-state").className = "hint";
      draw();
    }, function (err) {
      if (mine !== seq) { return; }
      post.setAttribute("data-state", "invalid");
      $("analysis-state").textContent = "Not analysed: " + err.message + " (the last good analysis is shown).";
      $("analysis-state").className = "error";
    });
  }

  function waitFor(job, mine) {
    if (mine !== seq) { return; }
    $("analysis-state").textContent = "The model is being fitted on the window before the incident...";
    culpa.api("GET", "/api/jobs/" + encodeURIComponent(job)).then(function (j) {
      if (mine !== seq) { return; }
      if (j.state === "failed") {
        $("analysis-state").textContent = "The analysis failed: " + j.error;
        $("analysis-state").className = "error";
        $("posterior").setAttribute("data-state", "invalid");
        return;
      }
      if (j.state === "done") { analyse(false); return; }
      $("analysis-state").textContent = "The model is being fitted on the window before the incident (" +
        Math.round(100 * (j.progress || 0)) + " %): " + (j.message || "");
      setTimeout(function () { waitFor(job, mine); }, 700);
    }, culpa.failed("The analysis job could not be followed"));
  }

  function hypothesisOf(hid) {
    var found = null;
    (doc.hypotheses || []).forEach(function (h) { if (h.id === hid) { found = h; } });
    return found || {id: hid};
  }
  function hypLabel(hid) { var h = hypothesisOf(hid); return h.label ? h.label + " (" + hid + ")" : hid; }

  function draw() {
    var a = analysis;
    var order = Object.keys(a.posterior).sort(function (x, y) { return a.posterior[y] - a.posterior[x]; });
    var post = culpa.clear($("posterior"));
    order.forEach(function (h) {
      var p = a.posterior[h], c = hypColour(hypothesisOf(h));
      var bar = el("span"); bar.style.width = (100 * p).toFixed(1) + "%"; bar.style.background = c;
      post.appendChild(el("li", {"data-hypothesis": h, "data-probability": String(p)}, [
        el("div", {}, [culpa.swatch(c), " ", el("span", {class: "name", text: hypLabel(h)}), " — " + culpa.plain(p),
          el("span", {class: "hint", text: " (prior " + culpa.pct(a.prior[h]) + ")"})]),
        el("div", {class: "pbar"}, [bar])]));
    });
    post.setAttribute("data-state", "ready");
    post.setAttribute("data-seq", String(seq));
    if (a.model_note) { post.appendChild(el("li", {class: "hint", text: a.model_note})); }
    steps(a, order);
    var be = culpa.clear($("break-even"));
    (a.sentences || a.break_even_text || []).forEach(function (s) { be.appendChild(el("li", {text: s})); });
    ach(a);
    itemShares();
  }

  /* Prior -> after each counted item -> posterior, one line per hypothesis (the items' log
     likelihood ratios as the analysis gives them, summed in order and normalised). */
  function steps(a, order) {
    var NS = "http://www.w3.org/2000/svg";
    var items = a.items.filter(function (it) { return it.counted; });
    var logs = {};
    order.forEach(function (h) { logs[h] = Math.log(a.prior[h]); });
    var series = [norm(logs)];
    items.forEach(function (it) { order.forEach(function (h) { logs[h] += it.log_lr[h]; }); series.push(norm(logs)); });
    function norm(l) {
      var m = Math.max.apply(null, order.map(function (h) { return l[h]; }));
      var z = 0; order.forEach(function (h) { z += Math.exp(l[h] - m); });
      var out = {}; order.forEach(function (h) { out[h] = Math.exp(l[h] - m) / z; });
      return out;
    }
    var W = 560, H = 190, L0 = 34, R = 10, T = 10, B = 48;
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Probability of each hypothesis from the prior through each counted item");
    function add(tag, at, text) {
      var n = document.createElementNS(NS, tag);
      Object.keys(at).forEach(function (k) { n.setAttribute(k, at[k]); });
      if (text !== undefined) { n.textContent = text; }
      svg.appendChild(n); return n;
    }
    var n = series.length;
    var x = function (i) { return L0 + (n === 1 ? 0 : i * (W - L0 - R) / (n - 1)); };
    var y = function (p) { return T + (1 - p) * (H - T - B); };
    [0, 0.5, 1].forEach(function (p) {
      add("line", {x1: L0, x2: W - R, y1: y(p), y2: y(p), stroke: "#e3e6ec"});
      add("text", {x: 2, y: y(p) + 4}, (p * 100) + "%");
    });
    var labels = ["prior"].concat(items.map(function (it) { return it.id; }));
    labels.forEach(function (lab, i) {
      add("text", {x: x(i), y: H - B + 14, "text-anchor": i === 0 ? "start" : "end",
                   transform: i === 0 ? "" : "rotate(-25 " + x(i) + " " + (H - B + 14) + ")"}, lab);
    });
    order.forEach(function (h) {
      var c = hypColour(hypothesisOf(h));
      var pts = series.map(function (s, i) { return x(i) + "," + y(s[h]); }).join(" ");
      add("polyline", {points: pts, fill: "none", stroke: c, "stroke-width": 2.5});
      series.forEach(function (s, i) { add("circle", {cx: x(i), cy: y(s[h]), r: 3, fill: c}); });
      add("text", {x: W - R - 2, y: y(series[n - 1][h]) - 5, "text-anchor": "end", fill: c}, h + " " + culpa.pct(series[n - 1][h]));
    });
    culpa.clear($("steps")).appendChild(svg);
  }

  function ratingsOf(item) {
    if (item.rating) { return {given: true, r: item.rating}; }
    var p = item.likelihood || {};
    var hs = Object.keys(p), vals = hs.map(function (h) { return p[h]; });
    var out = {};
    if (!vals.length || Math.max.apply(null, vals) === Math.min.apply(null, vals)) { hs.forEach(function (h) { out[h] = "N"; }); return {given: false, r: out}; }
    var mean = vals.reduce(function (s, v) { return s + v; }, 0) / vals.length;
    hs.forEach(function (h) {
      var ratio = p[h] / mean, r = "II";
      for (var i = 0; i < cfg.ach_cuts.length; i++) { if (ratio >= cfg.ach_cuts[i]) { r = RATINGS[i]; break; } }
      out[h] = r;
    });
    return {given: false, r: out};
  }

  function ach(a) {
    var hs = Object.keys(a.posterior);
    var t = el("table", {class: "ach"});
    t.appendChild(el("tr", {}, [el("th", {scope: "col", text: "item (grade)"})].concat(hs.map(function (h) { return el("th", {scope: "col", text: h}); }))));
    var byId = {};
    (doc.evidence || []).forEach(function (it) { byId[it.id] = it; });
    a.items.forEach(function (res) {
      var it = byId[res.id] || {};
      var r = ratingsOf(it);
      t.appendChild(el("tr", {}, [el("th", {scope: "row", text: res.id + " (" + it.reliability + it.credibility + ")" + (res.counted ? "" : " — not counted")})]
        .concat(hs.map(function (h) { var v = r.r[h] || "?"; return el("td", {class: v, text: v + (r.given ? "" : "*")}); }))));
    });
    t.appendChild(el("tr", {}, [el("th", {scope: "row", text: "inconsistency (lower fits better)"})].concat(hs.map(function (h) {
      return el("td", {text: (a.ach_inconsistency[h] || 0).toFixed(2)}); }))));
    culpa.clear($("ach")).appendChild(t);
    $("ach").appendChild(el("p", {class: "hint", text: "* derived from the item's likelihoods. CC very consistent, C consistent, N neutral, I inconsistent, II very inconsistent."}));
  }

  function itemShares() {
    var res = {};
    analysis.items.forEach(function (r) { res[r.id] = r; });
    var lead = analysis.leading;
    document.querySelectorAll("[data-testid=evidence-item]").forEach(function (div) {
      var r = res[div.getAttribute("data-item")];
      var p = div.querySelector(".item-share");
      if (!r || !p) { return; }
      div.classList.toggle("not-counted", !r.counted);
      p.textContent = r.counted ? "Weight " + r.weight.toFixed(2) + "; leaving it out, " + lead + " would be " + culpa.pct(r.loo_posterior[lead]) + "."
        : "Not counted: a more diagnostic item of its group (" + r.group + ") stands for it.";
    });
  }

  /* ---------------- several analysts ---------------- */
  function team(row) {
    var box = culpa.clear($("analysts"));
    var a = row.analysis;
    var names = a && a.analysts ? Object.keys(a.analysts) : [];
    var hs = a ? Object.keys(a.posterior) : [];
    if (!a) {
      box.appendChild(el("p", {class: "hint", text: "The saved version is still being analysed."}));
      setTimeout(refreshTeam, 1000);
    } else if (!names.length) {
      box.appendChild(el("p", {class: "hint", text: "Only the case document's judgement so far. Record yours to see it beside the others'."}));
    } else {
      var t = el("table", {class: "ach", "data-testid": "analysts"});
      t.appendChild(el("tr", {}, [el("th", {scope: "col", text: "hypothesis"})].concat(names.map(function (n) { return el("th", {scope: "col", text: n}); }), [el("th", {scope: "col", text: "pooled"})])));
      hs.forEach(function (h) {
        var pooled = a.pooled && (a.pooled.posterior || a.pooled)[h];
        t.appendChild(el("tr", {}, [el("th", {scope: "row", text: h})].concat(names.map(function (n) {
          var p = a.analysts[n]; p = p && (p.posterior || p); return el("td", {text: culpa.pct(p ? p[h] : null)}); }),
          [el("td", {text: culpa.pct(pooled)})])));
      });
      box.appendChild(t);
      if (a.pooling) { box.appendChild(el("p", {class: "hint", text: "Pooling: " + (a.pooling.method || a.pooling)})); }
      var dis = (a.disagreement || []).filter(function (d) { return d.spread > 1e-9; });
      if (dis.length) {
        var ul = el("ul");
        dis.forEach(function (d) { ul.appendChild(el("li", {text: d.item + ": the analysts' log likelihood ratios differ by " + d.spread.toFixed(2) + "; this moves the pooled answer by up to " + culpa.pct(d.effect)})); });
        box.appendChild(el("p", {text: "Where they disagree:"}));
        box.appendChild(ul);
      } else { box.appendChild(el("p", {class: "hint", text: "The analysts agree on every item."})); }
    }
    if (canEdit) {
      box.appendChild(el("button", {type: "button", class: "secondary", id: "record-judgement", text: "Record the grades and likelihoods above as my judgement",
        onclick: recordJudgement}));
    }
  }

  function recordJudgement() {
    var items = {};
    (doc.evidence || []).forEach(function (it) {
      var j = {reliability: it.reliability, credibility: it.credibility};
      if (it.rating) { j.rating = it.rating; } else { j.likelihood = it.likelihood; }
      items[it.id] = j;
    });
    culpa.api("PUT", "/api/cases/" + encodeURIComponent(id) + "/judgements/me", {items: items}).then(function () {
      culpa.message("Your judgement is recorded.");
      refreshTeam();
    }, culpa.failed("Your judgement was not recorded"));
  }
  function refreshTeam() {
    culpa.api("GET", "/api/cases/" + encodeURIComponent(id)).then(function (row) {
      team(row);
    }, culpa.failed("The case could not be reloaded"));
  }

  /* ---------------- history ---------------- */
  function history() {
    culpa.api("GET", "/api/cases/" + encodeURIComponent(id) + "/history").then(function (h) {
      var ol = culpa.clear($("history"));
      h.entries.slice().reverse().forEach(function (e) {
        ol.appendChild(el("li", {"data-version": e.version, "data-user": e.user}, [
          el("strong", {text: "v" + e.version + " " + e.user}), " " + when(e.at) + ": " + describe(e.change),
          el("span", {class: "hint", text: " #" + String(e.hash).slice(0, 10)})]));
      });
    }, culpa.failed("The history could not be loaded"));
  }
  function describe(change) {
    if (change === null || change === undefined) { return ""; }
    if (typeof change === "string") { return change; }
    if (Array.isArray(change)) { return change.map(describe).join("; "); }
    if (change.summary) { return change.summary; }
    return Object.keys(change).map(function (k) { return k + ": " + (typeof change[k] === "object" ? JSON.stringify(change[k]) : change[k]); }).join("; ");
  }

  /* ---------------- saving and merging ---------------- */
  $("save").addEventListener("click", function () { save(doc, version); });

  function save(what, from) {
    $("save").disabled = true;
    $("save-state").textContent = "Saving...";
    return culpa.api("PUT", "/api/cases/" + encodeURIComponent(id), {version: from, doc: what}).then(function (res) {
      version = res.version;
      base = copy(what);
      doc = copy(what);
      $("conflict").hidden = true;
      culpa.message("Saved as version " + version + ".");
      dirty();
      culpa.api("GET", "/api/cases/" + encodeURIComponent(id)).then(function (row) { meta(row); team(row); });
      history();
    }, function (err) {
      if (err.status === 409) { return conflict(); }
      $("save").disabled = false;
      $("save-state").textContent = "Not saved: " + err.message;
      culpa.message("Not saved: " + err.message, "error", 0);
    });
  }

  /* Units a merge works on: the title, the incident, the window, each hypothesis and each item
     (by id). Changed on one side only: that side wins; changed on both: the analyst chooses. */
  function units(d) {
    var u = {"title": d.title, "incident": d.incident, "window_days": d.window_days};
    Object.keys(d).forEach(function (k) { if (["title", "incident", "window_days", "hypotheses", "evidence"].indexOf(k) < 0) { u["doc." + k] = d[k]; } });
    (d.hypotheses || []).forEach(function (h) { u["hypothesis " + h.id] = h; });
    (d.evidence || []).forEach(function (it) { u["item " + it.id] = it; });
    return u;
  }

  function conflict() {
    return culpa.api("GET", "/api/cases/" + encodeURIComponent(id)).then(function (row) {
      var theirs = row.doc, ub = units(base), ut = units(theirs), um = units(doc);
      var keys = [];
      [ut, um, ub].forEach(function (u) { Object.keys(u).forEach(function (k) { if (keys.indexOf(k) < 0) { keys.push(k); } }); });
      var choice = {}, both = [], fused = {};
      keys.forEach(function (k) {
        var b = ub[k], t = ut[k], m = um[k];
        if (same(m, t)) { choice[k] = "mine"; }
        else if (same(m, b)) { choice[k] = "theirs"; }
        else if (same(t, b)) { choice[k] = "mine"; }
        else if (isObj(b) && isObj(t) && isObj(m)) {
          // Both changed one item: field by field, each side's changes are kept; only a field
          // both changed, differently, asks for a choice.
          var f = {value: {}, fields: []};
          Object.keys(Object.assign({}, b, t, m)).forEach(function (name) {
            var fb = b[name], ft = t[name], fm = m[name];
            var v = same(fm, fb) ? ft : (same(ft, fb) || same(ft, fm)) ? fm : undefined;
            if (!same(fm, fb) && !same(ft, fb) && !same(ft, fm)) { f.fields.push(name); }
            else if (v !== undefined) { f.value[name] = v; }
          });
          fused[k] = f;
          choice[k] = "mine";
          if (f.fields.length) { both.push(k); } else { choice[k] = "fused"; }
        }
        else { choice[k] = "mine"; both.push(k); }
      });
      var box = culpa.clear($("conflict"));
      box.hidden = false;
      box.setAttribute("data-testid", "conflict");
      box.appendChild(el("h2", {text: "Someone saved this case while you were editing it"}));
      box.appendChild(el("p", {text: (row.updated_by || "Another analyst") + " saved version " + row.version + " (you started from version " + version + "). " +
        "Nothing is lost: their changes below are taken where you did not touch the same thing; where you both did, choose."}));
      var t = el("table");
      t.appendChild(el("tr", {}, [el("th", {text: "what"}), el("th", {text: "theirs (v" + row.version + ")"}), el("th", {text: "yours"}), el("th", {text: "keep"})]));
      keys.forEach(function (k) {
        if (same(ut[k], um[k])) { return; }
        var cell = el("td");
        if (both.indexOf(k) >= 0) {
          ["mine", "theirs"].forEach(function (side) {
            var rid = "m-" + k.replace(/\W/g, "_") + "-" + side;
            var r = el("input", {type: "radio", name: "merge-" + k, id: rid, value: side});
            r.checked = choice[k] === side;
            r.addEventListener("change", function () { choice[k] = side; });
            cell.appendChild(el("span", {}, [r, el("label", {for: rid, text: side === "mine" ? " yours " : " theirs "})]));
          });
          if (fused[k]) { cell.appendChild(el("div", {class: "hint", text: "for " + fused[k].fields.join(", ") + "; the other changes of both are kept"})); }
        } else {
          cell.textContent = choice[k] === "fused" ? "both (you changed different fields)" :
            choice[k] === "mine" ? "yours (only you changed it)" : "theirs (only they changed it)";
        }
        t.appendChild(el("tr", {"data-unit": k, "data-conflict": both.indexOf(k) >= 0 ? "both" : "one"}, [el("th", {scope: "row", text: k}),
          el("td", {}, [el("code", {text: show(ut[k], um[k])})]), el("td", {}, [el("code", {text: show(um[k], ut[k])})]), cell]));
      });
      box.appendChild(t);
      box.appendChild(el("button", {type: "button", id: "merge-save", text: "Save the merged case as version " + (row.version + 1), onclick: function () {
        var merged = merge(theirs, doc, choice, ut, um, fused);
        base = copy(theirs);
        version = row.version;
        doc = merged;
        renderEditor();
        save(merged, row.version);
      }}));
      box.appendChild(el("button", {type: "button", class: "secondary", text: "Drop my changes and load theirs", onclick: function () {
        $("conflict").hidden = true; load();
      }}));
      $("save-state").textContent = "Not saved yet: merge first.";
      $("save").disabled = false;
    });
  }
  /* What one side holds, as far as it differs from the other side (whole when added/removed). */
  function show(v, other) {
    if (v === undefined) { return "(absent)"; }
    if (v && other && typeof v === "object" && typeof other === "object" && !Array.isArray(v)) {
      return Object.keys(Object.assign({}, v, other)).filter(function (k) { return !same(v[k], other[k]); })
        .map(function (k) { return k + ": " + (v[k] === undefined ? "(absent)" : typeof v[k] === "object" ? JSON.stringify(v[k]) : v[k]); }).join("\n");
    }
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  }

  function isObj(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

  function merge(theirs, mine, choice, ut, um, fused) {
    var out = {};
    var pick = function (k) {
      var f = fused[k];
      if (!f) { return choice[k] === "mine" ? um[k] : ut[k]; }
      var v = copy(f.value);
      f.fields.forEach(function (name) {
        var side = choice[k] === "theirs" ? ut[k] : um[k];
        if (side[name] !== undefined) { v[name] = side[name]; }
      });
      var order = Object.keys(Object.assign({}, ut[k], um[k]));
      var ordered = {};
      order.forEach(function (name) { if (name in v) { ordered[name] = v[name]; } });
      return ordered;
    };
    ["title", "incident", "window_days"].forEach(function (k) { var v = pick(k); if (v !== undefined) { out[k] = copy(v); } });
    Object.keys(Object.assign({}, ut, um)).forEach(function (k) {
      if (k.slice(0, 4) === "doc.") { var v = pick(k); if (v !== undefined) { out[k.slice(4)] = copy(v); } }
    });
    ["hypotheses", "evidence"].forEach(function (list) {
      var prefix = list === "hypotheses" ? "hypothesis " : "item ";
      var ids = (theirs[list] || []).map(function (x) { return x.id; });
      (mine[list] || []).forEach(function (x) { if (ids.indexOf(x.id) < 0) { ids.push(x.id); } });
      out[list] = [];
      ids.forEach(function (i) { var v = pick(prefix + i); if (v !== undefined) { out[list].push(copy(v)); } });
    });
    return out;
  }

  window.addEventListener("beforeunload", function (e) {
    if (doc && canEdit && !same(doc, base)) { e.preventDefault(); e.returnValue = ""; }
  });

  load();
})();
