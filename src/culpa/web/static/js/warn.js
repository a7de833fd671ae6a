/* Early warning: watched sites on the map coloured by level, with the actors and the recent
   events that drive each (POST /api/warn, the same answer as `culpa warn --json`). */
(function () {
  "use strict";
  var el = culpa.el;
  var $ = function (id) { return document.getElementById(id); };
  var LEVEL_COLOUR = {high: "#a4161a", elevated: "#e69f00", normal: "#1b7a3a"};
  var base = culpaMap.make("map");
  var map = base.map;
  var layer = L.layerGroup().addTo(map);
  var detail = $("detail");

  function parseSites(text) {
    var sites = [];
    text.split("\n").forEach(function (line, i) {
      line = line.trim();
      if (!line || line[0] === "#") { return; }
      var p = line.split(",").map(function (s) { return s.trim(); });
      if (p.length < 4) { throw new Error("line " + (i + 1) + ": expected name, lat, lon, radius km"); }
      var s = {name: p[0], lat: parseFloat(p[1]), lon: parseFloat(p[2]), radius_km: parseFloat(p[3])};
      if (![s.lat, s.lon, s.radius_km].every(isFinite)) { throw new Error("line " + (i + 1) + ": lat, lon and radius must be numbers"); }
      sites.push(s);
    });
    if (!sites.length) { throw new Error("add at least one site (name, lat, lon, radius km)"); }
    return sites;
  }

  function legend() {
    var box = culpa.clear($("warn-legend"));
    ["high", "elevated", "normal"].forEach(function (l) { box.appendChild(el("div", {class: "key"}, [culpa.swatch(LEVEL_COLOUR[l]), l])); });
  }

  function show(doc) {
    layer.clearLayers();
    culpa.clear(detail);
    detail.appendChild(el("h2", {text: "From " + doc.at + ", " + doc.horizon_days + " days ahead"}));
    if (doc.model) { detail.appendChild(el("p", {class: "hint", text: "The model learnt from the events until " + doc.model.fitted_until + "."})); }
    var bounds = [];
    doc.sites.forEach(function (s) {
      var c = LEVEL_COLOUR[s.level] || "#666";
      bounds.push([s.latitude, s.longitude]);
      L.circle([s.latitude, s.longitude], {radius: s.radius_km * 1000, color: c, weight: 3, fillColor: c, fillOpacity: 0.25})
        .bindTooltip(s.name + ": " + s.level).addTo(layer);
      (s.drivers || []).forEach(function (d) {
        var put = function (y, x) {
          L.polyline([[s.latitude, s.longitude], [y, x]], {color: culpa.colour(d.actor), weight: 1.5, dashArray: "3 3"}).addTo(layer);
          L.circleMarker([y, x], {radius: 6, color: "#fff", weight: 1, fillColor: culpa.colour(d.actor), fillOpacity: 0.95})
            .bindTooltip(d.id + " " + d.date + " " + d.actor + ": drives " + s.name + " (" + culpa.pct(d.share) + ")").addTo(layer);
        };
        if (d.latitude !== undefined) { put(d.latitude, d.longitude); return; }
        culpa.api("GET", "/api/events/" + encodeURIComponent(d.id)).then(function (e) { put(e.latitude, e.longitude); }, function () {});
      });
      var sec = el("section", {"data-site": s.name, "data-level": s.level}, [
        el("h3", {}, [s.name + ": ", el("span", {class: "level-" + s.level, text: s.level})])]);
      var actors = Object.keys(s.actors || {}).slice(0, 4);
      var t = el("table", {}, [el("tr", {}, ["actor", "expected", "usual", "ratio", "P(at least one)"].map(function (h) { return el("th", {text: h}); }))]);
      actors.forEach(function (a) {
        var v = s.actors[a];
        t.appendChild(el("tr", {}, [el("td", {}, [culpa.swatch(culpa.colour(a)), " " + a]), el("td", {text: v.expected.toFixed(2)}),
          el("td", {text: v.baseline.toFixed(2)}), el("td", {text: v.ratio.toFixed(1) + "×"}), el("td", {text: culpa.plain(v.p_any)})]));
      });
      sec.appendChild(t);
      if (s.drivers && s.drivers.length) {
        var ul = el("ul");
        s.drivers.forEach(function (d) { ul.appendChild(el("li", {text: d.id + " " + d.date + " " + d.actor + ", " + Math.round(d.distance_km) + " km away: +" + d.contribution.toFixed(2) + " expected (" + culpa.pct(d.share) + ")"})); });
        sec.appendChild(el("p", {class: "hint", text: "Driven by these recent events:"}));
        sec.appendChild(ul);
      } else { sec.appendChild(el("p", {class: "hint", text: "No recent event drives it: its background rate."})); }
      detail.appendChild(sec);
    });
    if (bounds.length) { map.fitBounds(L.latLngBounds(bounds).pad(0.5), {maxZoom: 9, animate: false}); }
  }

  $("warn-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var sites;
    try { sites = parseSites($("w-sites").value); } catch (e) { culpa.message(e.message, "error"); return; }
    culpa.clear(detail).appendChild(el("p", {class: "hint", text: "Computing the warnings..."}));
    var body = {sites: sites, at: $("w-at").value, horizon_days: parseFloat($("w-horizon").value)};
    culpa.whenReady(function () { return culpa.api("POST", "/api/warn", body); }, function () {
      culpa.clear(detail).appendChild(el("p", {class: "hint", text: "A model for that day is being fitted; the warnings follow when it is ready..."}));
    }).then(show, function (err) { culpa.clear(detail).appendChild(el("p", {class: "error", text: "No warning: " + err.message})); });
  });

  map.on("click", function (e) {
    var line = "site " + ($("w-sites").value.split("\n").filter(Boolean).length + 1) + ", " + e.latlng.lat.toFixed(3) + ", " + e.latlng.lng.toFixed(3) + ", 25";
    $("w-sites").value = ($("w-sites").value.trim() ? $("w-sites").value.trim() + "\n" : "") + line;
  });

  /* Start from the store: the day after its last event, and its busiest places as sites. */
  culpa.api("GET", "/api/events?limit=1000&offset=0").then(function (first) {
    var ev = first.events;
    if (!ev.length) { return; }
    var last = ev.map(function (e) { return String(e.time_start || e.time || e.date).slice(0, 10); }).sort().pop();
    $("w-at").value = new Date(Date.parse(last + "T00:00:00Z") + 86400000).toISOString().slice(0, 10);
    var groups = {};
    ev.forEach(function (e) {
      var n = e.admin2 || e.admin1; if (!n) { return; }
      var g = groups[n] || (groups[n] = {n: 0, lat: 0, lon: 0}); g.n++; g.lat += e.latitude; g.lon += e.longitude;
    });
    var top = Object.keys(groups).sort(function (a, b) { return groups[b].n - groups[a].n; }).slice(0, 4);
    if (!$("w-sites").value.trim()) {
      $("w-sites").value = top.map(function (n) { var g = groups[n]; return n.replace(/,/g, " ") + ", " + (g.lat / g.n).toFixed(3) + ", " + (g.lon / g.n).toFixed(3) + ", 25"; }).join("\n");
    }
  }, culpa.failed("The events could not be loaded"));
  legend();
})();
