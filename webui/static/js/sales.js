// A creator's sales (/sales.html, from GET /api/sales): the paid orders of their products, newest first, with the
// amount, the creator's margin and whether it is still held (until the order ships) or released to their earnings,
// and the totals of both. Product titles come from creators: textContent only.

import { api, currentUser } from "./api.js";
import { $, cents, showBanner } from "./money.js";

const STATE_TEXT = { paid: "Paid", in_production: "In production", shipped: "Shipped", delivered: "Delivered",
  on_hold: "On hold", failed: "Failed", cancelled: "Cancelled", returned: "Returned", pending: "Pending" };
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const titles = new Map(); // product id -> Promise of its title
let before = null;

function titleOf(productId) {
  if (!titles.has(productId)) {
    titles.set(productId, api(`/api/products/${productId}`).then((p) => p.title, () => `Product ${productId}`));
  }
  return titles.get(productId);
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function marginText(sale) {
  if (sale.refunded_cents) return `${cents(sale.margin_cents)} (refunded ${cents(sale.refunded_cents)})`;
  return `${cents(sale.margin_cents)} · ${sale.margin_released ? "released" : "held"}`;
}

async function saleRow(sale) {
  const tr = document.createElement("tr");
  tr.id = `sale-${sale.order_id}`;
  tr.dataset.state = sale.state;
  tr.dataset.released = String(sale.margin_released);
  const names = await Promise.all(sale.items.map(async (i) => `${await titleOf(i.product_id)} (${i.variant_id})`
    + ` × ${i.quantity}`));
  tr.append(cell(String(sale.order_id)), cell(sale.paid_at ? dateTime.format(sale.paid_at) : ""),
    cell(names.join(", ")), cell(cents(sale.items_cents)), cell(marginText(sale), "sale-margin"),
    cell(STATE_TEXT[sale.state] ?? sale.state));
  return tr;
}

async function loadPage() {
  const page = await api(`/api/sales${before === null ? "" : `?before=${encodeURIComponent(before)}`}`);
  $("margin-held").textContent = cents(page.margin_held_cents);
  $("margin-released").textContent = cents(page.margin_released_cents);
  $("sales-rows").append(...await Promise.all(page.sales.map(saleRow)));
  before = page.next_before;
  $("sales-more").hidden = before === null;
  const count = $("sales-rows").children.length;
  $("sales").hidden = count === 0;
  $("sales-status").textContent = count ? `${count} sale${count === 1 ? "" : "s"}` : "No sales yet.";
}

async function main() {
  const me = await currentUser();
  if (!me) {
    $("sales-status").textContent = "";
    showBanner("Log in to see your sales.");
    return;
  }
  $("sales-more").addEventListener("click", () => loadPage().catch((error) => showBanner(error.message)));
  await loadPage();
}

main().catch((error) => showBanner(error.message));
