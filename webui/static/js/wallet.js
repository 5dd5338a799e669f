// The wallet page: coin balance, coin packages to buy, recent transactions.

import { api, currentUser } from "./api.js";
import { $, cents, listItem, newKey, numbers, showBanner } from "./money.js";

const KIND_TEXT = { purchase: "Bought coins", gift: "Sent a gift", reversal: "Refund taken back",
  release: "Earnings released", payout: "Cash-out", payout_paid: "Cash-out sent", payout_failed: "Cash-out failed" };

async function buy(pkg, button) {
  button.disabled = true;
  try {
    const purchase = await api("/api/coins/purchases", {
      method: "POST", body: { package_id: pkg.id, idempotency_key: newKey() },
    });
    if (purchase.pay_url) {
      location.assign(purchase.pay_url);
    } else {
      showBanner("This node takes payments through Stripe; card entry with Stripe.js is not on this page yet.");
    }
  } catch (error) {
    showBanner(error.message);
  } finally {
    button.disabled = false;
  }
}

function describe(tx) {
  const net = tx.moves.map((m) => `${m.amount > 0 ? "+" : ""}${numbers.format(m.amount)} ${m.currency}`).join(", ");
  return listItem(`${KIND_TEXT[tx.kind] || tx.kind} · ${new Date(tx.ts).toLocaleString()}`, net);
}

async function main() {
  const me = await currentUser();
  if (!me) {
    showBanner("Log in to see your wallet.");
    return;
  }
  const [wallet, catalogue] = await Promise.all([api("/api/wallet"), api("/api/coins/packages")]);
  $("wallet-coins").textContent = numbers.format(wallet.coins);
  $("wallet-coins").dataset.coins = String(wallet.coins);
  $("wallet-frozen").hidden = !wallet.frozen;
  $("packages").replaceChildren(...catalogue.packages.map((pkg) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.package = pkg.id;
    button.textContent = `${numbers.format(pkg.coins)} coins · ${cents(pkg.amount_cents)}`;
    button.addEventListener("click", () => buy(pkg, button));
    return button;
  }));
  $("history").replaceChildren(...wallet.transactions.map(describe));
}

main().catch((error) => showBanner(error.message));
