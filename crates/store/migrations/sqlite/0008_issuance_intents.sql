-- certdesk schema v8 (SQLite): crash-safe issuance. Never edit once released.
-- An intent is recorded (durably) before a certificate is signed and deleted when the
-- certificate is recorded; one left behind by a crash is abandoned by recovery.
CREATE TABLE issuance_intents (
    serial         TEXT PRIMARY KEY REFERENCES serials(serial),
    tbs_sha256     TEXT NOT NULL,
    email          TEXT NOT NULL,
    profile        TEXT NOT NULL,
    not_after      INTEGER NOT NULL,
    application_id TEXT REFERENCES applications(id),
    owner          TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
-- A server-made key's .p12 (encrypted under the subscriber's password), stored in the
-- commit that records its certificate; deleted once delivered (command line) or after a
-- week in which the portal offers it again (handed_out_at: when it was last sent).
CREATE TABLE pending_deliveries (
    serial         TEXT PRIMARY KEY REFERENCES certificates(serial),
    application_id TEXT REFERENCES applications(id),
    destination    TEXT,
    sha256         TEXT NOT NULL,
    pkcs12         BLOB NOT NULL,
    owner          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    handed_out_at  INTEGER,
    wrong_tries    INTEGER NOT NULL DEFAULT 0,  -- wrong passwords given for a re-download
    wrong_since    INTEGER                      -- ... counted since (a 15-minute window)
);
CREATE INDEX pending_deliveries_application ON pending_deliveries(application_id);
