// idle.js: warns before the session's idle timeout (HIPAA automatic
// logoff) and offers "Stay signed in". The timeout comes from
// <body data-idle-timeout="seconds">; the warning is the
// #idle-warning element of the layout. No inline script: the CSP
// allows scripts from 'self' only.
(function () {
  "use strict";
  var timeout = parseInt(document.body.getAttribute("data-idle-timeout") || "0", 10);
  var box = document.getElementById("idle-warning");
  var stay = document.getElementById("idle-stay");
  var countdown = document.getElementById("idle-countdown");
  if (!timeout || !box || !stay || !countdown) {
    return;
  }
  // The server records activity at most once a minute, so the session
  // may end up to a minute before timeout seconds after this page
  // loaded: count down to that earlier moment.
  var effective = Math.max(60, timeout - 60);
  var warnBefore = Math.min(120, Math.floor(effective / 2));
  var deadline = 0;
  var timers = [];

  function clearTimers() {
    timers.forEach(function (t) { clearTimeout(t); clearInterval(t); });
    timers = [];
  }
  function schedule() {
    clearTimers();
    deadline = Date.now() + effective * 1000;
    timers.push(setTimeout(warn, (effective - warnBefore) * 1000));
    timers.push(setTimeout(end, effective * 1000));
  }
  function update() {
    var s = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    var sec = s % 60;
    countdown.textContent = "Time left: " + Math.floor(s / 60) + ":" + (sec < 10 ? "0" : "") + sec + ".";
  }
  function warn() {
    update();
    box.hidden = false;
    timers.push(setInterval(update, 1000));
    stay.focus();
  }
  function end() {
    clearTimers();
    // Leave the page so no health information stays on screen. The
    // server ends the session on its own; /login shows the sign-in form,
    // or returns to the start page if the session is still in use in
    // another tab.
    window.location.assign("/login");
  }
  function csrf() {
    var f = document.querySelector('form[action="/logout"] input[name="csrf"]');
    return f ? f.value : "";
  }
  stay.addEventListener("click", function () {
    fetch("/session/keepalive", {
      method: "POST",
      credentials: "same-origin",
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "csrf=" + encodeURIComponent(csrf())
    }).then(function (r) {
      if (r.status === 204) {
        box.hidden = true;
        schedule();
      } else {
        end();
      }
    }, end);
  });
  schedule();
}());
