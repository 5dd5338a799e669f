// The buyer's orders (/orders.html, ?order=<id> to point at one): each with its items, amounts, where it goes, and
// a tracking timeline (ordered, paid, in production, shipped with the tracking number and link, delivered; or on
// hold, failed, cancelled, returned) kept current by asking again for the orders still moving. Also the saved
// shipping address that auction wins ship to. Titles and addresses come from users: textContent only.

import { ApiError, api, currentUser } from "./api.js";
import { AddressForm } from "./address.js";
import { $, cents, showBanner } from "./money.js";

// How often the orders are asked for again: the newest page (a won lot's order appears there after the close) and
// any older order still moving. The provider's callbacks move them on the server; there is no per-user event
// stream to hear them from, so the page polls, only while it is visible.
const ORDER_POLL_MS = 3000;
const STEPS = [
  ["pending", "Ordered"], ["paid", "Paid"], ["in_production", "In production"], ["shipped", "Shipped"],
  ["delivered", "Delivered"],
];
const OFF_PATH = { on_hold: "On hold", failed: "Failed", cancelled: "Cancelled", returned: "Returned" };
const STATE_TEXT = { ...Object.fromEntries(STEPS), pending: "Waiting for payment", ...OFF_PATH };
const SETTLED = new Set(["delivered", "failed", "cancelled", "returned"]);
const CANCELLABLE = new Set(["pending", "paid", "on_hold"]);
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

const pointedAt = new URLSearchParams(location.search).get("order");
const shown = new Map(); // order id -> the order as last rendered
let nextBefore = null;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** When each state was first reached, from the order's history. */
function reachedAt(order) {
  const at = new Map();
  for (const entry of order.history) if (!at.has(entry.state)) at.set(entry.state, entry.at);
  return at;
}

function timeline(order) {
  const list = element("ol", "timeline");
  list.setAttribute("aria-label", `Tracking of order ${order.id}`);
  const at = reachedAt(order);
  // A later state implies the earlier ones: a delivered order shipped even if that callback never came.
  const happyIndex = STEPS.findIndex(([state]) => state === order.state);
  const reached = happyIndex >= 0 ? happyIndex
    : Math.max(...STEPS.map(([state], i) => (at.has(state) ? i : -1)));
  STEPS.forEach(([state, label], i) => {
    const step = element("li", "step");
    step.dataset.step = state;
    step.dataset.done = String(i <= reached);
    if (i === reached && happyIndex >= 0) step.setAttribute("aria-current", "step");
    step.append(element("span", "step-label", label));
    if (at.has(state)) step.append(element("span", "step-time", dateTime.format(at.get(state))));
    if (state === "shipped" && order.tracking && i <= reached) step.append(trackingLine(order.tracking));
    list.append(step);
  });
  if (OFF_PATH[order.state]) {
    const step = element("li", "step off-path");
    step.dataset.step = order.state;
    step.dataset.done = "true";
    step.setAttribute("aria-current", "step");
    const last = [...order.history].reverse().find((h) => h.state === order.state);
    step.append(element("span", "step-label", OFF_PATH[order.state]));
    if (last) step.append(element("span", "step-time", dateTime.format(last.at)));
    const why = order.failure || last?.detail;
    if (why) step.append(element("span", "step-detail", why));
    list.append(step);
  }
  return list;
}

function trackingLine(tracking) {
  const line = element("span", "tracking");
  line.append(`${tracking.carrier ?? "Tracking"} `);
  // Only web links from the provider become links; anything else stays text.
  if (tracking.url && /^https?:\/\//i.test(tracking.url)) {
    const link = element("a", "", tracking.number ?? "Track the parcel");
    link.href = tracking.url;
    link.rel = "noopener noreferrer";
    link.target = "_blank";
    line.append(link);
  } else {
    line.append(tracking.number ?? "");
  }
  return line;
}

function shipTo(address) {
  return [address.name, address.city, address.subdivision, address.postcode, address.country]
    .filter(Boolean).join(", ");
}

function actions(order) {
  const box = element("div", "order-actions");
  if (order.state === "pending" && order.payment.pay_url) {
    const pay = element("a", "button primary", "Pay now");
    pay.href = order.payment.pay_url;
    box.append(pay);
  }
  if (CANCELLABLE.has(order.state)) {
    const cancel = element("button", "", "Cancel order");
    cancel.type = "button";
    const problem = element("p", "problem");
    problem.setAttribute("role", "alert");
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try {
        render(await api(`/api/orders/${order.id}/cancel`, { method: "POST" }));
      } catch (error) {
        problem.textContent = error.message;
        cancel.disabled = false;
      }
    });
    box.append(cancel, problem);
  }
  return box;
}

