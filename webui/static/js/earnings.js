// The creator's earnings page: held and withdrawable diamonds, where payouts go (with Stripe, a connected account
// set up on Stripe's onboarding page), cash-out, past payouts.

import { api, currentUser } from "./api.js";
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

const DESTINATION_STATES = {
  none: "not set up", onboarding: "waiting for you to finish onboarding", restricted: "the provider needs more details",
  active: "ready", rejected: "rejected by the provider", closed: "closed",
};

async function refreshDestination() {
  const destination = await api("/api/payouts/destination");
  $("destination-state").textContent = DESTINATION_STATES[destination.state] ?? destination.state;
  $("destination-button").hidden = destination.state === "active";
}

async function setUpDestination() {
  $("destination-button").disabled = true;
  try {
    const destination = await api("/api/payouts/destination", { method: "POST" });
    if (destination.onboarding_url) {
      window.location.assign(destination.onboarding_url); // the provider's page; it sends the creator back here
      return;
    }
    await refreshDestination();
  } catch (error) {
    $("destination-result").textContent = error.message;
  } finally {
    $("destination-button").disabled = false;
  }
}

async function main() {
  const me = await currentUser();
  if (!me) {
    showBanner("Log in to see your earnings.");
    return;
  }
  const back = new URLSearchParams(window.location.search).get("payouts");
  if (back === "retry") $("destination-result").textContent = "The onboarding link expired; set up payouts again.";
  await Promise.all([refresh(), refreshDestination()]);
  $("destination-button").addEventListener("click", setUpDestination);
  let pending = null; // {amount, key} of a payout whose answer was lost: sending it again reuses its key
  $("payout-form").addEventListener("submit", async (submit) => {
    submit.preventDefault();
    $("payout-button").disabled = true;
    try {
      const amount = Math.round(Number($("payout-amount").value) * 100);
      const key = pending?.amount === amount ? pending.key : newKey();
      const payout = await api("/api/payouts", { method: "POST", body: { amount_cents: amount, idempotency_key: key } });
      pending = payout.state === "pending" ? { amount, key } : null;
      $("payout-result").textContent = `Payout of ${cents(payout.amount_cents)}: ${payout.state}`
        + (pending ? " (the provider has not answered yet; press Cash out again to retry it)" : "");
      await refresh();
    } catch (error) {
      $("payout-result").textContent = error.message;
    } finally {
      $("payout-button").disabled = false;
    }
  });
}

main().catch((error) => showBanner(error.message));
