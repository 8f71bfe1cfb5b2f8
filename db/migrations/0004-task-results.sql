-- 0004-task-results.sql -- v3 -> v4: zero-shot task accuracies (eval --task
-- --db), of a run's student or of a teacher, so that runs show and the Runs
-- screen put them side by side.
CREATE TABLE task_results (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    teacher_id      INTEGER REFERENCES teachers(id) ON DELETE CASCADE,
    model           TEXT NOT NULL CHECK (model IN ('teacher','student')),
    task            TEXT NOT NULL,
    file            TEXT NOT NULL DEFAULT '',
    items           INTEGER NOT NULL,
    acc             REAL,
    acc_stderr      REAL,
    acc_norm        REAL,
    acc_norm_stderr REAL,
    time            REAL NOT NULL,
    CHECK (run_id IS NOT NULL OR teacher_id IS NOT NULL)
);
CREATE INDEX task_results_run ON task_results(run_id, task, time);
CREATE INDEX task_results_teacher ON task_results(teacher_id, task, time);
