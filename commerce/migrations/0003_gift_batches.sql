-- Gifts are committed in batches: one round trip and one database transaction carry many gifts, each still its
-- own balanced journal transaction with its own outcome, so a room full of senders costs the database a few
-- set-based statements per batch instead of several round trips, a posting trigger and five balance updates per gift.
--
-- 1. Every account the batch moves is locked, in id order, so two batches (on any node) never deadlock. A gift's
--    external id names its sender, so a retry racing in another batch waits on the same wallet lock and then
--    sees the first one committed.
-- 2. Each gift's outcome is decided in order against the wallets' balances and today's spend as they stand after
--    the gifts before it. The database still guards the money: if a decision were wrong, the posting trigger or
--    the wallet CHECK fails the whole statement and nothing of the batch commits (the caller then retries its
--    gifts one by one).
-- 3. The accepted gifts are posted in one statement (one journal transaction each), and the derived daily spend
--    and top-gifter rows are added once per sender.
--
-- One row per gift comes back, in order:
--   outcome      'ok', 'duplicate' (the external id already made a transaction), 'stream-not-live',
--                'wallet-frozen', 'insufficient-funds' or 'daily-spend-limit'
--   tx_id        the new transaction's id when 'ok'
--   coins_left   the sender's coin balance after the gift when 'ok'
CREATE FUNCTION gift_post_batch(
    external_ids text[], sender_ids bigint[], stream_ids bigint[], gift_coins bigint[], gift_details text[],
    wallet_ids bigint[], held_ids bigint[], creator_shares bigint[], platform_shares bigint[],
    coin_issuance bigint, diamond_issuance bigint, revenue bigint,
    now_ms bigint, spend_day date, spend_max bigint
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
