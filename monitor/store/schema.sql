-- monitor.db, schema version 3: documented table by table in docs/schema.md.
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    pages TEXT NOT NULL,
    warc_file TEXT,
    events INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'check'
);
CREATE TABLE IF NOT EXISTS pages (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    streak INTEGER NOT NULL DEFAULT 0,
    normal_count INTEGER NOT NULL DEFAULT 0,
    baselined INTEGER NOT NULL DEFAULT 0,
    entry_count INTEGER NOT NULL DEFAULT 0,
    accepted_key TEXT,
    accepted_captures TEXT,
    extractor TEXT,
    body_key TEXT,
    etag TEXT,
    last_modified TEXT,
    last_capture_id INTEGER,
    last_checked_at TEXT,
    last_ok_at TEXT,
    last_detail TEXT
);
CREATE TABLE IF NOT EXISTS captures (
    id INTEGER PRIMARY KEY,
    check_id INTEGER NOT NULL REFERENCES checks(id),
    page TEXT NOT NULL,
    url TEXT NOT NULL,
    target_uri TEXT NOT NULL,
    final INTEGER NOT NULL DEFAULT 1,
    at TEXT NOT NULL,
    status INTEGER,
    error TEXT,
    content_type TEXT,
    etag TEXT,
    last_modified TEXT,
    body_bytes INTEGER,
    payload_digest TEXT,
    record_type TEXT,
    record_id TEXT,
    refers_to TEXT,
    original_capture_id INTEGER REFERENCES captures(id),
    warc_file TEXT,
    warc_offset INTEGER,
    warc_length INTEGER,
    truncated TEXT,
    elapsed_s REAL,
    attempts INTEGER,
    source_uri TEXT
);
CREATE INDEX IF NOT EXISTS captures_page ON captures(page, id);
CREATE INDEX IF NOT EXISTS captures_target ON captures(target_uri, id);
CREATE INDEX IF NOT EXISTS captures_record ON captures(record_id);
-- The last whole 2xx (or 304) response of each URL a page was fetched at: where the next
-- check's conditional requests and revisit records start. The trigger keeps it as
-- captures are inserted, so a check reads a row per URL instead of the page's history.
CREATE TABLE IF NOT EXISTS last_responses (
    page TEXT NOT NULL,
    target_uri TEXT NOT NULL,
    capture_id INTEGER NOT NULL REFERENCES captures(id),
    PRIMARY KEY (page, target_uri)
);
CREATE TRIGGER IF NOT EXISTS captures_last_response AFTER INSERT ON captures
WHEN NEW.page IS NOT NULL AND NEW.record_type IS NOT NULL AND NEW.source_uri IS NULL
    AND NEW.payload_digest IS NOT NULL AND NEW.truncated IS NULL
    AND (NEW.status BETWEEN 200 AND 299 OR NEW.status = 304)
BEGIN
    INSERT INTO last_responses (page, target_uri, capture_id)
    VALUES (NEW.page, NEW.target_uri, NEW.id)
    ON CONFLICT (page, target_uri) DO UPDATE SET capture_id = excluded.capture_id
    WHERE excluded.capture_id > last_responses.capture_id;
END;
CREATE TABLE IF NOT EXISTS imported_captures (
    capture_id INTEGER PRIMARY KEY REFERENCES captures(id),
    page_url TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    digest TEXT NOT NULL,
    archive_error TEXT,
    UNIQUE (page_url, timestamp, digest)
);
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    link TEXT,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    page TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_changed TEXT NOT NULL,
    versions INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS entries_state ON entries(state);
