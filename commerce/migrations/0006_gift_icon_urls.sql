-- Gift icons are SVG files the node serves, named by URL, instead of emoji that a machine without a colour-emoji
-- font shows as empty boxes. The icon is presentation, not price: catalogue.json keeps it current for every version.
ALTER TABLE gift_catalogue ADD COLUMN icon_url text;
UPDATE gift_catalogue SET icon_url = '/static/icons/gifts/' || gift_id || '.svg';
ALTER TABLE gift_catalogue ALTER COLUMN icon_url SET NOT NULL;
ALTER TABLE gift_catalogue DROP COLUMN icon;
