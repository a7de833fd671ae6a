/* What every workbench page shares: the JSON API (with the session's CSRF token for writes),
   messages instead of blank pages, plain-language probabilities and the report's colours. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("culpa-config").textContent);

  function cookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var kv = parts[i].split("=");
      if (kv[0] === name) { return decodeURIComponent(kv.slice(1).join("=")); }
    }
    return null;
  }

  /* fetch the API; resolves to the JSON body, rejects with an Error carrying status and body. */
  function api(method, path, body, opts) {
    opts = opts || {};
    var headers = {"Accept": "application/json"};
    var init = {method: method, headers: headers, credentials: "same-origin"};
    if (method !== "GET" && method !== "HEAD") {
      var csrf = cookie("culpa_csrf");
      if (csrf) { headers["X-CSRF-Token"] = csrf; }
    }
    if (body !== undefined) {
      if (opts.yaml) { headers["Content-Type"] = "application/yaml"; init.body = body; }
      else { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    }
    return fetch(path, init).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = {error: text}; }
        if (!resp.ok || resp.status === 202) {  // 202: a job is making the answer; ask again
          if (resp.status === 401 && !opts.noLogin) { location.reload(); }
          var msg = (data && (data.error || data.message)) || (resp.status + " " + resp.statusText);
          if (data && data.path && msg.indexOf(data.path) < 0) { msg = data.path + ": " + msg; }
          var err = new Error(msg);
          err.status = resp.status; err.body = data;
          throw err;
        }
        return data;
      });
    });
  }

  /* call() -> a promise of the API; while the server's model is still being fitted (503, or
     202 while a job makes the model for an earlier day), say so and ask again every 2 s. */
  function whenReady(call, onWait) {
    return call().catch(function (err) {
      if (err.status !== 503 && err.status !== 202) { throw err; }
      if (onWait) { onWait(err); }
      return new Promise(function (resolve) { setTimeout(resolve, 2000); }).then(function () { return whenReady(call, onWait); });
    });
  }

  /* A message at the top of the page (errors never leave a blank page). */
  function message(text, kind, keepMs) {
    var box = document.getElementById("messages");
    var div = document.createElement("div");
    div.className = "message" + (kind ? " " + kind : "");
    div.textContent = text;
    box.appendChild(div);
    if (keepMs !== 0) { setTimeout(function () { div.remove(); }, keepMs || 6000); }
    return div;
  }
  function failed(what) {
    return function (err) { message(what + ": " + (err && err.message ? err.message : err), "error", 0); };
  }

  /* "almost certain (96 %)" */
  function words(p) {
    for (var i = 0; i < config.estimative.length; i++) {
      if (p < config.estimative[i][0]) { return config.estimative[i][1]; }
    }
    return config.estimative[config.estimative.length - 1][1];
  }
  function pct(p) {
    if (p === null || p === undefined || !isFinite(p)) { return "n/a"; }
    var v = p * 100;
    var s = v >= 99.5 || v < 0.5 ? (v < 0.05 ? "<0.1" : v.toFixed(1)) : v.toFixed(0);
    if (v > 99.5 && v < 100) { s = v.toFixed(1); }
    return s + " %";
  }
  function plain(p) { return words(p) + " (" + pct(p) + ")"; }

  /* Actor -> colour, the report's palette, the same actor always the same colour on a page. */
  var colours = {};
  var next = 0;
  function colour(actor) {
    if (!actor) { return config.unattributed_colour; }
    if (!(actor in colours)) { colours[actor] = config.palette[next++ % config.palette.length]; }
    return colours[actor];
  }
  function setOrder(actors) { actors.forEach(colour); }

  /* el("div", {class: "x", text: "y"}, [children]) */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    attrs = attrs || {};
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) { return; }
      if (k === "text") { node.textContent = v; }
      else if (k === "class") { node.className = v; }
      else if (k.slice(0, 2) === "on") { node.addEventListener(k.slice(2), v); }
      else if (k === "value") { node.value = v; }
      else { node.setAttribute(k, v === true ? "" : v); }
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) { return; }
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  function swatch(c) { var s = el("span", {class: "swatch"}); s.style.background = c; return s; }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } return node; }

  var logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", function () {
      api("POST", "/api/logout", {}).then(function () { location.href = "/"; }, failed("Logging out failed"));
    });
  }

  window.culpa = {config: config, api: api, whenReady: whenReady, message: message, failed: failed, words: words,
                  pct: pct, plain: plain, colour: colour, setOrder: setOrder, el: el,
                  swatch: swatch, clear: clear};
})();
