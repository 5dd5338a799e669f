// Products on the pages: the watch page's pinned product card and the shop page's tiles. A product is what
// GET /api/products/{id} answers: title, price, base item, variants (size x colour) with their mockup URLs.
// Titles come from creators: textContent only.

import { cents } from "./money.js";

/** "M · black" */
export function variantLabel(variant) {
  return [variant.size, variant.colour].filter(Boolean).join(" · ");
}

/** What a mockup shows, for its alt text. */
export function mockupAlt(product, variant) {
  const item = product.base_item?.name ?? "item";
  return `${product.title} on a ${variant.colour ? `${variant.colour} ` : ""}${item.toLowerCase()}`;
}

function uniqueBy(values, key) {
  const seen = new Map();
  for (const value of values) if (!seen.has(key(value))) seen.set(key(value), value);
  return [...seen.values()];
}

/**
 * The pinned product card (watch.html, #pinned-product). Its `#pinned-actions` holds what a viewer can do with the
 * product: buy it (the checkout reads `selectedVariant()`) and a link to the creator's shop.
 */
export class PinnedCard {
  constructor(root = document.getElementById("pinned-product")) {
    this.root = root;
    this.product = null;
    this.select = root.querySelector("#pinned-variant");
    this.image = root.querySelector("#pinned-mockup");
    this.select.addEventListener("change", () => this.showVariant());
  }

  show(product) {
    this.product = product;
    this.root.hidden = !product;
    if (!product) return;
    this.root.dataset.productId = String(product.id);
    this.root.querySelector("#pinned-title").textContent = product.title;
    this.root.querySelector("#pinned-price").textContent = cents(product.price_cents);
    this.root.querySelector("#pinned-item").textContent = product.base_item?.name ?? "";
    const shop = this.root.querySelector("#pinned-shop");
    shop.href = `/shop.html?user=${encodeURIComponent(product.creator.id)}`;
    shop.textContent = `More from ${product.creator.display_name || product.creator.username}`;
    this.select.replaceChildren(...product.variants.map((v) => new Option(variantLabel(v), v.id)));
    this.select.parentElement.hidden = product.variants.length < 2;
    this.showVariant();
  }

  selectedVariant() {
    return this.product?.variants.find((v) => v.id === this.select.value) ?? this.product?.variants[0] ?? null;
  }

  showVariant() {
    const variant = this.selectedVariant();
    if (!variant) return;
    this.image.src = variant.mockup_url;
    this.image.alt = mockupAlt(this.product, variant);
  }
}

/** A shop tile: the mockup, title, item, price, sizes, and colour swatches that switch the mockup. */
export function productTile(product) {
  const li = document.createElement("li");
  li.className = "product-tile";
  li.dataset.productId = String(product.id);
  const image = document.createElement("img");
  image.className = "product-mockup";
  image.width = 240;
  image.height = 240;
  image.loading = "lazy";
  const title = document.createElement("h2");
  title.className = "product-title";
  title.textContent = product.title;
  const meta = document.createElement("p");
  meta.className = "product-meta";
  const sizes = uniqueBy(product.variants, (v) => v.size).map((v) => v.size);
  meta.textContent = [product.base_item?.name, sizes.join(", ")].filter(Boolean).join(" · ");
  const price = document.createElement("p");
  price.className = "product-price";
  price.textContent = cents(product.price_cents);
  const colours = uniqueBy(product.variants, (v) => v.colour);
  const swatches = document.createElement("div");
  swatches.className = "swatches";
  swatches.setAttribute("role", "group");
  swatches.setAttribute("aria-label", `Colours of ${product.title}`);
  const choose = (variant) => {
    image.src = variant.mockup_url;
    image.alt = mockupAlt(product, variant);
    for (const swatch of swatches.children) swatch.setAttribute("aria-pressed", String(swatch.value === variant.id));
  };
  for (const variant of colours) {
    const swatch = document.createElement("button");
    swatch.type = "button";
    swatch.className = "swatch";
    swatch.value = variant.id;
    swatch.dataset.colour = variant.colour ?? "";
    swatch.setAttribute("aria-label", variant.colour || "default");
    swatch.title = variant.colour || "";
    // The colour comes from the catalogue as #rrggbb; the CSP forbids style attributes, not CSSOM properties.
    if (/^#[0-9a-f]{6}$/i.test(variant.colour_hex ?? "")) swatch.style.setProperty("--swatch", variant.colour_hex);
    swatch.addEventListener("click", () => choose(variant));
    swatches.append(swatch);
  }
  swatches.hidden = colours.length < 2;
  choose(product.variants[0]);
  li.append(image, title, meta, price, swatches);
  return li;
}
