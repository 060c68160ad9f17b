-- Nothing reads issuances by issuer O (the CA pages read the rollups, and
-- a researcher's CA question goes through v_issuances' GROUP BY), and
-- every analysed issuance paid for the index: it goes.
ALTER TABLE issuances DROP KEY issuances_ca;
-- Likewise renewals by names key (a set's chain is read through
-- issuances.names_key).
ALTER TABLE renewals DROP KEY renewals_names;

-- The analysis writes a batch on three connections; the main one commits
-- last, with the watermark and the last issuance id it handed out. Rows
-- above that id were left by a batch whose main transaction failed, and
-- are deleted when the batch is done again.
ALTER TABLE analysis_state ADD COLUMN last_issuance_id BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER last_sighting_id;
UPDATE analysis_state SET last_issuance_id = (SELECT COALESCE(MAX(id), 0) FROM issuances) WHERE id = 1;
