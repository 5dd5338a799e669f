// The creator marketplace search (/marketplace.html): filters in the form become the query of
// GET /api/marketplace/creators; results are creator cards linking to /creator.html; "Show more" follows the cursor.
// Only adult advertisers may search: anyone else is told so instead of being shown a form they cannot use.

import { ApiError, api, currentUser } from "./api.js";
import { $, showBanner } from "./money.js";
import { renderCard } from "./creatorcard.js";

const PAGE_ITEMS = 12;
let query = new URLSearchParams();
let nextCursor = null;

function queryFromForm() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($("search-form"))) {
    if (String(value).trim() !== "") params.set(name, String(value).trim());
  }
  params.set("limit", String(PAGE_ITEMS));
  return params;
}

async function load(more) {
  const params = new URLSearchParams(query);
  if (more && nextCursor) params.set("cursor", nextCursor);
  $("search-status").textContent = "Searching…";
  try {
    const page = await api(`/api/marketplace/creators?${params}`);
    if (!more) $("creators").replaceChildren();
    for (const card of page.items) $("creators").append(renderCard(card, { link: true }));
    nextCursor = page.next_cursor;
    $("creators-more").hidden = !nextCursor;
    const count = $("creators").children.length;
    $("search-status").textContent = count ? `${count} creator${count === 1 ? "" : "s"} shown`
      : "No listed creator matches these filters.";
  } catch (error) {
    $("search-status").textContent = "";
    if (error instanceof ApiError && error.status === 403) refuse(error.detail);
    else showBanner(error.detail);
  }
}

function refuse(why) {
  $("market-search").hidden = true;
  $("market-access").textContent = why;
  $("market-access").hidden = false;
}

async function main() {
  const user = await currentUser();
  if (!user) {
    refuse("Log in with an advertiser account to search creators and make offers.");
    return;
  }
  if (!user.roles.includes("advertiser")) {
    refuse("This account is not an advertiser: only advertisers can search creators and make offers. "
      + "Sign up as an advertiser to find creators for your brand.");
    return;
  }
  $("market-access").hidden = true;
  $("market-search").hidden = false;
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    query = queryFromForm();
    load(false);
  });
  $("creators-more").addEventListener("click", () => load(true));
  query = queryFromForm();
  await load(false);
}

main().catch((error) => showBanner(error.detail || error.message));
