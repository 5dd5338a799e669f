// The studio's merch panel: upload a design, make a product of it (item, sizes, colours, price), list your products,
// pin one in your room, start an auction of one of its variants; the auction panel beside it shows the bids live
// and the result. Titles come from users: textContent only.

import { ApiError, api } from "./api.js";
import { variantLabel } from "./productcard.js";
import { cents, newKey, parseDollars } from "./money.js";

const $ = (id) => document.getElementById(id);

function uniqueValues(values) {
  return [...new Set(values)];
}

function checkbox(name, value, label) {
  const wrap = document.createElement("label");
  wrap.className = "check";
  const input = document.createElement("input");
  input.type = "checkbox";
  input.name = name;
  input.value = value;
  input.checked = true;
  wrap.append(input, ` ${label}`);
  return wrap;
}

function fieldError(input, message, errorLine) {
  input.setAttribute("aria-invalid", "true");
  errorLine.textContent = message;
  input.focus();
}

export class MerchStudio {
  /** `shop` is the page's RoomShop: its auction panel shows the auction this panel starts. */
  constructor(me, shop) {
    this.me = me;
    this.shop = shop;
    this.items = new Map(); // base item id -> item
    this.products = [];
    this.designId = null;
    this.streamId = null;
    this.live = false;
    this.pinnedId = null;
    $("merch").hidden = false;
    $("shop-link").href = `/shop.html?user=${encodeURIComponent(me.id)}`;
    $("design-file").addEventListener("change", () => this.uploadDesign());
    $("base-item").addEventListener("change", () => this.showChoices());
    $("product-form").addEventListener("change", () => this.showPriceHint());
    $("product-form").addEventListener("submit", (submit) => {
      submit.preventDefault();
      this.createProduct();
    });
    $("auction-product").addEventListener("change", () => this.showAuctionVariants());
    $("auction-increments").addEventListener("change", () => this.showIncrementsHint());
    $("auction-form").addEventListener("submit", (submit) => {
      submit.preventDefault();
      this.startAuction();
    });
    this.showIncrementsHint();
  }

  async load() {
    const [catalogue, shop] = await Promise.all([
      api("/api/base-items"), api(`/api/users/${encodeURIComponent(this.me.id)}/products`),
    ]);
    for (const item of catalogue.items) this.items.set(item.id, item);
    $("base-item").replaceChildren(...catalogue.items.map((item) => new Option(item.name, item.id)));
    this.showChoices();
    this.products = shop.products;
    this.renderProducts();
  }

  /** The room this studio publishes to, and whether it is live (auctions need a live room). */
  setStream(streamId, live) {
    this.streamId = streamId;
    this.live = live;
    this.renderProducts();
    this.renderAuctionForm();
  }

  /** The room's pinned product changed (room event or join snapshot). */
  showPinned(product) {
    this.pinnedId = product ? product.id : null;
    this.renderProducts();
  }

  async uploadDesign() {
    const file = $("design-file").files[0];
    const status = $("design-status");
    this.designId = null;
    if (!file) return;
    const form = new FormData();
    form.append("file", file, file.name);
    status.textContent = "Uploading…";
    $("design-file").removeAttribute("aria-invalid");
    try {
      const design = await api("/api/designs", { method: "POST", form });
      this.designId = design.id;
      status.textContent = `Design ready: ${design.width} × ${design.height} px.`;
      if (!$("product-title").value) $("product-title").value = file.name.replace(/\.[^.]+$/, "");
    } catch (error) {
      $("design-file").setAttribute("aria-invalid", "true");
      status.textContent = error.message;
    }
  }

  item() {
    return this.items.get($("base-item").value);
  }

  showChoices() {
    const item = this.item();
    if (!item) return;
    const sizes = uniqueValues(item.variants.map((v) => v.size));
    const colours = uniqueValues(item.variants.map((v) => v.colour).filter(Boolean));
    $("size-choices").replaceChildren($("size-choices").querySelector("legend"),
      ...sizes.map((size) => checkbox("size", size, size)));
    $("colour-choices").replaceChildren($("colour-choices").querySelector("legend"),
      ...colours.map((colour) => checkbox("colour", colour, colour)));
    $("size-choices").hidden = sizes.length < 2;
    $("colour-choices").hidden = colours.length < 2;
    this.showPriceHint();
  }

