-- What changed since a node last read the ad inventory (ads/inventory.py), so that its refresh every ads_refresh_ms
-- reads only that. Each change is stamped with the id of the transaction that made it (pg_current_xact_id, 64 bits,
-- never wraps); a refresh reads in one snapshot the rows stamped at or after the previous snapshot's xmin, so a
-- transaction still open then is read once it has committed, and one seen already may be read once more (harmless).
-- Two stamps, because they move at very different rates:
-- - definition_xid on a campaign: its own definition (state, budgets, schedule, pacing) changed, or one of its ad
--   groups or creatives was added, changed or deleted. Rare; the refresh reads the campaign whole again.
-- - changed_xid on an hourly roll-up: the campaign's impressions, clicks or spend moved (every event batch). The
--   refresh reads that campaign's figures again: a few numbers. A charge moves charged_millicents in the same
--   transaction as its roll-up, so it needs no stamp of its own (and spend posting, which moves only the billed
--   columns, stamps nothing).
-- A deleted campaign leaves its id in ad_campaigns_deleted (nothing in the product deletes one: events and roll-ups
-- refer to it; an operator might).
-- ad_group_counts keeps each ad group's impressions and clicks of all time (the predicted click rate's figures), moved
-- by the event batch that moves its roll-ups (ads/events.py), so a refresh reads the groups whose counts moved
-- instead of summing every hour of their campaigns.

ALTER TABLE ad_campaigns ADD COLUMN definition_xid bigint NOT NULL DEFAULT 0;
ALTER TABLE ad_campaigns ALTER COLUMN definition_xid SET DEFAULT pg_current_xact_id()::text::bigint;
CREATE INDEX ad_campaigns_definition_xid ON ad_campaigns (definition_xid);

ALTER TABLE ad_stats_hourly ADD COLUMN changed_xid bigint NOT NULL DEFAULT 0;
ALTER TABLE ad_stats_hourly ALTER COLUMN changed_xid SET DEFAULT pg_current_xact_id()::text::bigint;
CREATE INDEX ad_stats_hourly_changed_xid ON ad_stats_hourly (changed_xid);

CREATE TABLE ad_campaigns_deleted (
    id bigint PRIMARY KEY,
    deleted_xid bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint
);
CREATE INDEX ad_campaigns_deleted_xid ON ad_campaigns_deleted (deleted_xid);

CREATE FUNCTION ad_stamp_definition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.definition_xid := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END $$;

CREATE TRIGGER ad_campaigns_definition BEFORE UPDATE ON ad_campaigns FOR EACH ROW
    WHEN ((OLD.advertiser_id, OLD.state, OLD.budget_daily_cents, OLD.budget_lifetime_cents, OLD.starts_ms,
           OLD.ends_ms, OLD.pacing)
          IS DISTINCT FROM (NEW.advertiser_id, NEW.state, NEW.budget_daily_cents, NEW.budget_lifetime_cents,
                            NEW.starts_ms, NEW.ends_ms, NEW.pacing))
    EXECUTE FUNCTION ad_stamp_definition();

CREATE FUNCTION ad_stamp_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_xid := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END $$;

CREATE TRIGGER ad_stats_hourly_changed BEFORE UPDATE ON ad_stats_hourly FOR EACH ROW
    EXECUTE FUNCTION ad_stamp_changed();

CREATE FUNCTION ad_campaign_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ad_campaigns_deleted (id) VALUES (OLD.id)
        ON CONFLICT (id) DO UPDATE SET deleted_xid = excluded.deleted_xid;
    RETURN OLD;
END $$;

CREATE TRIGGER ad_campaigns_deleted AFTER DELETE ON ad_campaigns FOR EACH ROW
    EXECUTE FUNCTION ad_campaign_deleted();

-- A group or creative changed: its campaign's definition is read again. The campaign row is stamped after the
-- statement (once per campaign, however many rows it touched).
CREATE FUNCTION ad_groups_touch_campaigns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ad_campaigns SET definition_xid = pg_current_xact_id()::text::bigint
    WHERE id IN (SELECT campaign_id FROM changed_rows);
    RETURN NULL;
END $$;

CREATE TRIGGER ad_groups_inserted AFTER INSERT ON ad_groups REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ad_groups_touch_campaigns();
CREATE TRIGGER ad_groups_updated_new AFTER UPDATE ON ad_groups REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ad_groups_touch_campaigns();
CREATE TRIGGER ad_groups_updated_old AFTER UPDATE ON ad_groups REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ad_groups_touch_campaigns();
CREATE TRIGGER ad_groups_deleted AFTER DELETE ON ad_groups REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ad_groups_touch_campaigns();

CREATE FUNCTION ad_creatives_touch_campaigns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ad_campaigns SET definition_xid = pg_current_xact_id()::text::bigint
    WHERE id IN (SELECT g.campaign_id FROM ad_groups g JOIN changed_rows c ON c.ad_group_id = g.id);
    RETURN NULL;
END $$;

CREATE TRIGGER ad_creatives_inserted AFTER INSERT ON ad_creatives REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ad_creatives_touch_campaigns();
CREATE TRIGGER ad_creatives_updated_new AFTER UPDATE ON ad_creatives REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ad_creatives_touch_campaigns();
CREATE TRIGGER ad_creatives_updated_old AFTER UPDATE ON ad_creatives REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ad_creatives_touch_campaigns();
CREATE TRIGGER ad_creatives_deleted AFTER DELETE ON ad_creatives REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ad_creatives_touch_campaigns();

CREATE TABLE ad_group_counts (
    ad_group_id bigint PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES ad_campaigns (id),
    impressions bigint NOT NULL DEFAULT 0,
    clicks bigint NOT NULL DEFAULT 0,
    changed_xid bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint
);
CREATE INDEX ad_group_counts_campaign ON ad_group_counts (campaign_id);
CREATE INDEX ad_group_counts_changed_xid ON ad_group_counts (changed_xid);
INSERT INTO ad_group_counts (ad_group_id, campaign_id, impressions, clicks)
    SELECT ad_group_id, min(campaign_id), sum(impressions), sum(clicks) FROM ad_stats_hourly GROUP BY 1;

CREATE TRIGGER ad_group_counts_changed BEFORE UPDATE ON ad_group_counts FOR EACH ROW
    EXECUTE FUNCTION ad_stamp_changed();
