-- The node that makes a stream's media files (HLS, recording, thumbnail) on its disk: the owner of the room while it
-- is live, and after the stream ends the node every other node copies those files from (livecore/media/ownercopies.py).
-- A publisher that moves to another node moves this with it.
ALTER TABLE streams ADD COLUMN media_node text;
