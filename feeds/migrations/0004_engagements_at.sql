-- Trending reads the engagement of a recent window (feeds/trending.py): by time, not the whole table.
CREATE INDEX engagements_at ON engagements (at);
