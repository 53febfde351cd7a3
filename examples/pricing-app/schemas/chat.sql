-- data/chat.db: the pricing assistant's conversations.

CREATE TABLE IF NOT EXISTS threads (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL,
    title       TEXT    NOT NULL DEFAULT '',
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS threads_user_updated ON threads (user_id, updated_at DESC);

CREATE TABLE IF NOT EXISTS messages (
    id          INTEGER PRIMARY KEY,
    thread_id   INTEGER NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content     TEXT    NOT NULL,
    created_at  TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_thread_created ON messages (thread_id, created_at);

CREATE TABLE IF NOT EXISTS summaries (
    thread_id   INTEGER PRIMARY KEY REFERENCES threads (id) ON DELETE CASCADE,
    summary     TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

-- A new message makes its thread the most recent one.
CREATE TRIGGER IF NOT EXISTS messages_touch_thread AFTER INSERT ON messages
BEGIN
    UPDATE threads SET updated_at = new.created_at WHERE id = new.thread_id;
END;
