// The creator's earnings page: held and withdrawable diamonds, cash-out, past payouts.

import { api, renderSession } from "./api.js";
import { $, cents, listItem, newKey, numbers, showBanner } from "./money.js";

async function refresh() {
  const [wallet, listed] = await Promise.all([api("/api/wallet"), api("/api/payouts")]);
  const e = wallet.earnings;
  $("held-diamonds").textContent = numbers.format(e.held_diamonds);
  $("withdrawable-diamonds").textContent = numbers.format(e.withdrawable_diamonds);
  $("withdrawable-cents").textContent = cents(e.withdrawable_cents);
  $("pending-cents").textContent = cents(e.payout_pending_cents);
  $("hold-note").textContent = `Gift earnings are held ${Math.round(e.hold_s / 3600)} h before cash-out; `
    + `the smallest payout is ${cents(e.payout_cents_min)}.`;
  $("payouts").replaceChildren(...listed.payouts.map((p) => listItem(
    `${new Date(p.ts).toLocaleString()} · ${p.state}${p.failure ? ` (${p.failure})` : ""}`, cents(p.amount_cents))));
}

async function main() {
  const me = await renderSession($("session"));
  if (!me) {
    showBanner("Log in to see your earnings.");
    return;
  }
  await refresh();
  $("payout-form").addEventListener("submit", async (submit) => {
    submit.preventDefault();
    $("payout-button").disabled = true;
    try {
      const amount = Math.round(Number($("payout-amount").value) * 100);
      const payout = await api("/api/payouts", { method: "POST", body: { amount_cents: amount, idempotency_key: newKey() } });
      $("payout-result").textContent = `Payout of ${cents(payout.amount_cents)}: ${payout.state}`;
      await refresh();
    } catch (error) {
      $("payout-result").textContent = error.message;
    } finally {
      $("payout-button").disabled = false;
    }
  });
}

main().catch((error) => showBanner(error.message));
