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

// A refused htmx request (a 4xx answer) swaps nothing: say why right after the form (or control)
// that sent it, from the JSON error's details; the note goes once a request of it succeeds.
function htmxErrorAnchor(event) {
  const elt = event.detail.elt;
  return elt && (elt.closest("form") || elt);
}

function htmxErrorText(xhr) {
  try {
    const error = JSON.parse(xhr.responseText).error;
    const details = Object.entries(error.details || {}).map(
      ([field, messages]) => (field === "__all__" ? "" : `${field}: `) + [].concat(messages).join(" "));
    return details.length ? details.join(" ") : error.message;
  } catch (e) {
    return `The request was refused (${xhr.status}).`;
  }
}

document.addEventListener("htmx:responseError", (event) => {
  const anchor = htmxErrorAnchor(event);
  if (!anchor) return;
  let note = anchor.nextElementSibling;
  if (!note || !note.classList.contains("htmx-error")) {
    note = document.createElement("p");
    note.className = "htmx-error error";
    note.setAttribute("role", "alert");
    anchor.after(note);
  }
  note.textContent = htmxErrorText(event.detail.xhr);
});

document.addEventListener("htmx:afterRequest", (event) => {
  const anchor = event.detail.successful && htmxErrorAnchor(event);
  const note = anchor && anchor.nextElementSibling;
  if (note && note.classList.contains("htmx-error")) note.remove();
});
