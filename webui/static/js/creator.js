// A creator card (/creator.html?id=<creator>): the figures and audience split, and an offer form for advertisers
// (brief, price in dollars, due date) sent with a fresh idempotency key, kept for retries of the same offer.

import { ApiError, api, signedOut } from "./api.js";
import { $, cents, newKey, parseDollars, showBanner } from "./money.js";
import { renderCard } from "./creatorcard.js";

const creatorId = new URLSearchParams(location.search).get("id");
let offerKey = newKey();

async function load() {
  if (!/^\d+$/.test(creatorId ?? "")) {
    $("card-status").textContent = "";
    showBanner("No creator chosen: find one in the Marketplace.");
    return;
  }
  if (signedOut()) {
    $("card-status").textContent = "";
    showBanner("Log in as an advertiser to see creator cards.");
    return;
  }
  try {
    const card = await api(`/api/marketplace/creators/${creatorId}`);
    $("creator-name").textContent = card.creator.display_name;
    $("card").replaceChildren(renderCard(card, { full: true }));
    $("card").hidden = false;
    $("card-status").textContent = "";
    $("offer-section").hidden = false;
    const due = new Date(Date.now() + 14 * 86400000);
    $("offer-due").value = due.toISOString().slice(0, 10);
  } catch (error) {
    $("card-status").textContent = "";
    showBanner(error.detail);
  }
}

$("offer-form").addEventListener("input", () => { offerKey = newKey(); }); // a changed offer is a new one
$("offer-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const price = parseDollars($("offer-price").value);
  if (price === null || price < 1) {
    $("offer-result").textContent = "Give the price in dollars, e.g. 50 or 49.99.";
    return;
  }
  $("offer-send").disabled = true;
  try {
    const offer = await api("/api/offers", { method: "POST", body: {
      creator_id: Number(creatorId), brief: $("offer-brief").value, price_cents: price,
      due_date: $("offer-due").value, idempotency_key: offerKey } });
    $("offer-result").replaceChildren(`Offer ${offer.id} of ${cents(offer.price_cents)} sent. `);
    const link = document.createElement("a");
    link.href = "/offers.html";
    link.textContent = "See your offers";
    $("offer-result").append(link);
  } catch (error) {
    $("offer-result").textContent = error instanceof ApiError ? error.detail : String(error);
  } finally {
    $("offer-send").disabled = false;
  }
});

load();
