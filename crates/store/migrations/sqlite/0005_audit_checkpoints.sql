-- certdesk schema v5 (SQLite): audit log checkpoints mailed to the auditors
-- ([audit] checkpoint_to). One row per period claims it, so that several processes of a
-- deployment send one mail; seq 0 marks a period whose mail was an alert (the log did
-- not verify). Never edit once released.
CREATE TABLE audit_checkpoints (
    period  INTEGER PRIMARY KEY,
    seq     INTEGER NOT NULL,
    hash    TEXT NOT NULL,
    sent_at INTEGER NOT NULL
);
