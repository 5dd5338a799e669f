// The creator marketplace search (/marketplace.html): filters in the form become the query of
// GET /api/marketplace/creators; results are creator cards linking to /creator.html; "Show more" follows the cursor.

import { api } from "./api.js";
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
    showBanner(error.detail);
  }
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  query = queryFromForm();
  load(false);
});
$("creators-more").addEventListener("click", () => load(true));
query = queryFromForm();
load(false);
