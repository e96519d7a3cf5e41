// Small conveniences only; every page works without JavaScript.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.textContent.trim()).then(() => { button.textContent = "Copied"; });
  }
});

// Conditional fields: a wrapper with data-hidden-unless='{"field": name, "values": [...]}' (or a
// list of such conditions) is shown only while each named field is shown and has one of the
// values. The server applies the same declaration, so with JavaScript off every field shows and
// the server ignores the hidden ones.
function conditionsOf(el) {
  const parsed = JSON.parse(el.dataset.hiddenUnless);
  return Array.isArray(parsed) ? parsed : [parsed];
}
function wrapperOf(form, name) {
  const input = form.elements[name];
  const node = input && (input.length && !input.tagName ? input[0] : input);
  return node ? node.closest("[data-hidden-unless], .field") : null;
}
function isShown(form, el, depth = 0) {
  if (!el || !el.dataset.hiddenUnless || depth > 10) return true;
  return conditionsOf(el).every(({ field, values }) => {
    const input = form.elements[field];
    if (!input) return true;
    const wrapper = wrapperOf(form, field);
    const fieldset = input.closest ? input.closest("fieldset[data-hidden-unless]") : null;
    return isShown(form, wrapper, depth + 1) && isShown(form, fieldset, depth + 1)
      && values.includes(input.value);
  });
}
function applyConditions(form) {
  form.querySelectorAll("[data-hidden-unless]").forEach((el) => {
    el.hidden = !isShown(form, el);
  });
}
document.querySelectorAll("form").forEach((form) => {
  if (!form.querySelector("[data-hidden-unless]")) return;
  applyConditions(form);
  form.addEventListener("change", () => applyConditions(form));
});

// A SIP port left at the usual value follows the transport (5061 for TLS, 5060 otherwise).
document.addEventListener("change", (event) => {
  const port = document.querySelector(`[data-port-for="${event.target.name}"]`);
  if (!port) return;
  const usual = event.target.value === "tls" ? "5061" : "5060";
  port.placeholder = usual;
  if (["5060", "5061"].includes(port.value)) port.value = usual;
});

// A link marked data-popup opens in a small window (the MBG's approval page, for example).
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-popup]");
  if (!link) return;
  const win = window.open(link.href, link.target || "popup", "width=640,height=720");
  if (win) event.preventDefault();
});
// A page marked data-close-popup, opened as such a window, refreshes its opener and closes.
if (document.querySelector("[data-close-popup]") && window.opener && !window.opener.closed) {
  window.opener.location.reload();
  setTimeout(() => window.close(), 1500);
}

// Selections in long lists: tick the page, or every matching row on every page ("select all").
// With select-all on, unticking a row records it as an exclusion (sent as "excluded" ids).
document.querySelectorAll("form[data-select-all-form]").forEach((form) => {
  const all = form.querySelector("[data-select-all]");
  const pageBox = form.querySelector("[data-select-page]");
  const rows = [...form.querySelectorAll("input[data-row]")];
  const count = form.querySelector("[data-selection-count]");
  const excludedName = (row) => row.dataset.excludedName || "excluded";
  const sync = () => {
    form.querySelectorAll("input[data-exclusion]").forEach((el) => el.remove());
    if (all && all.checked) {
      rows.filter((r) => !r.checked).forEach((r) => {
        const hidden = document.createElement("input");
        Object.assign(hidden, { type: "hidden", name: excludedName(r), value: r.value });
        hidden.dataset.exclusion = "1";
        form.appendChild(hidden);
      });
    }
    if (count) {
      const ticked = rows.filter((r) => r.checked).length;
      count.textContent = all && all.checked ? "All matching rows are selected, except the ones you untick."
        : ticked ? `${ticked} selected on this page.` : "";
    }
  };
  if (pageBox) pageBox.addEventListener("change", () => { rows.forEach((r) => { r.checked = pageBox.checked; }); sync(); });
  if (all) all.addEventListener("change", () => { rows.forEach((r) => { r.checked = all.checked; }); if (pageBox) pageBox.checked = all.checked; sync(); });
  rows.forEach((r) => r.addEventListener("change", sync));
  // With select-all on, ticked rows are not sent as ids (the filter already covers them).
  form.addEventListener("submit", () => { if (all && all.checked) rows.forEach((r) => { r.disabled = true; }); sync(); });
});

// Generate PIN: six digits from the browser's cryptographic random source.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-generate-pin]");
  if (!button || !window.crypto) return;
  const target = document.querySelector(button.dataset.generatePin);
  const digits = new Uint32Array(6);
  window.crypto.getRandomValues(digits);
  target.value = [...digits].map((d) => d % 10).join("");
  target.type = "text";
});

// Placeholder buttons insert their text at the cursor of the field they belong to.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-insert]");
  if (!button) return;
  const field = document.querySelector(button.closest("[data-insert-into]").dataset.insertInto);
  const start = field.selectionStart ?? field.value.length;
  const end = field.selectionEnd ?? field.value.length;
  field.value = field.value.slice(0, start) + button.dataset.insert + field.value.slice(end);
  field.focus();
  field.selectionStart = field.selectionEnd = start + button.dataset.insert.length;
});
