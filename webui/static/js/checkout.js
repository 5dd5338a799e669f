// Checkout of one product (templates/parts/checkout.html): choose the variant and quantity, give the shipping
// address (the server checks it per country and its refusal shows beside the field), get the fulfilment provider's
// shipping quote, then place the order. Its payment is the payment provider's: a buyer with a saved card pays with
// it by default (POST /api/orders/{id}/pay; a decline leaves the order pending, and the card page is offered);
// otherwise, with the local test provider, the buyer goes on to its card page (/pay.html?order=<id>). Both end on
// the order (/orders.html?order=<id>). Titles come from creators: textContent only.

import { ApiError, api } from "./api.js";
import { AddressForm } from "./address.js";
import { $, cents, newKey } from "./money.js";
import { variantLabel } from "./productcard.js";

export class Checkout {
  constructor() {
    this.dialog = $("checkout");
    this.address = new AddressForm("ship");
    this.product = null;
    this.quote = null;
    this.orderKey = null; // one key per checkout, so a second click or a retry is the same order
    this.savedAddress = undefined;
    this.savedCard = undefined; // the newest saved card, or null
    $("checkout-close").addEventListener("click", () => this.dialog.close());
    $("checkout-quote").addEventListener("click", () => this.getQuote());
    $("checkout-order").addEventListener("click", () => this.placeOrder());
    // Anything that changes what is bought or where it goes needs a new quote.
    for (const input of this.dialog.querySelectorAll("input:not([type=checkbox]), select")) {
      input.addEventListener("input", () => this.forgetQuote());
    }
  }

  /** Open the checkout for `product`, on `variantId` when given. */
  async open(product, variantId) {
    this.product = product;
    this.orderKey = newKey();
    this.forgetQuote();
    this.address.clearErrors();
    $("checkout-error").textContent = "";
    $("checkout-title").textContent = `Buy ${product.title}`;
    $("checkout-price").textContent = `${product.base_item?.name ?? "Item"} · ${cents(product.price_cents)} each`;
    $("checkout-variant").replaceChildren(...product.variants.map((v) => new Option(variantLabel(v), v.id)));
    if (variantId) $("checkout-variant").value = variantId;
    $("checkout-quantity").value = "1";
    if (this.savedAddress === undefined) this.savedAddress = await this.loadSavedAddress();
    if (this.savedAddress && !this.address.value().line1) this.address.fill(this.savedAddress);
    if (this.savedCard === undefined) this.savedCard = await this.loadSavedCard();
    this.showPaymentChoice();
    this.dialog.showModal();
  }

  async loadSavedCard() {
    const { methods } = await api("/api/payment-methods");
    return methods.at(-1) ?? null;
  }

  showPaymentChoice() {
    $("checkout-pay").hidden = !this.savedCard;
    if (!this.savedCard) return;
    $("checkout-pay-saved-label").textContent = `Pay with saved card ····${this.savedCard.last4}`;
    $("checkout-pay-saved").checked = true;
  }

  async loadSavedAddress() {
    return api("/api/shipping-address"); // null (204) when none is saved
  }

  forgetQuote() {
    this.quote = null;
    $("checkout-quote-line").textContent = "";
    $("checkout-order").disabled = true;
  }

  items() {
    return [{ product_id: this.product.id, variant_id: $("checkout-variant").value,
      quantity: Number($("checkout-quantity").value) }];
  }

  showError(error) {
    if (this.address.showProblem(error)) return;
    if (error instanceof ApiError && /quantity/.test(error.field)) {
      $("checkout-quantity-error").textContent = error.detail;
      $("checkout-quantity").setAttribute("aria-invalid", "true");
      return;
    }
    $("checkout-error").textContent = error.message;
  }

  clearErrors() {
    this.address.clearErrors();
    $("checkout-error").textContent = "";
    $("checkout-quantity-error").textContent = "";
    $("checkout-quantity").removeAttribute("aria-invalid");
  }

  async getQuote() {
    this.clearErrors();
    const [item] = this.items();
    $("checkout-quote").disabled = true;
    try {
      this.quote = await api("/api/shipping/quote", { method: "POST", body: {
        product_id: item.product_id, variant_id: item.variant_id, quantity: item.quantity,
        address: this.address.value() } });
      const items = this.product.price_cents * item.quantity;
      $("checkout-quote-line").textContent = `Shipping ${cents(this.quote.shipping_cents)} (${this.quote.name},`
        + ` ${this.quote.min_delivery_days}–${this.quote.max_delivery_days} days) · Total`
        + ` ${cents(items + this.quote.shipping_cents)}`;
      $("checkout-order").disabled = false;
      if ($("checkout-save-address").checked) await this.saveAddress();
    } catch (error) {
      this.showError(error);
    } finally {
      $("checkout-quote").disabled = false;
    }
  }

  async saveAddress() {
    this.savedAddress = await api("/api/shipping-address", { method: "PUT", body: this.address.value() });
  }

  async placeOrder() {
    this.clearErrors();
    $("checkout-order").disabled = true;
    try {
      const order = await api("/api/orders", { method: "POST", body: {
        items: this.items(), shipping_address: this.address.value(), idempotency_key: this.orderKey } });
      if (this.savedCard && $("checkout-pay-saved").checked) {
        await this.payWithSavedCard(order);
        return;
      }
      if (order.payment.pay_url) {
        location.assign(order.payment.pay_url);
        return;
      }
      $("checkout-error").textContent = `Order ${order.id} is waiting for its payment: this node takes payments`
        + " through Stripe, and card entry with Stripe.js is not on this page yet.";
    } catch (error) {
      this.showError(error);
      $("checkout-order").disabled = this.quote === null;
    }
  }

  /** Pay the order with the saved card; a refusal leaves it pending, and the card page is offered instead. */
  async payWithSavedCard(order) {
    try {
      await api(`/api/orders/${encodeURIComponent(order.id)}/pay`, { method: "POST", body: {
        payment_method: this.savedCard.id, idempotency_key: newKey() } });
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 402)) throw error;
      $("checkout-pay-card").checked = true;
      $("checkout-error").textContent = `${error.message} Press “Place order and pay” to pay it on the card page.`;
      $("checkout-order").disabled = false;
      return;
    }
    location.assign(`/orders.html?order=${encodeURIComponent(order.id)}`);
  }
}

let checkout = null; // one per page, made at the first Buy

/**
 * Make `button` open the checkout for what `choice()` answers: [product, variant id]. A guest is sent to log in
 * first, and comes back to this page.
 */
export function wireBuy(button, choice) {
  button.addEventListener("click", async () => {
    const [product, variantId] = choice();
    if (!product) return;
    checkout ??= new Checkout();
    button.disabled = true;
    try {
      await checkout.open(product, variantId);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        location.assign(`/login.html?next=${encodeURIComponent(location.pathname + location.search)}`);
        return;
      }
      $("page-banner").textContent = error.message;
      $("page-banner").hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}
