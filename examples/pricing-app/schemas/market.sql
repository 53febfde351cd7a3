-- data/market.db: market prices and the published price list.

CREATE TABLE IF NOT EXISTS market_data (
    symbol  TEXT    NOT NULL,
    ts      INTEGER NOT NULL,
    open    REAL    NOT NULL,
    high    REAL    NOT NULL,
    low     REAL    NOT NULL,
    close   REAL    NOT NULL,
    volume  REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (symbol, ts)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS pricing_list (
    id           INTEGER PRIMARY KEY,
    sku          TEXT    NOT NULL,
    price_cents  INTEGER NOT NULL CHECK (price_cents >= 0),
    currency     TEXT    NOT NULL DEFAULT 'EUR',
    valid_from   TEXT    NOT NULL,
    valid_to     TEXT,
    UNIQUE (sku, valid_from)
);
CREATE INDEX IF NOT EXISTS pricing_list_open ON pricing_list (sku) WHERE valid_to IS NULL;

CREATE VIEW IF NOT EXISTS current_prices AS
    SELECT sku, price_cents, currency, valid_from
    FROM pricing_list
    WHERE valid_to IS NULL;
