-- 0003-eval-model.sql -- v2 -> v3: an evaluation says whose perplexity it is
-- (the teacher, a PTQ baseline or the student), and that is part of its key:
-- a run evaluates teacher, PTQ XNOR, PTQ SVID and student on the same
-- held-out data at step 0. SQLite cannot change a primary key in place, so
-- the table is rebuilt; rows from v2 were all the student's.
CREATE TABLE evals_v3 (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,
    dataset TEXT NOT NULL DEFAULT '',
    model   TEXT NOT NULL DEFAULT 'student',  -- key columns first (see schema.sql)
    nll     REAL,
    ppl     REAL,
    time    REAL NOT NULL,
    PRIMARY KEY (run_id, step, dataset, model)
) WITHOUT ROWID;
INSERT INTO evals_v3(run_id, step, dataset, model, nll, ppl, time)
    SELECT run_id, step, dataset, 'student', nll, ppl, time FROM evals;
DROP TABLE evals;
ALTER TABLE evals_v3 RENAME TO evals;
