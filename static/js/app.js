// Small progressive enhancements. No inline scripts anywhere (strict CSP).
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-toggle]");
  if (toggle) {
    const target = document.getElementById(toggle.dataset.toggle);
    if (target) target.hidden = !target.hidden;
  }
});
