"""Live auctions: a creator auctions a product variant in their live room; the server's clock and one atomic
commit per batch of bids decide; every change is a must-deliver `auction` room event.

Public: `Auctions` (the context of one node), `add_routes`, `place_bid` (also the room's `bid` command),
`latest_in_room` (a room's current auction, for join snapshots) and `close_due` (closes the auctions whose end passed
or whose stream ended). A won auction leaves a row in `auction_wins` (state `awaiting_payment`) for the payment step
(commerce/orders/winners.py), which announces its steps with `announce_payment_step`.
"""

from commerce.auctions.auctions import announce_payment_step, close_due, latest_in_room, place_bid
from commerce.auctions.routes import add_routes
from commerce.auctions.service import Auctions

__all__ = ["Auctions", "add_routes", "announce_payment_step", "close_due", "latest_in_room", "place_bid"]
