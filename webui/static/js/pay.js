// The local test provider's card page. Paying here makes the provider sign a webhook event; the coins come from
// that verified event, exactly as with Stripe.

import { api } from "./api.js";
import { $, cents, numbers, showBanner } from "./money.js";

const purchaseId = new URLSearchParams(location.search).get("purchase");

async function main() {
  if (!purchaseId || !/^\d+$/.test(purchaseId)) {
    showBanner("No purchase chosen; start from the wallet.");
    return;
  }
  const purchase = await api(`/api/coins/purchases/${purchaseId}`);
  $("pay-summary").textContent = `${numbers.format(purchase.coins)} coins for ${cents(purchase.amount_cents)}`
    + ` (${purchase.state})`;
  $("card-form").addEventListener("submit", async (submit) => {
    submit.preventDefault();
    $("pay-button").disabled = true;
    try {
      const paid = await api(`/api/payments/local/${purchaseId}/confirm`, {
        method: "POST", body: { card_number: $("card-number").value },
      });
      $("pay-result").dataset.state = paid.state;
      $("pay-result").textContent = paid.state === "succeeded"
        ? `Paid: ${numbers.format(paid.coins)} coins are in your wallet.`
        : `The payment did not go through (${paid.state}).`;
    } catch (error) {
      $("pay-result").textContent = error.message;
    } finally {
      $("pay-button").disabled = false;
    }
  });
}

main().catch((error) => showBanner(error.message));
