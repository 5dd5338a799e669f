// Log-in and sign-up forms. The server sets the HttpOnly session cookie; the page only has to go on to `next`.

import { ApiError, api, safeNext } from "./api.js";

const next = safeNext(new URLSearchParams(location.search).get("next") ?? "/");

/** The form's non-empty fields as a JSON body; optional fields left blank are omitted. */
function formBody(form) {
  const body = {};
  for (const [name, value] of new FormData(form)) {
    const text = String(value).trim();
    if (text) body[name] = name === "password" ? String(value) : text;
  }
  return body;
}

function clearInvalid(form) {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

/** Point at the first field the browser already knows is wrong, before a round trip to the server. */
function firstInvalid(form) {
  for (const input of form.querySelectorAll("input")) {
    if (!input.checkValidity()) return input;
  }
  return null;
}

function describeInvalid(input) {
  const label = input.form.querySelector(`label[for="${input.id}"]`);
  return `${label ? label.textContent : input.name}: ${input.validationMessage}`;
}

function wireForm(form, errorBox, submitRequest) {
  form.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    clearInvalid(form);
    errorBox.textContent = "";
    const invalid = firstInvalid(form);
    if (invalid) {
      invalid.setAttribute("aria-invalid", "true");
      errorBox.textContent = describeInvalid(invalid);
      invalid.focus();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await submitRequest(formBody(form));
      location.assign(next);
    } catch (error) {
      errorBox.textContent = error.message;
      const field = error instanceof ApiError && error.field ? form.querySelector(`[name="${error.field}"]`) : null;
      if (field) {
        field.setAttribute("aria-invalid", "true");
        field.focus();
      }
      button.disabled = false;
    }
  });
}

/** Prefill country and language from the browser's locale; the user can still change both. */
function guessLocale() {
  const [language, region] = (navigator.language || "").split("-");
  if (region && /^[A-Za-z]{2}$/.test(region)) document.getElementById("signup-region").value = region.toUpperCase();
  if (language && /^[a-z]{2}$/.test(language)) document.getElementById("signup-language").value = language;
}

wireForm(document.getElementById("login-form"), document.getElementById("login-error"),
  (body) => api("/api/sessions", { method: "POST", body }));
wireForm(document.getElementById("signup-form"), document.getElementById("signup-error"), (body) => {
  if (body.region) body.region = body.region.toUpperCase();
  if (document.getElementById("signup-advertiser").checked) body.roles = ["viewer", "creator", "advertiser"];
  return api("/api/accounts", { method: "POST", body });
});
guessLocale();
