// Small progressive enhancements. No inline scripts anywhere (strict CSP).
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-toggle]");
  if (toggle) {
    const target = document.getElementById(toggle.dataset.toggle);
    if (target) target.hidden = !target.hidden;
  }
});

// Copy buttons: data-copy names the element whose text is copied (the snippets, the token once).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  const source = button && document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});

// Tabs: the clicked tab is the active one; an in-page tab (#card, #versions) empties the loaded panel.
document.addEventListener("click", (event) => {
  const tab = event.target.closest("nav.tabs a");
  if (!tab || !tab.getAttribute("href").startsWith("#") && !tab.hasAttribute("hx-get")) return;
  tab.parentElement.querySelectorAll("a").forEach((a) => a.classList.toggle("active", a === tab));
  const panel = document.getElementById("tab-panel");
  if (panel && !tab.hasAttribute("hx-get")) panel.replaceChildren();
});
