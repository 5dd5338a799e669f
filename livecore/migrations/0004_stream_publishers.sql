-- A stream is live only while someone publishes. A new stream is 'created' until its publisher connects; then it is
-- 'live', and it ends when its publisher has been gone longer than the reconnect grace. `publisher_deadline_at` is
-- when the stream ends unless a publisher is connected: creation + stream_unpublished_ms_max, then, while a
-- publisher is connected, a little more than media_publish_grace_ms ahead (the owner node renews it), and from the
-- moment the publisher leaves, that moment + media_publish_grace_ms. Times come from the node's clock.
ALTER TABLE streams ADD COLUMN publisher_deadline_at timestamptz;
ALTER TABLE streams ALTER COLUMN state SET DEFAULT 'created';
-- Streams left live by an earlier version had no publisher check: they end at the first sweep.
UPDATE streams SET publisher_deadline_at = now() WHERE state <> 'ended';
CREATE INDEX streams_publisher_deadline ON streams (publisher_deadline_at) WHERE state <> 'ended';
