// A shipping address form (templates/parts/address.html): read it as the API's Address, fill it from a saved one,
// and show the server's refusal beside the field it names (problem+json `field`: "address.postcode",
// "shipping_address.country", ...). The per-country rules live on the server only.

import { ApiError } from "./api.js";

const FIELDS = ["name", "line1", "line2", "city", "subdivision", "postcode", "country", "phone"];
const OPTIONAL = new Set(["line2", "subdivision", "postcode", "phone"]);

export class AddressForm {
  constructor(prefix) {
    this.prefix = prefix;
    this.inputs = new Map(FIELDS.map((name) => [name, document.getElementById(`${prefix}-${name}`)]));
    for (const input of this.inputs.values()) input.addEventListener("input", () => this.clearError(input.name));
  }

  /** The address as the API takes it: empty optional fields left out. */
  value() {
    const address = {};
    for (const [name, input] of this.inputs) {
      const text = input.value.trim();
      if (text || !OPTIONAL.has(name)) address[name] = text;
    }
    return address;
  }

  fill(address) {
    for (const [name, input] of this.inputs) input.value = address?.[name] ?? "";
  }

  clearError(name) {
    const input = this.inputs.get(name);
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-errormessage");
    document.getElementById(`${this.prefix}-${name}-error`).textContent = "";
  }

  clearErrors() {
    for (const name of FIELDS) this.clearError(name);
  }

  /** Show a refusal beside its field when it names one of the address's; true when it did. */
  showProblem(error) {
    if (!(error instanceof ApiError)) return false;
    const match = /(?:^|\.)(?:address|shipping_address)\.([a-z0-9]+)/.exec(error.field || "");
    if (!match || !this.inputs.has(match[1])) return false;
    const name = match[1];
    const input = this.inputs.get(name);
    const line = document.getElementById(`${this.prefix}-${name}-error`);
    line.textContent = error.detail;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-errormessage", line.id);
    input.focus();
    return true;
  }
}
