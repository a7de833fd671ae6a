/* Draws every chart from the JSON embedded beside it; marks <html data-charts-drawn="N">. */
(function () {
  var root = document.documentElement;
  var config = JSON.parse(document.getElementById("plotly-config").textContent);
  var specs = document.querySelectorAll('script[type="application/json"][data-figure]');
  if (typeof window.Plotly === "undefined") {
    window.culpaReportError("the charting library did not load; the tables below still hold every number");
    root.setAttribute("data-charts-drawn", "0");
    return;
  }
  var jobs = [];
  Array.prototype.forEach.call(specs, function (node) {
    var target = document.getElementById(node.getAttribute("data-figure"));
    try {
      var spec = JSON.parse(node.textContent);
      jobs.push(window.Plotly.newPlot(target, spec.data, spec.layout, config).then(
        function () { target.setAttribute("data-drawn", "true"); return 1; },
        function (err) { window.culpaReportError("chart " + target.id + ": " + err); return 0; }));
    } catch (err) {
      window.culpaReportError("chart " + (target && target.id) + ": " + err);
    }
  });
  Promise.all(jobs).then(function (done) {
    root.setAttribute("data-charts-drawn", String(done.reduce(function (a, b) { return a + b; }, 0)));
  });
  // Printing: fit every chart to the paper's width (A4 and Letter, with margins) and unfold the
  // folded tables; put both back afterwards.
  var PRINT_WIDTH = 700;
  var opened = [];
  function plots() { return document.querySelectorAll(".js-plotly-plot"); }
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details:not([open])"), function (d) {
      d.open = true; opened.push(d);
    });
    Array.prototype.forEach.call(plots(), function (el) {
      try { window.Plotly.relayout(el, {width: PRINT_WIDTH}); } catch (err) { /* not drawn */ }
    });
  });
  window.addEventListener("afterprint", function () {
    while (opened.length) { opened.pop().open = false; }
    Array.prototype.forEach.call(plots(), function (el) {
      try { window.Plotly.relayout(el, {width: null, autosize: true}); } catch (err) { /* not drawn */ }
    });
  });
})();
