// A creator's shop (/shop.html?user=<id>): their products, newest first, each with its mockups and a Buy button
// that opens the checkout on the colour shown, a page at a time.

import { ApiError, api } from "./api.js";
import { $, showBanner } from "./money.js";
import { wireBuy } from "./checkout.js";
import { productTile } from "./productcard.js";

const userId = new URLSearchParams(location.search).get("user");
let nextBefore = null;

function buyableTile(product) {
  const tile = productTile(product);
  const buy = document.createElement("button");
  buy.type = "button";
  buy.className = "primary";
  buy.textContent = "Buy";
  buy.setAttribute("aria-label", `Buy ${product.title}`);
  wireBuy(buy, () => [product, tile.querySelector(".swatch[aria-pressed='true']")?.value]);
  tile.append(buy);
  return tile;
}

async function loadPage() {
  const query = nextBefore === null ? "" : `?before=${encodeURIComponent(nextBefore)}`;
  const page = await api(`/api/users/${encodeURIComponent(userId)}/products${query}`);
  $("shop-products").append(...page.products.map(buyableTile));
  nextBefore = page.next_before;
  $("shop-more").hidden = nextBefore === null;
  const count = $("shop-products").children.length;
  $("shop-status").textContent = count ? `${count} product${count === 1 ? "" : "s"}` : "No products yet.";
}

async function showLive() {
  const { streams } = await api("/api/live");
  const stream = streams.find((s) => s.creator && String(s.creator.id) === userId);
  if (!stream) return;
  $("shop-live-link").href = `/watch.html?room=${encodeURIComponent(stream.id)}`;
  $("shop-live").hidden = false;
}

async function main() {
  if (!userId || !/^\d+$/.test(userId)) {
    $("shop-status").textContent = "";
    showBanner("No shop chosen: open a creator's shop from their stream.");
    return;
  }
  try {
    const creator = await api(`/api/users/${encodeURIComponent(userId)}`);
    const name = creator.display_name || creator.username;
    $("shop-title").textContent = `${name}'s shop`;
    document.title = `${name}'s shop · livecore`;
  } catch (error) {
    $("shop-status").textContent = "";
    showBanner(error instanceof ApiError && error.status === 404 ? "There is no such creator." : error.message);
    return;
  }
  $("shop-more").addEventListener("click", () => loadPage().catch((error) => showBanner(error.message)));
  showLive().catch(() => {}); // the products matter; the live link is a bonus
  await loadPage();
}

main().catch((error) => showBanner(error.message));
