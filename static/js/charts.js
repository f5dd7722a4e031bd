// Draws the Plotly figures of a monitoring page. Strict CSP: no inline script, no eval.
// The server puts {"<container id>": {data, layout}} in <script type="application/json" id="figures">
// (Django's json_script); we draw each figure into the element with that id, and again
// whenever htmx swaps in new charts (range picker).
(function () {
  "use strict";
  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  var generation = 0;

  function drawAll() {
    var source = document.getElementById("figures");
    if (!source || typeof Plotly === "undefined") return;
    var figures;
    try {
      figures = JSON.parse(source.textContent);
    } catch (err) {
      console.error("charts.js: figures are not valid JSON", err);
      return;
    }
    generation += 1;
    Object.keys(figures).forEach(function (id) {
      var el = document.getElementById(id);
      if (!el) return;
      var fig = figures[id];
      Plotly.newPlot(el, fig.data || [], fig.layout || {}, CONFIG).then(function () {
        el.dataset.drawn = String(generation);
      });
    });
    document.documentElement.dataset.chartsGeneration = String(generation);
  }

  // Custom range: only ask the server once both dates are filled in.
  document.addEventListener("htmx:confirm", function (event) {
    var form = event.target.closest ? event.target.closest("#range-picker") : null;
    if (!form) return;
    var range = form.querySelector("[name=range]");
    var start = form.querySelector("[name=start]");
    var end = form.querySelector("[name=end]");
    if (range && range.value === "custom" && (!start.value || !end.value)) event.preventDefault();
  });

  function toggleCustom() {
    var form = document.getElementById("range-picker");
    if (!form) return;
    var custom = form.querySelector("[name=range]").value === "custom";
    form.querySelectorAll(".custom-range").forEach(function (el) {
      el.hidden = !custom;
    });
  }

  document.addEventListener("change", function (event) {
    if (event.target.name === "range") toggleCustom();
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && (event.target.id === "dashboard-charts" || event.target.querySelector("#figures"))) drawAll();
  });
  document.addEventListener("DOMContentLoaded", function () {
    toggleCustom();
    drawAll();
  });
})();
