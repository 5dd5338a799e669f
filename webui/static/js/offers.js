// Offers (/offers.html): a creator's listing switch and inbox (accept, decline, deliver one of their ready videos)
// and an advertiser's sent offers (cancel). Every step is safe to repeat: the server answers an offer already in
// the asked-for state as it is. Briefs and names come from users: textContent only.

import { ApiError, api, currentUser } from "./api.js";
import { $, cents, showBanner } from "./money.js";
import { element } from "./creatorcard.js";

const STATE_TEXT = { offered: "Waiting for the creator", accepted: "Accepted: price held in escrow",
  declined: "Declined", cancelled: "Cancelled", delivered: "Delivered and paid",
  expired: "Expired: not delivered in time, the escrow went back to the advertiser" };
let me = null;
let readyVideos = [];

function today() {
  return new Date().toISOString().slice(0, 10);
}

async function step(offer, action, body) {
  try {
    await api(`/api/offers/${offer.id}/${action}`, { method: "POST", body });
    await refresh();
  } catch (error) {
    showBanner(error instanceof ApiError ? error.detail : String(error));
  }
}

function button(text, onClick, primary = false) {
  const b = element("button", primary ? "primary" : "", text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

function deliverControls(offer) {
  const label = element("label", "", "Video ");
  const select = element("select");
  select.setAttribute("aria-label", `Video for offer ${offer.id}`);
  for (const video of readyVideos) {
    const option = element("option", "", `${video.caption || "Untitled"} (#${video.id})`);
    option.value = String(video.id);
    select.append(option);
  }
  label.append(select);
  const deliver = button("Deliver", () => step(offer, "deliver", { video_id: Number(select.value) }), true);
  deliver.disabled = !readyVideos.length;
  return [label, deliver];
}

function renderOffer(offer, role) {
  const item = element("li", "offer");
  item.dataset.offerId = offer.id;
  item.dataset.state = offer.state;
  const other = role === "creator" ? offer.advertiser : offer.creator;
  item.append(element("h3", "", `${cents(offer.price_cents)} ${role === "creator" ? "from" : "to"} `
    + `${other.display_name}`));
  item.append(element("p", "brief", offer.brief));
  item.append(element("p", "notice", `Due ${offer.due_date}`));
  item.append(element("p", "state", STATE_TEXT[offer.state] ?? offer.state));
  if (offer.state === "delivered" && offer.video_id) {
    item.append(element("p", "notice", `Video #${offer.video_id} carries the paid-partnership label.`));
  }
  const actions = element("div", "offer-actions");
  if (role === "creator") {
    if (offer.state === "offered") actions.append(button("Accept", () => step(offer, "accept"), true));
    if (offer.state === "accepted") actions.append(...deliverControls(offer));
    if (offer.state === "offered" || offer.state === "accepted") {
      actions.append(button("Decline", () => step(offer, "decline")));
    }
  } else if (offer.state === "offered" || (offer.state === "accepted" && offer.due_date < today())) {
    actions.append(button("Cancel", () => step(offer, "cancel")));
  }
  if (actions.children.length) item.append(actions);
  return item;
}

async function showList(role, listId, statusId) {
  const page = await api(`/api/offers?role=${role}&limit=50`);
  $(listId).replaceChildren(...page.items.map((offer) => renderOffer(offer, role)));
  $(statusId).textContent = page.items.length ? "" : "No offers yet.";
}

async function showListing() {
  const { listed } = await api("/api/marketplace/listing");
  $("listing-status").textContent = listed ? "You are listed: brands can find you." : "You are not listed.";
  $("listing-toggle").textContent = listed ? "Take me out of the marketplace" : "List me in the marketplace";
  $("listing-toggle").dataset.listed = String(listed);
}

async function refresh() {
  if ($("inbox")) {
    const videos = await api(`/api/users/${me.id}/videos`);
    readyVideos = videos.items.filter((v) => v.state === "ready");
    await Promise.all([showList("creator", "inbox", "inbox-status"), showListing()]);
  }
  if ($("sent")) await showList("advertiser", "sent", "sent-status");
}

$("listing-toggle")?.addEventListener("click", async () => {
  const listed = $("listing-toggle").dataset.listed !== "true";
  try {
    await api("/api/marketplace/listing", { method: "PUT", body: { listed } });
    await showListing();
  } catch (error) {
    showBanner(error instanceof ApiError ? error.detail : String(error));
  }
});

me = await currentUser();
if (me) refresh().catch((error) => showBanner(error.detail ?? String(error)));