CREATE TABLE IF NOT EXISTS entry_versions (
    id INTEGER PRIMARY KEY,
    entry_id TEXT NOT NULL REFERENCES entries(id),
    version INTEGER NOT NULL,
    at TEXT NOT NULL,
    check_id INTEGER NOT NULL REFERENCES checks(id),
    state TEXT NOT NULL,
    page TEXT NOT NULL,
    title TEXT NOT NULL,
    link TEXT,
    description TEXT NOT NULL,
    capture_id INTEGER REFERENCES captures(id),
    source TEXT NOT NULL DEFAULT 'check',
    UNIQUE (entry_id, version)
);
CREATE TABLE IF NOT EXISTS placements (
    page TEXT NOT NULL,
    position INTEGER NOT NULL,
    entry_id TEXT NOT NULL REFERENCES entries(id),
    title TEXT,
    link TEXT,
    description TEXT,
    held INTEGER NOT NULL DEFAULT 0,  -- kept by the hold rule: it left the page, the archive has not answered
    PRIMARY KEY (page, position)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    check_id INTEGER NOT NULL REFERENCES checks(id),
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    page TEXT NOT NULL,
    entry_id TEXT REFERENCES entries(id),
    title TEXT,
    link TEXT,
    description TEXT,
    changes TEXT,
    detail TEXT,
    capture_id INTEGER REFERENCES captures(id),
    source TEXT NOT NULL DEFAULT 'check',
    changes_html TEXT
);
CREATE INDEX IF NOT EXISTS events_entry ON events(entry_id, seq);
CREATE INDEX IF NOT EXISTS events_at ON events(at, seq);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    target INTEGER NOT NULL,
    target_hash TEXT NOT NULL,
    event_ids TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    done_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_at);
CREATE TABLE IF NOT EXISTS entry_pages (
    entry_id TEXT PRIMARY KEY REFERENCES entries(id),
    url TEXT NOT NULL,
    page TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    streak INTEGER NOT NULL DEFAULT 0,
    etag TEXT,
    last_modified TEXT,
    content TEXT,
    last_checked_at TEXT,
    next_due_at TEXT,
    last_capture_id INTEGER REFERENCES captures(id),
    last_detail TEXT,
    removed_at TEXT
);
CREATE INDEX IF NOT EXISTS entry_pages_due ON entry_pages(next_due_at);
CREATE TABLE IF NOT EXISTS entry_page_checks (
    id INTEGER PRIMARY KEY,
    entry_id TEXT NOT NULL REFERENCES entries(id),
    check_id INTEGER NOT NULL REFERENCES checks(id),
    at TEXT NOT NULL,
    url TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    capture_id INTEGER REFERENCES captures(id)
);
CREATE INDEX IF NOT EXISTS entry_page_checks_entry ON entry_page_checks(entry_id, id);
-- Views for reading (Datasette, the sqlite3 shell): nothing writes through them.
CREATE VIEW IF NOT EXISTS events_with_titles AS
SELECT
    ev.seq, ev.id, ev.at, ev.kind, ev.page, ev.entry_id,
    CASE WHEN ev.entry_id IS NULL THEN 'Page ''' || ev.page || ''': ' || coalesce(ev.detail, '')
    ELSE coalesce(nullif(ev.title, ''), nullif(en.title, ''), substr(ev.description, 1, 80))
    END AS title,
    en.title AS title_now, en.state AS state_now,
    ev.link, ev.description, ev.detail, ev.changes, ev.capture_id, ev.source
FROM events AS ev
LEFT JOIN entries AS en ON en.id = ev.entry_id;
CREATE VIEW IF NOT EXISTS current_entries AS
SELECT
    id AS entry_id, state, page, title, link, description,
    first_seen, last_seen, last_changed, versions
FROM entries
WHERE state IN ('active', 'archived');
CREATE VIEW IF NOT EXISTS captures_per_page AS
SELECT
    page,
    count(*) AS captures,
    sum(record_type = 'response') AS responses,
    sum(record_type = 'revisit') AS revisits,
    sum(error IS NOT NULL) AS failed,
    sum(coalesce(body_bytes, 0)) AS body_bytes,
    min(at) AS first_at,
    max(at) AS last_at
FROM captures
WHERE final = 1
GROUP BY page;
