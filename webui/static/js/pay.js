// The local test provider's card page, for a coin purchase (?purchase=<id>) or an order (?order=<id>). Paying here
// makes the provider sign a webhook event; the coins, or the order's payment, come from that verified event,
// exactly as with Stripe. A paid order goes on to the orders page.

import { api } from "./api.js";
import { $, cents, numbers, showBanner } from "./money.js";

const query = new URLSearchParams(location.search);

function validId(id) {
  return Boolean(id) && /^\d+$/.test(id);
}

/** What is being paid for: how to describe it, where its card form posts, what the answer means. */
const PAYABLES = {
  purchase: {
    load: (id) => api(`/api/coins/purchases/${id}`),
    summary: (p) => `${numbers.format(p.coins)} coins for ${cents(p.amount_cents)} (${p.state})`,
    confirm: (id) => `/api/payments/local/${id}/confirm`,
    paid: (p) => p.state === "succeeded",
    paidText: (p) => `Paid: ${numbers.format(p.coins)} coins are in your wallet.`,
    back: { href: "/wallet.html", text: "Back to the wallet" },
  },
  order: {
    load: (id) => api(`/api/orders/${id}`),
    summary: (o) => `Order ${o.id}: ${o.items.map((i) => `${i.title} × ${i.quantity}`).join(", ")} · items`
      + ` ${cents(o.items_cents)} + shipping ${cents(o.shipping_cents)} = ${cents(o.total_cents)} (${o.state})`,
    confirm: (id) => `/api/payments/local/orders/${id}/confirm`,
    paid: (o) => o.state !== "pending" && o.state !== "failed",
    paidText: () => "Paid: your order is on its way to the printer.",
    after: (o) => location.assign(`/orders.html?order=${encodeURIComponent(o.id)}`),
    back: { href: "/orders.html", text: "Your orders" },
  },
};

async function main() {
  const kind = query.has("order") ? "order" : "purchase";
  const id = query.get(kind);
  if (!validId(id)) {
    showBanner("Nothing to pay for chosen; start from the wallet or a shop.");
    return;
  }
  const payable = PAYABLES[kind];
  $("pay-back").href = payable.back.href;
  $("pay-back").textContent = payable.back.text;
  const found = await payable.load(id);
  $("pay-summary").textContent = payable.summary(found);
  $("card-form").addEventListener("submit", async (submit) => {
    submit.preventDefault();
    $("pay-button").disabled = true;
    try {
      const answer = await api(payable.confirm(id), { method: "POST", body: { card_number: $("card-number").value } });
      const paid = payable.paid(answer);
      $("pay-result").dataset.state = paid ? "succeeded" : answer.state;
      $("pay-result").textContent = paid ? payable.paidText(answer) : `The payment did not go through (${answer.state}).`;
      if (paid && payable.after) payable.after(answer);
    } catch (error) {
      $("pay-result").textContent = error.message;
    } finally {
      $("pay-button").disabled = false;
    }
  });
}

main().catch((error) => showBanner(error.message));
