// phivault web UI: passkey ceremonies on the sign-in, enrolment and
// Security pages. Loaded after /static/webauthn.js (its codec converts
// the server's JSON options and the browser's credential). Works under
// the UI's CSP: no inline code, same-origin fetches only.
//
// Each <form data-passkey="get|create" data-begin="/path"> is a
// ceremony. On submit the script POSTs the form's csrf field to
// data-begin (the server reads the login challenge from its HttpOnly
// cookie: it is never in the page), runs navigator.credentials with the
// options it gets back, fills the form's hidden "ceremony" and
// "credential" fields and submits the form for real; the server answers
// with the next page. A failure shows a plain message in the form's
// [role=alert] element. Without WebAuthn the forms stay hidden.
(function () {
  "use strict";

  var W = window.phivaultWebAuthn;
  var forms = document.querySelectorAll("form[data-passkey]");
  if (!W || !W.supported()) {
    var note = document.getElementById("passkey-unsupported");
    if (note && forms.length) { note.hidden = false; }
    return;
  }

  function begin(path, csrf) {
    return fetch(path, {
      method: "POST",
      headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: csrf }).toString(),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (j) {
        if (!res.ok) {
          throw new Error(j.error || "The server could not start the passkey step. Try again.");
        }
        return j;
      });
    });
  }

  // message is what the person reads for a failure: the server's plain
  // message, or one for the browser's refusals.
  function message(err) {
    switch (err && err.name) {
      case "NotAllowedError":
        return "The passkey was not used: it was cancelled or took too long. Try again.";
      case "InvalidStateError":
        return "This passkey is already registered for your account.";
      case "SecurityError":
        return "This page cannot use passkeys (it must be opened at the server's own address).";
    }
    return err && err.message ? err.message : "The passkey step failed. Try again.";
  }

  Array.prototype.forEach.call(forms, function (form) {
    var kind = form.getAttribute("data-passkey");
    var path = form.getAttribute("data-begin");
    var alert = form.querySelector("[role=alert]");
    var button = form.querySelector("button[type=submit]");
    form.hidden = false;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      alert.hidden = true;
      button.disabled = true;
      begin(path, form.elements.csrf.value).then(function (b) {
        var call = kind === "create"
          ? navigator.credentials.create(W.codec.creationOptions(b.options))
          : navigator.credentials.get(W.codec.requestOptions(b.options));
        return call.then(function (cred) {
          form.elements.ceremony.value = b.ceremony;
          form.elements.credential.value = JSON.stringify(W.codec.credentialJSON(cred));
          form.submit(); // the server answers with the next page
        });
      }).catch(function (err) {
        button.disabled = false;
        alert.textContent = message(err);
        alert.hidden = false;
      });
    });
  });
})();
