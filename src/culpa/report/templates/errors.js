/* Runs first. Any error on this page (a script error, a rejected promise, a resource or
   connection the page's Content-Security-Policy refused) is listed in #js-errors, so a reader
   sees that a chart is missing and why, and tests read it from the DOM. */
(function () {
  var pending = [];
  function box() { return document.getElementById("js-errors"); }
  function flush() {
    var el = box();
    if (!el) { return; }
    while (pending.length) {
      var li = document.createElement("li");
      li.textContent = pending.shift();
      el.querySelector("ul").appendChild(li);
      el.hidden = false;
    }
  }
  function report(msg) {
    pending.push(String(msg));
    if (document.readyState !== "loading") { flush(); }
  }
  window.culpaReportError = report;
  window.addEventListener("error", function (e) {
    if (e.target && e.target !== window && (e.target.src || e.target.href)) {
      report("could not load " + (e.target.src || e.target.href));
    } else {
      report((e.message || "error") + (e.lineno ? " (line " + e.lineno + ")" : ""));
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    report("unhandled rejection: " + (e.reason && e.reason.message ? e.reason.message : e.reason));
  });
  document.addEventListener("securitypolicyviolation", function (e) {
    report("blocked by the page's offline policy: " + e.violatedDirective + " " + e.blockedURI);
  });
  var consoleError = window.console && window.console.error;
  if (consoleError) {
    window.console.error = function () {
      report("console.error: " + Array.prototype.join.call(arguments, " "));
      return consoleError.apply(window.console, arguments);
    };
  }
  document.addEventListener("DOMContentLoaded", flush);
})();
