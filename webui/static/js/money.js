// Shared bits of the money pages: formatting cents, a fresh idempotency key, the page banner.

export const numbers = new Intl.NumberFormat();
const dollars = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

export const $ = (id) => document.getElementById(id);

export function cents(amount) {
  return dollars.format(amount / 100);
}

export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

export function showBanner(text) {
  const banner = $("page-banner");
  banner.textContent = text;
  banner.hidden = false;
}

export function listItem(left, right) {
  const li = document.createElement("li");
  const a = document.createElement("span");
  a.textContent = left;
  const b = document.createElement("span");
  b.textContent = right;
  li.append(a, b);
  return li;
}
