// A room's shop on a page: the pinned product and the current auction, folded from the join snapshot and the room's
// `product_pinned` and `auction` events (the client side of commerce/room_shop.py). The watch page shows the pin as a
// card and bids; the studio shows the same auction panel and marks its pinned product.

import { ServerClock, foldPin } from "./auction.js";
import { AuctionPanel } from "./auctionpanel.js";
import { Bidding } from "./bidding.js";

export class RoomShop {
  /** `onPin(product | null)` sees every change of the pinned product, `onAuction()` every render of the auction. */
  constructor({ onPin = () => {}, onAuction = () => {} } = {}) {
    this.onPin = onPin;
    this.pin = null;
    this.clock = new ServerClock();
    this.bidding = null;
    this.panel = new AuctionPanel({ clock: this.clock, onRender: () => {
      this.bidding?.render();
      onAuction();
    } });
    // Only the watch page's panel has bid controls.
    if (document.getElementById("bidding")) this.bidding = new Bidding(this.panel);
  }

  /** The signed-in account (null for a guest) and where to log in, for the bid controls. */
  setAccount(me, loginUrl) {
    return this.bidding?.setViewer(me, loginUrl);
  }

  /** Forget the room shown so far (the studio moves to a new stream). */
  reset() {
    this.pin = null;
    this.panel.lot = null;
    this.panel.render();
  }

  takeSnapshot(snapshot) {
    this.panel.setViewer(snapshot.you);
    this.takePin(snapshot.pinned ?? null, snapshot.pin_version ?? 0);
    this.panel.takeSnapshot(snapshot);
  }

  /** Apply a room event; true when it was one of the shop's. */
  apply(event) {
    if (event.type === "product_pinned") {
      this.takePin(event.product, event.pin_version);
      return true;
    }
    if (event.type === "auction") {
      this.panel.takeEvent(event);
      return true;
    }
    return false;
  }

  takePin(product, version) {
    const before = this.pin;
    this.pin = foldPin(this.pin, product, version);
    if (this.pin !== before) this.onPin(this.pin.product);
  }
}
