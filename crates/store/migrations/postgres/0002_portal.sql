-- certdesk schema v2 (PostgreSQL): the registration desk. Never edit once released.
CREATE TABLE users (
    email          TEXT PRIMARY KEY,          -- lower-case
    role           TEXT NOT NULL,             -- applicant | officer | admin
    totp_secret    TEXT,                      -- AES-256-GCM sealed with DATA/portal.key, base64
    totp_last_step BIGINT,                    -- last accepted TOTP time step (no replay)
    created_at     BIGINT NOT NULL,
    disabled_at    BIGINT
);
CREATE TABLE sign_in_tokens (
    token_hash TEXT PRIMARY KEY,              -- SHA-256 of the token, hex
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE TABLE sessions (
    id_hash          TEXT PRIMARY KEY,        -- SHA-256 of the cookie value, hex
    email            TEXT NOT NULL,
    csrf             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    second_factor_at BIGINT
);
CREATE TABLE applications (
    id                   TEXT PRIMARY KEY,
    email                TEXT NOT NULL,
    given_name           TEXT NOT NULL,
    surname              TEXT NOT NULL,
    profile              TEXT NOT NULL,
    state                TEXT NOT NULL,
    lang                 TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    version              BIGINT NOT NULL,
    mailbox_validated_at BIGINT,
    id_document_type     TEXT,
    id_issuing_authority TEXT,
    id_document_number   TEXT,
    id_document_expires  TEXT,
    id_in_person         BIGINT,
    id_officer           TEXT,
    id_verified_at       BIGINT,
    decided_by           TEXT,
    decided_at           BIGINT,
    decision_reason      TEXT,
    serial               TEXT UNIQUE REFERENCES certificates(serial),
    renewal_of           TEXT
);
CREATE INDEX applications_email ON applications(email);
CREATE INDEX applications_state ON applications(state);
CREATE TABLE mailbox_challenges (
    application_id TEXT PRIMARY KEY REFERENCES applications(id),
    value_hash     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    attempts       BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE TABLE appointment_slots (
    id             TEXT PRIMARY KEY,
    starts_at      BIGINT NOT NULL,
    place          TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    application_id TEXT UNIQUE REFERENCES applications(id),
    booked_at      BIGINT
);
CREATE INDEX appointment_slots_starts ON appointment_slots(starts_at);
CREATE TABLE reminders_sent (
    serial  TEXT NOT NULL,
    days    BIGINT NOT NULL,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (serial, days)
);