function orderItem(order) {
  const li = element("li", "order");
  li.id = `order-${order.id}`;
  li.dataset.state = order.state;
  li.setAttribute("aria-labelledby", `order-${order.id}-title`);
  const head = element("header", "order-head");
  const title = element("h2", "", `Order ${order.id}`);
  title.id = `order-${order.id}-title`;
  title.tabIndex = -1;
  const state = element("span", "badge order-state", STATE_TEXT[order.state] ?? order.state);
  state.dataset.state = order.state;
  head.append(title, state);
  const items = element("p", "order-items", order.items.map((i) => `${i.title} (${i.variant_id}) × ${i.quantity}`)
    .join(", "));
  const money = element("p", "order-money", `${cents(order.items_cents)} + shipping ${cents(order.shipping_cents)}`
    + ` = ${cents(order.total_cents)}${order.refunded_cents ? ` · refunded ${cents(order.refunded_cents)}` : ""}`);
  const where = element("p", "order-where", `${order.source === "auction" ? "Won at auction" : "Ordered"}`
    + ` ${dateTime.format(order.created_at)} · to ${shipTo(order.shipping_address)} (${order.shipping_service})`);
  li.append(head, items, money, where, timeline(order), actions(order));
  return li;
}

/** The order's element, made again only when the order changed (so focus and a half-clicked button survive). */
function render(order) {
  const old = document.getElementById(`order-${order.id}`);
  if (old && JSON.stringify(shown.get(order.id)) === JSON.stringify(order)) return old;
  shown.set(order.id, order);
  const fresh = orderItem(order);
  if (old) {
    fresh.classList.toggle("pointed", old.classList.contains("pointed"));
    old.replaceWith(fresh);
  }
  return fresh;
}

function showCount() {
  const count = $("orders").children.length;
  $("orders-status").textContent = count ? `${count} order${count === 1 ? "" : "s"}` : "No orders yet.";
}

async function loadPage() {
  const query = nextBefore === null ? "" : `?before=${encodeURIComponent(nextBefore)}`;
  const page = await api(`/api/orders${query}`);
  $("orders").append(...page.orders.map((order) => render(order)));
  nextBefore = page.next_before;
  $("orders-more").hidden = nextBefore === null || page.orders.length === 0;
  showCount();
}

async function refresh() {
  if (document.hidden) return;
  const newest = await api("/api/orders");
  const arrived = newest.orders.filter((order) => !shown.has(order.id));
  for (const order of newest.orders) if (shown.has(order.id)) render(order);
  $("orders").prepend(...arrived.map(render));
  const onNewest = new Set(newest.orders.map((order) => order.id));
  const moving = [...shown.values()].filter((order) => !SETTLED.has(order.state) && !onNewest.has(order.id));
  for (const order of moving) render(await api(`/api/orders/${order.id}`));
  if (arrived.length) showCount();
}

function pollMoving() {
  setTimeout(async () => {
    try {
      await refresh();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        showBanner("You were logged out; log in again to follow your orders.");
        return;
      }
      // A failed poll is tried again next time; the page keeps what it showed.
    }
    pollMoving();
  }, ORDER_POLL_MS);
}

async function pointAt(orderId) {
  let item = document.getElementById(`order-${orderId}`);
  if (!item) {
    try {
      const order = await api(`/api/orders/${encodeURIComponent(orderId)}`);
      item = render(order);
      $("orders").prepend(item);
    } catch (error) {
      showBanner(error.message);
      return;
    }
  }
  item.classList.add("pointed");
  item.querySelector("h2").focus();
}

async function wireSavedAddress() {
  const form = new AddressForm("saved");
  const saved = await api("/api/shipping-address"); // null (204) when none is saved
  if (saved) form.fill(saved);
  $("saved-address-form").addEventListener("submit", async (submit) => {
    submit.preventDefault();
    form.clearErrors();
    $("saved-address-save").disabled = true;
    $("saved-address-result").textContent = "";
    try {
      form.fill(await api("/api/shipping-address", { method: "PUT", body: form.value() }));
      $("saved-address-result").textContent = "Address saved.";
    } catch (error) {
      if (!form.showProblem(error)) $("saved-address-result").textContent = error.message;
    } finally {
      $("saved-address-save").disabled = false;
    }
  });
}

async function main() {
  const me = await currentUser();
  if (!me) {
    $("orders-status").textContent = "";
    showBanner("Log in to see your orders.");
    return;
  }
  $("orders-more").addEventListener("click", () => loadPage().catch((error) => showBanner(error.message)));
  await Promise.all([loadPage(), wireSavedAddress()]);
  if (pointedAt && /^\d+$/.test(pointedAt)) await pointAt(pointedAt);
  pollMoving();
}

main().catch((error) => showBanner(error.message));
