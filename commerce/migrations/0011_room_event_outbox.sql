-- Committed means announced: a room event born from committed money (a gift, a bid, an auction's close) is
-- written in the same transaction as the money, into this outbox, and published to the room's bus by a relay on
-- every node (commerce/event_outbox.py) that retries until the bus takes it. Not the chat outbox
-- (signaling/outbox.py), which is a node's in-memory queue of lossy chat on its way to Redis.
--
-- A relay leases the oldest rows (FOR UPDATE SKIP LOCKED, then `leased_until_ms`), publishes them with their id as
-- the event id and deletes them. The bus publishes an event id at most once per room, so a row published again
-- (its lease ran out: the relay died, or its answer from the bus was lost) is no duplicate. Ids follow insertion,
-- and a room's events go out in id order.
CREATE TABLE room_event_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id bigint NOT NULL,
    event jsonb NOT NULL CHECK (jsonb_typeof(event) = 'object' AND event ? 'type'),
    created_ms bigint NOT NULL,
    leased_until_ms bigint NOT NULL DEFAULT 0
);
CREATE INDEX room_event_outbox_by_room ON room_event_outbox (room_id, id);

-- Every commit that wrote events wakes the relays of all nodes at once, so an event does not wait for a poll tick.
-- The payload is the highest id written: a relay that has already leased past it need not look again (a row
-- committed after a newer one was leased is still found: its own node wakes its relay directly, and every relay
-- polls).
CREATE FUNCTION room_event_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('room_event_outbox', (SELECT max(id)::text FROM written));
    RETURN NULL;
END $$;
CREATE TRIGGER room_event_outbox_written AFTER INSERT ON room_event_outbox REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION room_event_outbox_notify();

-- gift_post_batch (0003) now also writes each accepted gift's room event: `gift_events` holds one JSON object per
-- gift, completed here with the transaction's id (the combo count is added by the relay, commerce/gifts.py).
DROP FUNCTION gift_post_batch(text[], bigint[], bigint[], bigint[], text[], bigint[], bigint[], bigint[], bigint[],
    bigint, bigint, bigint, bigint, date, bigint);

