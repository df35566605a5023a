// localtime.js: shows each <time class="local-time" datetime="…"> in the
// browser's own time zone. The server renders its own local time with
// the zone named; without this script (or without Intl) that stays, so
// a time is never shown without its zone. No data leaves the page.
"use strict";
(function () {
  function localise() {
    if (typeof Intl === "undefined" || !Intl.DateTimeFormat) return;
    var fmt;
    try {
      fmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
    } catch (e) {
      return;
    }
    var els = document.querySelectorAll("time.local-time[datetime]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      el.title = el.textContent; // the server's time, on hover
      el.textContent = fmt.format(d);
      el.dataset.localised = "1";
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", localise); else localise();
})();
