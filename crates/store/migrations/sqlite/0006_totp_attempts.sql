-- certdesk schema v6 (SQLite): second-factor (TOTP) attempts, for the throttle that
-- stops guessing codes (RFC 4226 section 7.3). A row is written before a code is
-- checked and all of a user's rows go when a code is right; rows older than a day are
-- dropped. Never edit once released.
CREATE TABLE totp_attempts (
    email TEXT NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX totp_attempts_email_at ON totp_attempts(email, at);
