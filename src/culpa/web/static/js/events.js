/* The events page: a map (density at low zoom, every event when zoomed in, coloured by actor)
   linked to a brushable timeline, filters, the count of events shown, an event's record and
   escalation chain, and "who did it?" for any place and day. */
(function () {
  "use strict";
  var DAY = 86400000;
  var PAGE = 1000;
  var all = [];          // every event of the store, as the API gives them (+ t, ms)
  var byId = {};
  var shown = [];
  var state = {actor: "", type: "", status: "", since: null, until: null};  // until exclusive, ms
  var base = culpaMap.make("map");
  var map = base.map;
  var eventsLayer = L.layerGroup().addTo(map);
  var labelsLayer = L.layerGroup().addTo(map);
  var askLayer = L.layerGroup().addTo(map);
  var renderer = L.canvas({padding: 0.3});
  var detail = document.getElementById("detail");
  var $ = function (id) { return document.getElementById(id); };
  var el = culpa.el;
  var timeline = new CulpaTimeline($("timeline"), function (range) {
    if (range) {
      state.since = Math.floor(range[0] / DAY) * DAY;
      state.until = Math.ceil(range[1] / DAY) * DAY;
    } else { state.since = state.until = null; }
    syncDates();
    apply();
  });

  function lat(e) { return e.latitude !== undefined ? e.latitude : e.lat; }
  function lon(e) { return e.longitude !== undefined ? e.longitude : e.lon; }
  function when(e) { return e.time_start || e.time || e.date; }
  function place(e) { return e.where || e.location || e.admin2 || e.admin1 || null; }
  function day(ms) { return new Date(ms).toISOString().slice(0, 10); }
  function parseDay(s) { return s ? Date.parse(s + "T00:00:00Z") : null; }

  function loadAll() {
    return culpa.api("GET", "/api/events?limit=" + PAGE + "&offset=0").then(function (first) {
      var pages = [Promise.resolve(first)];
      for (var off = PAGE; off < first.total; off += PAGE) {
        pages.push(culpa.api("GET", "/api/events?limit=" + PAGE + "&offset=" + off));
      }
      return Promise.all(pages).then(function (bodies) {
        var events = [];
        bodies.forEach(function (b) { events = events.concat(b.events); });
        $("event-total").textContent = "of " + first.total.toLocaleString("en") + " in the store";
        return events;
      });
    });
  }

  function setUp(events) {
    all = events.filter(function (e) { return isFinite(lat(e)) && isFinite(lon(e)) && when(e); });
    all.forEach(function (e) { e.t = Date.parse(String(when(e)).slice(0, 10) + "T00:00:00Z"); byId[e.id] = e; });
    var counts = {};
    all.forEach(function (e) { if (e.actor) { counts[e.actor] = (counts[e.actor] || 0) + 1; } });
    var actors = Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a] || (a < b ? -1 : 1); });
    culpa.setOrder(actors);
    state.actors = actors;
    fill($("f-actor"), actors);
    fill($("f-type"), distinct("event_type"));
    fill($("f-status"), distinct("attribution"));
    legend(actors);
    if (all.length) {
      var ts = all.map(function (e) { return e.t; });
      state.extent = [Math.min.apply(null, ts), Math.max.apply(null, ts) + DAY];
      $("ask-date").value = day(state.extent[1]);
      var b = L.latLngBounds(all.map(function (e) { return [lat(e), lon(e)]; }));
      map.fitBounds(b.pad(0.1), {maxZoom: 9, animate: false});
    } else {
      state.extent = [Date.now() - 365 * DAY, Date.now()];
      culpa.message("The store holds no events yet: ingest some (culpa ingest FILE, or POST /api/ingest).", "", 0);
    }
    apply();
    map.on("zoomend moveend", draw);
  }

  function distinct(key) {
    var seen = {};
    all.forEach(function (e) { if (e[key]) { seen[e[key]] = true; } });
    return Object.keys(seen).sort();
  }
  function fill(select, values) {
    values.forEach(function (v) { select.appendChild(el("option", {value: v, text: v})); });
  }
  function legend(actors) {
    var box = culpa.clear($("legend"));
    actors.slice(0, 12).forEach(function (a) {
      box.appendChild(el("div", {class: "key"}, [culpa.swatch(culpa.colour(a)), a]));
    });
    if (actors.length > 12) { box.appendChild(el("div", {class: "hint", text: (actors.length - 12) + " more actors in the list above"})); }
    box.appendChild(el("div", {class: "key"}, [culpa.swatch(culpa.config.unattributed_colour), "unattributed"]));
  }

  function passes(e, withDates) {
    if (state.actor && e.actor !== state.actor) { return false; }
    if (state.type && e.event_type !== state.type) { return false; }
    if (state.status && e.attribution !== state.status) { return false; }
    if (withDates && state.since !== null && e.t < state.since) { return false; }
    if (withDates && state.until !== null && e.t >= state.until) { return false; }
    return true;
  }

  function apply() {
    shown = all.filter(function (e) { return passes(e, true); });
    $("event-count").textContent = String(shown.length);
    $("event-count").setAttribute("data-count", String(shown.length));
    timeline.render(all.filter(function (e) { return passes(e, false); }), state.extent, state.actors || []);
    timeline.range = state.since !== null ? [state.since, state.until] : null;
    timeline.showRange();
    draw();
  }

  /* Density at low zoom (events binned on a 14-pixel grid), every event from zoom 9 on. */
  function draw() {
    eventsLayer.clearLayers();
    var z = map.getZoom();
    var bounds = map.getBounds().pad(0.2);
    var inView = shown.filter(function (e) { return bounds.contains([lat(e), lon(e)]); });
    if (z >= 9 || inView.length < 400) {
      inView.forEach(function (e) {
        var m = L.circleMarker([lat(e), lon(e)], {renderer: renderer, radius: 5, weight: 1,
          color: "#fff", fillColor: culpa.colour(e.actor), fillOpacity: 0.9});
        m.on("click", function (ev) { L.DomEvent.stopPropagation(ev); select(e); });
        m.bindTooltip(day(e.t) + " · " + (e.actor || "unattributed") + (place(e) ? " · " + place(e) : ""));
        m.addTo(eventsLayer);
      });
    } else {
      var cells = {};
      inView.forEach(function (e) {
        var p = map.latLngToLayerPoint([lat(e), lon(e)]);
        var key = Math.floor(p.x / 14) + ":" + Math.floor(p.y / 14);
        var c = cells[key] || (cells[key] = {n: 0, lat: 0, lon: 0, actors: {}, events: []});
        c.n++; c.lat += lat(e); c.lon += lon(e); c.events.push(e);
        var a = e.actor || "";
        c.actors[a] = (c.actors[a] || 0) + 1;
      });
      Object.keys(cells).forEach(function (key) {
        var c = cells[key];
        var top = Object.keys(c.actors).sort(function (a, b) { return c.actors[b] - c.actors[a]; })[0];
        var m = L.circleMarker([c.lat / c.n, c.lon / c.n], {renderer: renderer,
          radius: Math.min(18, 3 + 2.2 * Math.sqrt(c.n)), weight: 1, color: "#fff",
          fillColor: culpa.colour(top || null), fillOpacity: 0.75});
        m.bindTooltip(c.n + " events, most by " + (top || "unattributed") + (c.n > 1 ? " (click to zoom in)" : ""));
        m.on("click", function (ev) {
          L.DomEvent.stopPropagation(ev);
          if (c.n === 1) { select(c.events[0]); return; }
          map.fitBounds(L.latLngBounds(c.events.map(function (e) { return [lat(e), lon(e)]; })).pad(0.3), {maxZoom: 11});
        });
        m.addTo(eventsLayer);
      });
    }
    culpaMap.placeLabels(map, shown, place, labelsLayer);
    $("map").setAttribute("data-events-drawn", String(inView.length));
  }

  function syncDates() {
    $("f-since").value = state.since !== null ? day(state.since) : "";
    $("f-until").value = state.until !== null ? day(state.until - DAY) : "";
  }

  /* ---- one event: record, provenance and escalation chain ---- */
  function select(e) {
    culpa.clear(detail);
    detail.appendChild(el("h2", {text: "Event " + e.id}));
    var rows = [["date", String(when(e)).slice(0, 10) + (e.date_precision_days > 1 ? " (within " + e.date_precision_days + " days)" : "")],
      ["actor", e.actor || "unattributed"], ["attribution", e.attribution], ["type", e.event_type],
      ["fatalities", e.fatalities], ["place", [e.admin2, e.admin1, e.country].filter(Boolean).join(", ")],
      ["where", lat(e).toFixed(4) + ", " + lon(e).toFixed(4) + (e.location_precision_km ? " (±" + e.location_precision_km + " km)" : "")],
      ["source", e.source], ["as written", [e.actor_raw, e.other_raw].filter(Boolean).join(" vs ")],
      ["file, row", e.source_file ? e.source_file + ", row " + e.source_row : null]];
    detail.appendChild(table(rows));
    var recBox = el("div", {class: "hint", text: "Loading its source record..."});
    detail.appendChild(recBox);
    culpa.api("GET", "/api/events/" + encodeURIComponent(e.id)).then(function (full) {
      culpa.clear(recBox);
      var rec = full.record;
      if (rec && typeof rec === "object") {
        recBox.className = "";
        recBox.appendChild(el("details", {}, [el("summary", {text: "The original row (" + (full.source_file || full.source) + (full.source_row ? ", row " + full.source_row : "") + ")"}),
          table(Object.keys(rec).map(function (k) { return [k, rec[k]]; }))]));
      } else { recBox.textContent = "No source record kept."; }
    }, function (err) { recBox.textContent = "No source record: " + err.message; });
    detail.setAttribute("data-event", e.id);
    var chainBox = el("div", {"data-testid": "chain", "data-state": "loading"}, [el("p", {class: "hint", text: "Loading its chain..."})]);
    detail.appendChild(el("h3", {text: "Escalation chain"}));
    detail.appendChild(chainBox);
    detail.appendChild(el("button", {type: "button", class: "secondary", text: "Who did it? (ask the model about this event)",
      onclick: function () { ask(lat(e), lon(e), String(when(e)).slice(0, 10), e.event_type); }}));
    culpa.whenReady(function () { return culpa.api("GET", "/api/events/" + encodeURIComponent(e.id) + "/chain"); },
      function () { culpa.clear(chainBox).appendChild(el("p", {class: "hint", text: "The model is still being fitted; the chain follows when it is ready..."})); }).then(function (doc) {
      culpa.clear(chainBox);
      chainBox.appendChild(el("p", {text: "Background (no trigger): " + culpa.pct(doc.background_proba)}));
      chainBox.appendChild(el("p", {class: "hint", text: "Likely triggered by:"}));
      chainBox.appendChild(tree(doc.parents || [], "parents"));
      chainBox.appendChild(el("p", {class: "hint", text: "Likely triggered:"}));
      chainBox.appendChild(tree(doc.children || [], "children"));
      chainBox.setAttribute("data-state", "ready");
    }, function (err) {
      chainBox.setAttribute("data-state", "failed");
      culpa.clear(chainBox).appendChild(el("p", {class: "error", text: "No chain: " + err.message}));
    });
  }

  function table(rows) {
    var t = el("table");
    rows.forEach(function (r) {
      if (r[1] === null || r[1] === undefined || r[1] === "") { return; }
      t.appendChild(el("tr", {}, [el("th", {scope: "row", text: r[0]}), el("td", {text: String(r[1])})]));
    });
    return t;
  }

  /* The chain as nested lists; each event of the store is a button (Tab to it, Enter opens it). */
  function tree(items, key) {
    var ul = el("ul", {class: "tree", "data-side": key});
    if (!items.length) { ul.appendChild(el("li", {class: "hint", text: "nothing above the threshold"})); }
    items.forEach(function (it) {
      var who = it.labelled ? it.actor : it.actor + "? (" + culpa.pct(it.actor_probability) + ")";
      var label = it.id + " " + it.date + " " + who + (it.probability !== undefined ?
        " — p " + culpa.pct(it.probability) + ", " + Math.round(it.days) + " d, " + Math.round(it.distance_km) + " km" : "");
      var li = el("li", {"data-event": it.id}, [byId[it.id] ? el("button", {type: "button", class: "link", text: label,
        onclick: function () { open(it.id); }}) : label]);
      if (it[key] && it[key].length) { li.appendChild(tree(it[key], key)); }
      ul.appendChild(li);
    });
    return ul;
  }

  /* Open an event of the store by id: the map moves to it and the panel shows it (its first
     control takes the focus, so keyboard users stay in the panel). */
  function open(id) {
    var e = byId[id];
    if (!e) { return; }
    map.panTo([lat(e), lon(e)], {animate: false});
    select(e);
    var first = detail.querySelector("h2");
    if (first) { first.setAttribute("tabindex", "-1"); first.focus(); }
  }

  /* ---- who did it? ---- */
  map.on("click", function (ev) { ask(ev.latlng.lat, ev.latlng.lng, $("ask-date").value, null); });
  $("map").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") { var c = map.getCenter(); ask(c.lat, c.lng, $("ask-date").value, null); }
  });

  function ask(y, x, date, eventType) {
    if (!date) { culpa.message("Choose the day to ask about first (Ask about the day).", "error"); return; }
    y = Math.round(y * 1e4) / 1e4; x = Math.round(x * 1e4) / 1e4;
    askLayer.clearLayers();
    detail.removeAttribute("data-event");
    L.circleMarker([y, x], {radius: 9, color: "#1d2433", weight: 3, fill: false}).addTo(askLayer);
    culpa.clear(detail).appendChild(el("p", {class: "hint", text: "Asking the model about " + y + ", " + x + " on " + date + "..."}));
    var body = {lat: y, lon: x, time: date};
    if (eventType) { body.event_type = eventType; }
    culpa.whenReady(function () { return culpa.api("POST", "/api/attribute", body); }, function () {
      culpa.clear(detail).appendChild(el("p", {class: "hint", text: "The model is still being fitted on the store; the answer follows when it is ready..."}));
    }).then(function (doc) { showRanking(doc, body); },
      function (err) { culpa.clear(detail).appendChild(el("p", {class: "error", text: "The model could not answer: " + err.message})); });
  }

  function showRanking(doc, body) {
    culpa.clear(detail);
    var box = el("div", {id: "attribution", "data-lat": body.lat, "data-lon": body.lon, "data-time": body.time});
    box.appendChild(el("h2", {text: "Who did it?"}));
    box.appendChild(el("p", {class: "hint", text: body.lat + ", " + body.lon + " on " + body.time +
      (body.event_type ? " (" + body.event_type + ")" : "")}));
    var ol = el("ol", {class: "ranking", "data-testid": "ranking"});
    var actors = doc.actors.filter(function (a) { return a.probability >= 0.001; }).slice(0, 10);
    if (!actors.length) { actors = doc.actors.slice(0, 1); }
    actors.forEach(function (a, i) {
      var c = culpa.colour(a.actor);
      var bar = el("span"); bar.style.width = (100 * a.probability).toFixed(1) + "%"; bar.style.background = c;
      var reasons = (a.top_events || []).filter(function (e) { return e.share >= 0.01; }).slice(0, 3);
      var li = el("li", {"data-actor": a.actor, "data-probability": String(a.probability)}, [
        el("div", {}, [culpa.swatch(c), " ", el("strong", {text: a.actor}), " — " + culpa.plain(a.probability)]),
        el("div", {class: "pbar"}, [bar]),
        doc.combiner ? el("div", {class: "hint members", "data-hawkes": String(a.hawkes_probability),
          "data-trees": String(a.trees_probability),
          text: "Hawkes model " + culpa.pct(a.hawkes_probability) + ", trees " + culpa.pct(a.trees_probability)}) : null,
        el("div", {class: "hint"}, ["background (its usual ground and rate): " + culpa.pct(a.background_share)].concat(
          reasons.length ? ["; raised by "] : [], [].concat.apply([], reasons.map(function (e, k) {
            var text = e.id + " (" + e.date + ", " + Math.round(e.distance_km) + " km, " + culpa.pct(e.share) + ")";
            var item = byId[e.id] ? el("button", {type: "button", class: "link", "data-event": e.id, text: text,
              title: "Open this event: its record and chain", onclick: function () { open(e.id); }}) : text;
            return k ? [", ", item] : [item];
          }))))]);
      ol.appendChild(li);
      if (i < 3) {
        (a.top_events || []).forEach(function (t) {
          var e = byId[t.id];
          if (!e || t.share < 0.01) { return; }
          L.polyline([[body.lat, body.lon], [lat(e), lon(e)]], {color: c, weight: 1.5, opacity: 0.8, dashArray: "3 3"}).addTo(askLayer);
          L.circleMarker([lat(e), lon(e)], {radius: 7, color: c, weight: 3, fillColor: "#fff", fillOpacity: 0.6})
            .bindTooltip(t.id + " " + t.date + ": raised " + a.actor + " (" + culpa.pct(t.share) + ")").addTo(askLayer);
        });
      }
    });
    box.appendChild(ol);
    if (doc.combiner) {
      var w = doc.combiner.weights;
      box.appendChild(el("p", {class: "hint", "data-testid": "combiner",
        "data-weight-hawkes": String(w.hawkes), "data-weight-trees": String(w.trees),
        text: "Each probability pools the two members: ∝ Hawkes^" + w.hawkes.toFixed(2) + " · trees^" +
          w.trees.toFixed(2) + " (" + doc.combiner.calibration + " calibration: " + doc.combiner.why +
          "; the two " + (doc.combiner.members_agree === false ? "disagree" : "agree") +
          " on the most likely actor)."}));
    }
    if (doc.actors.length > actors.length) {
      box.appendChild(el("p", {class: "hint", text: (doc.actors.length - actors.length) + " more actors below 0.1 %"}));
    }
    detail.appendChild(box);
  }

  /* ---- filters ---- */
  $("f-actor").addEventListener("change", function () { state.actor = this.value; apply(); });
  $("f-type").addEventListener("change", function () { state.type = this.value; apply(); });
  $("f-status").addEventListener("change", function () { state.status = this.value; apply(); });
  $("f-since").addEventListener("change", function () { state.since = parseDay(this.value); if (state.since !== null && state.until === null) { state.until = state.extent[1]; } apply(); });
  $("f-until").addEventListener("change", function () { var u = parseDay(this.value); state.until = u === null ? null : u + DAY; if (state.until !== null && state.since === null) { state.since = state.extent[0]; } apply(); });
  $("f-reset").addEventListener("click", function () {
    state.actor = state.type = state.status = ""; state.since = state.until = null;
    ["f-actor", "f-type", "f-status"].forEach(function (id) { $(id).value = ""; });
    syncDates(); apply();
  });

  loadAll().then(setUp).catch(culpa.failed("The events could not be loaded"));
})();
