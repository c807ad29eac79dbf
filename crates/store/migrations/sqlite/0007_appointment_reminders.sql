-- certdesk schema v7 (SQLite): when the reminder of a booked appointment went out (the
-- day before; claimed before the mail is sent, cleared again if it fails). Never edit
-- once released.
ALTER TABLE appointment_slots ADD COLUMN reminded_at INTEGER;
