-- How many of a purchase's cents the provider has given back so far (refunds, disputes). A partial refund takes
-- back the matching share of the coins; the purchase is 'reversed' once all of it has been given back.
ALTER TABLE coin_purchases
    ADD COLUMN reversed_cents bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT purchase_reversed_within_amount CHECK (reversed_cents BETWEEN 0 AND amount_cents);
