-- What the media plane leaves behind for a stream: its recording (for replay) and its latest thumbnail.
ALTER TABLE streams ADD COLUMN recording_url text, ADD COLUMN thumbnail_url text;
