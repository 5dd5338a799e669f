-- The node that processed a video and holds its files; other nodes fetch them from it (feeds/videocache.py).
-- NULL for videos made before this was recorded: only their own node can serve them.
ALTER TABLE videos ADD COLUMN node_id text;
