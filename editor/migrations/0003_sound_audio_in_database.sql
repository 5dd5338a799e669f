-- A sound's audio in PostgreSQL, the book of record: any node serves any sound, whichever node took the upload and
-- whether or not it still runs. Each node keeps files of the sounds it served in <data dir>/sounds/ (a bounded
-- cache). A table of its own so that listing sounds never reads the bytes.
CREATE TABLE sound_audio (
    sound_id bigint PRIMARY KEY REFERENCES sounds(id),
    audio bytea NOT NULL
);

-- A hashtag is checked where it is made lower case (Python's `str.lower`, which PostgreSQL's `lower` and `\w` under
-- the database's locale need not agree with): here only its length.
ALTER TABLE challenges DROP CONSTRAINT challenges_hashtag_check;
ALTER TABLE challenges ADD CONSTRAINT challenges_hashtag_length CHECK (length(hashtag) BETWEEN 1 AND 50);