  chosenVariants() {
    const checked = (name) => [...document.querySelectorAll(`#product-form input[name="${name}"]:checked`)]
      .map((input) => input.value);
    const sizes = checked("size");
    const colours = checked("colour");
    return this.item().variants.filter((v) => sizes.includes(v.size) && (!v.colour || colours.includes(v.colour)));
  }

  showPriceHint() {
    const variants = this.chosenVariants();
    const dearest = Math.max(...variants.map((v) => v.base_cost_cents));
    $("price-hint").textContent = variants.length
      ? `${variants.length} variant${variants.length === 1 ? "" : "s"}. Making one costs up to ${cents(dearest)}; `
        + "your price must cover that plus the platform's fees."
      : "Choose at least one size and colour.";
  }

  async createProduct() {
    const error = $("product-error");
    error.textContent = "";
    for (const input of $("product-form").querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    const variants = this.chosenVariants();
    const price = parseDollars($("product-price").value);
    const title = $("product-title").value.trim();
    if (this.designId === null) return fieldError($("design-file"), "Upload a design first.", error);
    if (!variants.length) return fieldError($("size-choices").querySelector("input"), "Choose a size and colour.", error);
    if (!title) return fieldError($("product-title"), "Give the product a title.", error);
    if (price === null) return fieldError($("product-price"), "Type the price in dollars, like 25 or 24.99.", error);
    const all = variants.length === this.item().variants.length;
    $("product-create").disabled = true;
    try {
      const product = await api("/api/products", { method: "POST", body: {
        design_id: this.designId, base_item_id: this.item().id, title, price_cents: price,
        variant_ids: all ? null : variants.map((v) => v.id), idempotency_key: newKey(),
      } });
      this.products = [product, ...this.products.filter((p) => p.id !== product.id)];
      this.renderProducts();
      $("auction-product").value = String(product.id);
      this.showAuctionVariants();
      $("pin-status").textContent = `Created “${product.title}”.`;
    } catch (failure) {
      if (!(failure instanceof ApiError)) throw failure;
      const floor = failure.problem.floor_cents;
      if (failure.slug === "price-below-floor" && floor) {
        fieldError($("product-price"), `The price must be at least ${cents(floor)} to cover making it and the fees.`,
          error);
      } else {
        error.textContent = failure.message;
      }
    } finally {
      $("product-create").disabled = false;
    }
  }

  productItem(product) {
    const li = document.createElement("li");
    li.className = "product-row";
    li.dataset.productId = String(product.id);
    const image = document.createElement("img");
    image.className = "product-thumb";
    image.src = product.variants[0].mockup_url;
    image.alt = "";
    image.width = 56;
    image.height = 56;
    const text = document.createElement("span");
    text.className = "product-row-text";
    const title = document.createElement("strong");
    title.textContent = product.title;
    const meta = document.createElement("span");
    meta.textContent = `${product.base_item.name} · ${cents(product.price_cents)}`;
    text.append(title, meta);
    const pinned = product.id === this.pinnedId;
    if (pinned) li.classList.add("pinned");
    const pin = document.createElement("button");
    pin.type = "button";
    pin.className = "pin-button";
    pin.textContent = pinned ? "Unpin" : "Pin";
    pin.setAttribute("aria-label", `${pinned ? "Unpin" : "Pin"} ${product.title}${pinned ? "" : " in your room"}`);
    pin.disabled = this.streamId === null;
    pin.title = this.streamId === null ? "Go live to pin a product in your room" : "";
    pin.addEventListener("click", () => this.pin(pinned ? null : product));
    li.append(image, text);
    if (pinned) {
      const badge = document.createElement("span");
      badge.className = "badge live";
      badge.textContent = "Pinned";
      li.append(badge);
    }
    li.append(pin);
    return li;
  }

  renderProducts() {
    $("product-list").replaceChildren(...this.products.map((p) => this.productItem(p)));
    $("products-empty").hidden = this.products.length > 0;
    const select = $("auction-product");
    const chosen = select.value;
    select.replaceChildren(...this.products.map((p) => new Option(p.title, String(p.id))));
    if (chosen && this.products.some((p) => String(p.id) === chosen)) select.value = chosen;
    this.showAuctionVariants();
  }

  async pin(product) {
    const path = `/api/streams/${encodeURIComponent(this.streamId)}/pin`;
    try {
      const pinned = product
        ? await api(path, { method: "POST", body: { product_id: product.id } })
        : await api(path, { method: "DELETE" });
      this.shop.takePin(pinned.product, pinned.pin_version);
      $("pin-status").textContent = product ? `“${product.title}” is pinned in your room.` : "Nothing is pinned.";
    } catch (error) {
      $("pin-status").textContent = error.message;
    }
  }

  auctionProduct() {
    return this.products.find((p) => String(p.id) === $("auction-product").value) ?? null;
  }

  showAuctionVariants() {
    const product = this.auctionProduct();
    const select = $("auction-variant-select");
    const chosen = select.value;
    select.replaceChildren(...(product?.variants ?? []).map((v) => new Option(variantLabel(v), v.id)));
    if (product?.variants.some((v) => v.id === chosen)) select.value = chosen;
    if (product && !$("auction-start-price").value) $("auction-start-price").value = (product.price_cents / 100).toFixed(2);
    this.renderAuctionForm();
  }

  showIncrementsHint() {
    const hints = {
      whatnot: "Each bid beats the last by $1 up to $50, then $2 up to $100, $5 up to $500, and more above.",
      dollar: "Each bid beats the last by $1.",
      ebay: "Each bid beats the last by 5 cents up to $1, 25 cents up to $5, 50 cents up to $25, $1 up to $100, "
        + "and more above.",
    };
    $("increments-hint").textContent = hints[$("auction-increments").value] ?? "";
  }

  /** Start is possible while live, with a product, and with no auction open in the room. */
  renderAuctionForm() {
    const lot = this.shop.panel.lot;
    const running = Boolean(lot && lot.state?.state === "open");
    $("auction-start").disabled = !this.live || !this.auctionProduct() || running;
    $("auction-form-hint").textContent = !this.live ? "Go live to start an auction."
      : !this.auctionProduct() ? "Create a product to auction."
        : running ? "One auction at a time: this one is still running." : "";
  }

  async startAuction() {
    const error = $("auction-error");
    error.textContent = "";
    const start = parseDollars($("auction-start-price").value);
    const buyNowText = $("auction-buy-now").value.trim();
    const buyNow = buyNowText ? parseDollars(buyNowText) : null;
    if (start === null) return fieldError($("auction-start-price"), "Type the starting bid in dollars.", error);
    if (buyNowText && buyNow === null) return fieldError($("auction-buy-now"), "Type buy it now in dollars.", error);
    $("auction-start-price").removeAttribute("aria-invalid");
    $("auction-buy-now").removeAttribute("aria-invalid");
    $("auction-start").disabled = true;
    const sentAt = performance.now();
    try {
      const auction = await api(`/api/streams/${encodeURIComponent(this.streamId)}/auctions`, { method: "POST", body: {
        product_id: this.auctionProduct().id, variant_id: $("auction-variant-select").value, start_cents: start,
        duration_s: Number($("auction-duration").value), increments: $("auction-increments").value,
        sudden_death: $("auction-sudden-death").checked, buy_now_cents: buyNow, idempotency_key: newKey(),
      } });
      this.shop.clock.sample(auction.server_now, sentAt);
      this.shop.panel.take(auction);
    } catch (failure) {
      if (!(failure instanceof ApiError)) throw failure;
      const floor = failure.problem.floor_cents;
      error.textContent = failure.slug === "price-below-floor" && floor
        ? `The starting bid must be at least ${cents(floor)} to cover making it and the fees.` : failure.message;
    } finally {
      this.renderAuctionForm();
    }
  }
}
