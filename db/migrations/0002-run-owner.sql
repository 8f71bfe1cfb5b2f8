-- 0002-run-owner.sql -- v1 -> v2: record which process owns a running run,
-- so that a run whose process died is shown as interrupted on the next open.
-- v1 had no owner: its running/paused runs are marked interrupted by the
-- first open after this migration (their owner cannot be verified).
ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
ALTER TABLE runs ADD COLUMN owner_start INTEGER;
ALTER TABLE runs ADD COLUMN owner_boot TEXT;
ALTER TABLE runs ADD COLUMN owner_host TEXT;
