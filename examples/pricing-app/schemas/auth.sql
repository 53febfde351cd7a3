-- data/auth.db: accounts and sessions.

CREATE TABLE IF NOT EXISTS users (
    id                  INTEGER PRIMARY KEY,
    email               TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash       TEXT    NOT NULL,
    two_factor_enabled  INTEGER NOT NULL DEFAULT 0 CHECK (two_factor_enabled IN (0, 1)),
    totp_secret         TEXT,
    created_at          TEXT    NOT NULL,
    last_login_at       TEXT
);

CREATE TABLE IF NOT EXISTS session_tokens (
    token       TEXT    NOT NULL PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_tokens_user ON session_tokens (user_id);
CREATE INDEX IF NOT EXISTS session_tokens_expiry ON session_tokens (expires_at) WHERE revoked = 0;
