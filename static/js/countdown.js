// Deadline countdowns: <time data-countdown="ISO 8601"> shows the time left, updated each minute.
(function () {
  function render(el) {
    var left = Date.parse(el.getAttribute("data-countdown")) - Date.now();
    if (isNaN(left)) return;
    if (left <= 0) { el.textContent = "deadline passed"; el.classList.add("overdue"); return; }
    var minutes = Math.floor(left / 60000), days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    el.textContent = days + " d " + hours + " h " + (minutes % 60) + " min";
  }
  function tick() { document.querySelectorAll("time[data-countdown]").forEach(render); }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 60000); });
  document.addEventListener("htmx:afterSwap", tick);
})();
