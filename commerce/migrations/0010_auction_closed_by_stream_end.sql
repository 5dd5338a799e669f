-- An auction still open when its stream ends closes then (closed_by / how = 'stream_end'): the leader wins and is
-- charged as after a close by time; with no bids the lot is unsold.
ALTER TABLE auctions DROP CONSTRAINT auctions_closed_by_check,
    ADD CONSTRAINT auctions_closed_by_check CHECK (closed_by IN ('time', 'buy_now', 'stream_end'));
ALTER TABLE auction_wins DROP CONSTRAINT auction_wins_how_check,
    ADD CONSTRAINT auction_wins_how_check CHECK (how IN ('time', 'buy_now', 'stream_end'));
