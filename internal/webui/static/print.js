// print.js: the Print button of the record summary (no inline script
// under the CSP). The page's print stylesheet (app.css, @media print)
// leaves the site's header, navigation and buttons out.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var b = document.getElementById("print-summary");
  if (b) b.addEventListener("click", function () { window.print(); });
});
