/* The login form: POST /api/login, then show the page that was asked for. */
(function () {
  "use strict";
  var form = document.getElementById("login-form");
  var error = document.getElementById("login-error");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    error.hidden = true;
    var body = {username: form.username.value, password: form.password.value};
    culpa.api("POST", "/api/login", body, {noLogin: true}).then(function () {
      location.href = location.pathname === "/login" ? "/" : location.pathname + location.search;
    }, function (err) {
      error.textContent = err.message;
      error.hidden = false;
      form.password.select();
    });
  });
})();
