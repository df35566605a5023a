// Test harness for the passkey browser tests: the password step and a
// few fetches the product's webauthn.js leaves to the page. Served on
// the server's own origin under a strict CSP (no inline script).
(function () {
  "use strict";
  function json(method, path, body, csrf) {
    var h = { "Content-Type": "application/json" };
    if (csrf) { h["X-CSRF-Token"] = csrf; }
    return fetch(path, { method: method, headers: h, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin" })
      .then(function (r) {
        return r.text().then(function (t) { return { status: r.status, body: t ? JSON.parse(t) : {} }; });
      });
  }
  window.harness = Object.freeze({
    login: function (username, password) {
      return json("POST", "/auth/login", { username: username, password: password }).then(function (r) {
        if (r.status !== 200) { throw new Error("login: " + r.status); }
        return r.body;
      });
    },
    status: function (path) {
      return fetch(path, { credentials: "same-origin" }).then(function (r) { return r.status; });
    },
    logout: function (csrf) {
      return json("POST", "/auth/logout", null, csrf).then(function (r) { return r.status; });
    },
    // assert runs navigator.credentials.get on server options (JSON
    // text) and returns the credential JSON, without calling the server.
    assert: function (optionsJSON) {
      var c = window.phivaultWebAuthn.codec;
      return navigator.credentials.get(c.requestOptions(JSON.parse(optionsJSON)))
        .then(function (cred) { return JSON.stringify(c.credentialJSON(cred)); },
              function (e) { return "error:" + e.name; });
    }
  });
})();
