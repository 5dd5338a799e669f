-- An offer not delivered offer_expire_after_days after its due date expires (a sweep): an accepted one's escrow goes
-- back to the advertiser (ledger kind escrow_returned, ref offer:<id>) in the same transaction as its state.
ALTER TABLE marketplace_offers DROP CONSTRAINT marketplace_offers_state_check;
ALTER TABLE marketplace_offers ADD CONSTRAINT marketplace_offers_state_check
    CHECK (state IN ('offered', 'accepted', 'declined', 'cancelled', 'delivered', 'expired'));
CREATE INDEX marketplace_offers_open_due ON marketplace_offers (due_date) WHERE state IN ('offered', 'accepted');
