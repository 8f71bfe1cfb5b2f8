-- 0005-sweeps.sql -- v4 -> v5: the sweep a run belongs to (train --sweep
-- queues a grid of runs under one name; runs compare --sweep NAME reads
-- them back). NULL: a run of its own.
ALTER TABLE runs ADD COLUMN sweep TEXT;
CREATE INDEX runs_sweep ON runs(sweep, id);
