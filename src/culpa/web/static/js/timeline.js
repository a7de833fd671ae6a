/* A brushable timeline: events per period as stacked bars coloured by actor (SVG). Dragging
   across it selects a period (onBrush(fromMs, toMs)); a click without a drag, or Escape, clears
   it. The date inputs beside the map do the same from the keyboard. */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var DAY = 86400000;

  function svgEl(tag, attrs) {
    var n = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    return n;
  }

  function Timeline(container, onBrush) {
    this.container = container;
    this.onBrush = onBrush;
    this.range = null;
    this.width = 0;
    var self = this;
    container.setAttribute("tabindex", "0");
    container.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && self.range) { self.setRange(null, true); }
    });
    window.addEventListener("resize", function () { if (self.data) { self.draw(); } });
  }

  Timeline.prototype.render = function (events, extent, actors) {
    this.data = {events: events, extent: extent, actors: actors};
    this.draw();
  };

  Timeline.prototype.draw = function () {
    var c = this.container, d = this.data, self = this;
    culpa.clear(c);
    var W = c.clientWidth || 800, H = 110, padL = 34, padB = 18, padT = 6;
    this.width = W; this.padL = padL;
    var t0 = d.extent[0], t1 = Math.max(d.extent[1], d.extent[0] + DAY);
    var span = (t1 - t0) / DAY;
    var step = span > 3650 ? 365.25 : span > 730 ? 30.44 : span > 120 ? 7 : 1;
    var nb = Math.max(1, Math.ceil(span / step));
    var bw = (W - padL) / nb;
    var counts = [];
    for (var i = 0; i < nb; i++) { counts.push({}); }
    d.events.forEach(function (e) {
      var b = Math.min(nb - 1, Math.max(0, Math.floor((e.t - t0) / DAY / step)));
      var a = e.actor || "";
      counts[b][a] = (counts[b][a] || 0) + 1;
    });
    var max = 1;
    counts.forEach(function (cb) {
      var s = 0; Object.keys(cb).forEach(function (k) { s += cb[k]; }); max = Math.max(max, s);
    });
    var svg = svgEl("svg", {viewBox: "0 0 " + W + " " + H, role: "img",
                            "aria-label": "Events per " + (step >= 365 ? "year" : step >= 30 ? "month" : step >= 7 ? "week" : "day")});
    var plotH = H - padB - padT;
    counts.forEach(function (cb, b) {
      var y = H - padB;
      d.actors.concat([""]).forEach(function (a) {
        var n = cb[a];
        if (!n) { return; }
        var h = n / max * plotH;
        y -= h;
        svg.appendChild(svgEl("rect", {class: "bar", x: padL + b * bw, y: y, width: Math.max(1, bw - 0.5),
                                       height: h, fill: culpa.colour(a || null)}));
      });
    });
    svg.appendChild(svgEl("line", {x1: padL, x2: W, y1: H - padB, y2: H - padB, stroke: "#9aa1ae"}));
    var lab = svgEl("text", {x: 2, y: padT + 9}); lab.textContent = String(max); svg.appendChild(lab);
    var years = Math.max(1, Math.round(span / 365.25 / 8));
    var y0 = new Date(t0).getUTCFullYear(), y1 = new Date(t1).getUTCFullYear();
    for (var yr = y0; yr <= y1 + 1; yr++) {
      var tt = Date.UTC(yr, 0, 1);
      if (tt < t0 || tt > t1 || (yr - y0) % years) { continue; }
      var x = this.x(tt);
      svg.appendChild(svgEl("line", {x1: x, x2: x, y1: H - padB, y2: H - padB + 4, stroke: "#9aa1ae"}));
      var t = svgEl("text", {x: x + 2, y: H - 4}); t.textContent = String(yr); svg.appendChild(t);
    }
    if (span < 800) {
      for (var m = 0; m < span / 30.44 + 1; m++) {
        var dm = new Date(t0); var tm = Date.UTC(dm.getUTCFullYear(), dm.getUTCMonth() + m, 1);
        if (tm < t0 || tm > t1 || new Date(tm).getUTCMonth() === 0) { continue; }
        var xm = this.x(tm);
        svg.appendChild(svgEl("line", {x1: xm, x2: xm, y1: H - padB, y2: H - padB + 3, stroke: "#c0c4cc"}));
      }
    }
    this.brushRect = svgEl("rect", {class: "brush", x: 0, y: padT, width: 0, height: plotH, visibility: "hidden"});
    svg.appendChild(this.brushRect);
    c.appendChild(svg);
    this.svg = svg;
    this.showRange();
    var start = null;
    svg.addEventListener("mousedown", function (e) {
      e.preventDefault();
      start = self.t(self.px(e));
      var move = function (ev) {
        var now = self.t(self.px(ev));
        self.range = [Math.min(start, now), Math.max(start, now)];
        self.showRange();
      };
      var up = function (ev) {
        document.removeEventListener("mousemove", move);
        document.removeEventListener("mouseup", up);
        var end = self.t(self.px(ev));
        if (Math.abs(self.x(end) - self.x(start)) < 3) { self.setRange(null, true); }
        else { self.setRange([Math.min(start, end), Math.max(start, end)], true); }
      };
      document.addEventListener("mousemove", move);
      document.addEventListener("mouseup", up);
    });
  };

  Timeline.prototype.px = function (e) {
    var r = this.svg.getBoundingClientRect();
    return (e.clientX - r.left) * (this.width / r.width);
  };
  Timeline.prototype.x = function (t) {
    var e = this.data.extent, t1 = Math.max(e[1], e[0] + DAY);
    return this.padL + (t - e[0]) / (t1 - e[0]) * (this.width - this.padL);
  };
  Timeline.prototype.t = function (x) {
    var e = this.data.extent, t1 = Math.max(e[1], e[0] + DAY);
    var f = Math.min(1, Math.max(0, (x - this.padL) / (this.width - this.padL)));
    return e[0] + f * (t1 - e[0]);
  };
  Timeline.prototype.showRange = function () {
    if (!this.brushRect) { return; }
    if (!this.range) { this.brushRect.setAttribute("visibility", "hidden"); return; }
    var x0 = this.x(this.range[0]), x1 = this.x(this.range[1]);
    this.brushRect.setAttribute("x", x0);
    this.brushRect.setAttribute("width", Math.max(1, x1 - x0));
    this.brushRect.setAttribute("visibility", "visible");
  };
  Timeline.prototype.setRange = function (range, notify) {
    this.range = range;
    this.showRange();
    if (notify) { this.onBrush(range); }
  };

  window.CulpaTimeline = Timeline;
})();
