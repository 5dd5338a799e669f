-- The node a stream was created on: until a publisher's node owns the room (in the media registry), this node
-- vouches for the stream, so a starting node ends only the live streams that no live node owns.
ALTER TABLE streams ADD COLUMN created_on_node text;
