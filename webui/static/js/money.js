// Shared bits of the money pages: formatting and reading dollars, a fresh idempotency key, the page banner.

export const numbers = new Intl.NumberFormat();
const dollars = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

export const $ = (id) => document.getElementById(id);

export function cents(amount) {
  return dollars.format(amount / 100);
}

/** Dollars typed by a person ("25", "25.5", "25.50") as cents, or null. */
export function parseDollars(text) {
  const match = /^\s*\$?\s*(\d{1,7})(?:[.,](\d{1,2}))?\s*$/.exec(text);
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] ?? "0").padEnd(2, "0"));
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