CREATE FUNCTION gift_post_batch(
    external_ids text[], sender_ids bigint[], stream_ids bigint[], gift_coins bigint[], gift_details text[],
    wallet_ids bigint[], held_ids bigint[], creator_shares bigint[], platform_shares bigint[],
    coin_issuance bigint, diamond_issuance bigint, revenue bigint,
    now_ms bigint, spend_day date, spend_max bigint, gift_events text[]
) RETURNS TABLE (outcome text, tx_id bigint, coins_left bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n int := coalesce(array_length(external_ids, 1), 0);
    outcomes text[] := array_fill(NULL::text, ARRAY[n]);
    left_after bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    tx_ids bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    accepted int[] := '{}';
    accepted_ids text[] := '{}';
    wallets bigint[];
    balances bigint[];
    frozen_flags boolean[];
    spent bigint[];
    known text[];
    live bigint[];
    posted_ids bigint[];
    posted_at int[];
    i int;
    w int;
BEGIN
    PERFORM 1 FROM ledger_accounts
        WHERE id = ANY (wallet_ids || held_ids || ARRAY[coin_issuance, diamond_issuance, revenue])
        ORDER BY id FOR NO KEY UPDATE;

    SELECT array_agg(a.id ORDER BY a.id), array_agg(a.balance ORDER BY a.id), array_agg(a.frozen ORDER BY a.id),
           array_agg(coalesce(d.coins, 0) ORDER BY a.id)
        INTO wallets, balances, frozen_flags, spent
        FROM ledger_accounts a LEFT JOIN gift_daily_spend d ON d.sender_id = a.owner_id AND d.day = spend_day
        WHERE a.id = ANY (wallet_ids);
    SELECT coalesce(array_agg(t.external_id), '{}') INTO known
        FROM ledger_transactions t WHERE t.external_id = ANY (external_ids);
    SELECT coalesce(array_agg(s.id), '{}') INTO live
        FROM streams s WHERE s.id = ANY (stream_ids) AND s.state = 'live';

    FOR i IN 1 .. n LOOP
        w := array_position(wallets, wallet_ids[i]);
        IF external_ids[i] = ANY (known) OR external_ids[i] = ANY (accepted_ids) THEN
            outcomes[i] := 'duplicate';
        ELSIF NOT (stream_ids[i] = ANY (live)) THEN
            outcomes[i] := 'stream-not-live';
        ELSIF frozen_flags[w] THEN
            outcomes[i] := 'wallet-frozen';
        ELSIF balances[w] < gift_coins[i] THEN
            outcomes[i] := 'insufficient-funds';
        ELSIF spent[w] + gift_coins[i] > spend_max THEN
            outcomes[i] := 'daily-spend-limit';
        ELSE
            outcomes[i] := 'ok';
            balances[w] := balances[w] - gift_coins[i];
            spent[w] := spent[w] + gift_coins[i];
            left_after[i] := balances[w];
            accepted := accepted || i;
            accepted_ids := accepted_ids || external_ids[i];
        END IF;
    END LOOP;

    IF cardinality(accepted) > 0 THEN
        WITH picked AS (
            SELECT k.i FROM unnest(accepted) AS k (i)
        ), tx AS (
            INSERT INTO ledger_transactions AS t (kind, external_id, created_ms, actor_id, stream_id, details)
                SELECT 'gift', external_ids[p.i], now_ms, sender_ids[p.i], stream_ids[p.i], gift_details[p.i]::jsonb
                FROM picked p ORDER BY p.i
                RETURNING t.id, t.external_id
        ), numbered AS (
            SELECT p.i, tx.id FROM picked p JOIN tx ON tx.external_id = external_ids[p.i]
        ), announced AS (
            INSERT INTO room_event_outbox (room_id, event, created_ms)
                SELECT stream_ids[x.i], gift_events[x.i]::jsonb || jsonb_build_object('id', x.id), now_ms
                FROM numbered x ORDER BY x.i
        ), legs AS (
            INSERT INTO ledger_entries (transaction_id, account_id, currency, amount)
                SELECT x.id, leg.account_id, leg.currency, leg.amount
                FROM numbered x CROSS JOIN LATERAL (VALUES
                    (wallet_ids[x.i], 'COIN', -gift_coins[x.i]),
                    (coin_issuance, 'COIN', gift_coins[x.i]),
                    (diamond_issuance, 'DIAMOND', -(creator_shares[x.i] + platform_shares[x.i])),
                    (held_ids[x.i], 'DIAMOND', creator_shares[x.i]),
                    (revenue, 'DIAMOND', platform_shares[x.i])
                ) AS leg (account_id, currency, amount)
                WHERE leg.amount <> 0
        )
        SELECT array_agg(x.id), array_agg(x.i) INTO posted_ids, posted_at FROM numbered x;
        FOR i IN 1 .. cardinality(posted_at) LOOP
            tx_ids[posted_at[i]] := posted_ids[i];
        END LOOP;

        INSERT INTO gift_daily_spend AS d (sender_id, day, coins)
            SELECT sender_ids[k.i], spend_day, sum(gift_coins[k.i]) FROM unnest(accepted) AS k (i) GROUP BY 1
            ON CONFLICT (sender_id, day) DO UPDATE SET coins = d.coins + EXCLUDED.coins;
        INSERT INTO gift_leaders AS l (stream_id, sender_id, coins)
            SELECT stream_ids[k.i], sender_ids[k.i], sum(gift_coins[k.i]) FROM unnest(accepted) AS k (i) GROUP BY 1, 2
            ON CONFLICT (stream_id, sender_id) DO UPDATE SET coins = l.coins + EXCLUDED.coins;
    END IF;

    RETURN QUERY SELECT outcomes[k], tx_ids[k], left_after[k] FROM generate_series(1, n) AS k;
END $$;
