-- An admin may lift a freeze (the viewer paid what they owed, or support forgave it); the freeze rows stay as the
-- record of the shortfall, marked with who resolved them and when.
ALTER TABLE wallet_freezes
    ADD COLUMN resolved_ms bigint,
    ADD COLUMN resolved_by bigint REFERENCES accounts (id);
