-- Identities (issue 15): a public name and, when its volunteer gave one, the
-- hash of its secret. Every worker row (a machine's registration, with its
-- own token) belongs to one identity; the machines registered with a name's
-- secret share it, so the dashboards show one name with their totals summed.
-- A name registered without a secret has one machine, as before.
CREATE TABLE identities (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- Unique with the same collation as workers.name had: 'Ivy' is 'ivy'.
    name VARCHAR(64) NOT NULL,
    -- SHA-256 (lowercase hex) of the volunteer's secret; NULL: none given.
    secret_hash CHAR(64) NULL,
    -- Where and when the name was first registered: new names are
    -- rate-limited per address.
    address VARCHAR(64) NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    UNIQUE KEY identities_name (name),
    KEY identities_address (address, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Every registered name so far becomes an identity without a secret.
INSERT INTO identities (name, secret_hash, address, created_at)
    SELECT name, NULL, address, first_seen FROM workers ORDER BY id;

ALTER TABLE workers
    -- NULL only for rows written by something else than the manager's
    -- registration (test fixtures); such a row is its own name.
    ADD COLUMN identity_id BIGINT UNSIGNED NULL,
    -- The registration that replaced this one (the same machine registered
    -- again, naming this token): this token no longer works.
    ADD COLUMN replaced_by BIGINT UNSIGNED NULL,
    ADD KEY workers_identity (identity_id, first_seen),
    ADD CONSTRAINT workers_identity_fk FOREIGN KEY (identity_id) REFERENCES identities (id);

UPDATE workers w JOIN identities i ON i.name = w.name SET w.identity_id = i.id;

-- Names are unique in identities now; machines of one identity share theirs.
ALTER TABLE workers DROP INDEX workers_name, ADD KEY workers_name (name);
