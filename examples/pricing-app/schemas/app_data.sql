-- app/data.db: the pricing service's working data.
-- preflight converges the live database on this file; the service can run it too.

CREATE TABLE IF NOT EXISTS product_catalog (
    id           INTEGER PRIMARY KEY,
    sku          TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    category     TEXT    NOT NULL DEFAULT 'uncategorised',
    price_cents  INTEGER NOT NULL CHECK (price_cents >= 0),
    currency     TEXT    NOT NULL DEFAULT 'EUR',
    source_url   TEXT,
    updated_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX IF NOT EXISTS product_catalog_category ON product_catalog (category, name);

CREATE TABLE IF NOT EXISTS market_ticks (
    id           INTEGER PRIMARY KEY,
    product_id   INTEGER NOT NULL REFERENCES product_catalog (id) ON DELETE CASCADE,
    source       TEXT    NOT NULL,
    price_cents  INTEGER NOT NULL,
    observed_at  TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS market_ticks_product_time ON market_ticks (product_id, observed_at DESC);

CREATE TABLE IF NOT EXISTS price_proposals (
    id              INTEGER PRIMARY KEY,
    product_id      INTEGER NOT NULL REFERENCES product_catalog (id) ON DELETE CASCADE,
    proposed_cents  INTEGER NOT NULL CHECK (proposed_cents >= 0),
    reason          TEXT,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'accepted', 'rejected', 'superseded')),
    created_at      TEXT    NOT NULL,
    decided_at      TEXT
);
CREATE INDEX IF NOT EXISTS price_proposals_pending ON price_proposals (product_id, created_at)
    WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS ingestion_jobs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    source         TEXT    NOT NULL,
    started_at     TEXT    NOT NULL,
    finished_at    TEXT,
    status         TEXT    NOT NULL DEFAULT 'running',
    rows_ingested  INTEGER NOT NULL DEFAULT 0,
    error          TEXT
);
CREATE INDEX IF NOT EXISTS ingestion_jobs_source_started ON ingestion_jobs (source, started_at);
