// onboard.js: the invitation link is /enrol#username=…&token=…. The
// fragment never reaches a server (no access log, no Referer); this
// script copies it into the form and removes it from the address bar
// and the history, so the secret does not stay on screen or in the
// browser's history. Without scripts the code is typed into the form.
(function () {
  "use strict";
  var form = document.getElementById("onboard-form");
  if (!form || location.hash.length < 2) {
    return;
  }
  var params = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, "", location.pathname);
  var token = params.get("token");
  var username = params.get("username");
  if (token && token.length <= 128) {
    form.elements.token.value = token;
  }
  if (username && username.length <= 64 && !form.elements.username.value) {
    form.elements.username.value = username;
  }
  if (form.elements.username.value && form.elements.token.value) {
    form.elements.password.focus();
  }
})();
