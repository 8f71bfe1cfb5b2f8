-- schema.sql -- the onebit-tui run store at version 3 (the PRAGMA at the
-- end). A new database is created from this file and brought to the current
-- version (the highest db/migrations number) by the migrations after 3; an
-- older one is brought forward by db/migrations/NNNN-*.sql, each moving
-- user_version from NNNN-1 to NNNN.
-- A migrated database must equal a new one (tests/test_db.c checks it):
-- change this file and add a migration together.
-- Times are Unix seconds (REAL); JSON columns hold JSON text.

-- A teacher model file, identified by path and content hash.
CREATE TABLE teachers (
    id      INTEGER PRIMARY KEY,
    path    TEXT NOT NULL,
    sha256  TEXT NOT NULL DEFAULT '',
    format  TEXT NOT NULL DEFAULT '',          -- "llama2c", "gguf", "safetensors"
    config  TEXT NOT NULL DEFAULT '{}',        -- JSON: dim, layers, heads, vocab ...
    created REAL NOT NULL,
    UNIQUE (path, sha256)
);

-- One training (distillation) run.
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    teacher_id   INTEGER REFERENCES teachers(id) ON DELETE SET NULL,
    hparams      TEXT NOT NULL DEFAULT '{}',   -- JSON: every hyperparameter
    status       TEXT NOT NULL DEFAULT 'running'
                 CHECK (status IN ('pending','running','paused','finished','failed','stopped','interrupted')),
    message      TEXT NOT NULL DEFAULT '',     -- last status message (why it failed ...)
    total_steps  INTEGER NOT NULL DEFAULT 0,
    student_path TEXT,
    created      REAL NOT NULL,
    updated      REAL NOT NULL,
    -- v2: the process that owns a running/paused run; when it is gone the
    -- run is marked interrupted on the next open (pid + start time in clock
    -- ticks since boot from /proc/PID/stat + /proc/sys/kernel/random/boot_id)
    owner_pid    INTEGER,
    owner_start  INTEGER,
    owner_boot   TEXT,
    owner_host   TEXT
);
CREATE INDEX runs_teacher ON runs(teacher_id);

-- One row per optimizer step. A resumed run re-does the steps after its last
-- checkpoint with the same numbers: the newer row replaces the older one.
CREATE TABLE metrics (
    run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step         INTEGER NOT NULL,
    loss         REAL,
    kl           REAL,
    mse          REAL,
    lr           REAL,
    grad_norm    REAL,
    tokens_per_s REAL,
    wall         REAL,                          -- seconds since the run started
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;

-- Held-out evaluations of the student, and (at step 0) of the teacher and the
-- PTQ baselines on the same data.
CREATE TABLE evals (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,
    dataset TEXT NOT NULL DEFAULT '',
    -- v3: whose perplexity: student | student-partial (a capped periodic
    -- eval) | teacher | ptq-xnor | ptq-svid. (Key columns first: SQLite
    -- 3.40's integrity_check misreads NOT NULL columns placed before a key
    -- column of a WITHOUT ROWID table.)
    model   TEXT NOT NULL DEFAULT 'student',
    nll     REAL,
    ppl     REAL,
    time    REAL NOT NULL,
    PRIMARY KEY (run_id, step, dataset, model)
) WITHOUT ROWID;

-- Checkpoints written by a run (the files themselves live beside the student).
CREATE TABLE checkpoints (
    id      INTEGER PRIMARY KEY,
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,
    path    TEXT NOT NULL,
    sha256  TEXT NOT NULL DEFAULT '',
    time    REAL NOT NULL,
    UNIQUE (run_id, step)
);

-- Per-linear statistics from `inspect` (SVID errors, sign balance, histograms).
CREATE TABLE layer_stats (
    teacher_id INTEGER NOT NULL REFERENCES teachers(id) ON DELETE CASCADE,
    layer      INTEGER NOT NULL,
    kind       INTEGER NOT NULL,                -- LIN_Q .. LIN_UP
    name       TEXT NOT NULL,                   -- "layers.3.wq"
    rows       INTEGER NOT NULL,
    cols       INTEGER NOT NULL,
    nmf_err    REAL,
    svd_err    REAL,
    xnor_err   REAL,
    pos_frac   REAL,
    detail     TEXT NOT NULL DEFAULT '{}',      -- JSON: balance spreads, g/h ranges, histograms
    time       REAL NOT NULL,
    PRIMARY KEY (teacher_id, layer, kind)
) WITHOUT ROWID;

-- Chat transcripts with a run's student or a teacher.
CREATE TABLE chats (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    teacher_id INTEGER REFERENCES teachers(id) ON DELETE CASCADE,
    session    INTEGER NOT NULL DEFAULT 0,      -- one conversation
    role       TEXT NOT NULL CHECK (role IN ('system','user','assistant')),
    text       TEXT NOT NULL,
    time       REAL NOT NULL,
    CHECK (run_id IS NOT NULL OR teacher_id IS NOT NULL)
);
CREATE INDEX chats_run ON chats(run_id, session, id);
CREATE INDEX chats_teacher ON chats(teacher_id, session, id);

-- The version this file creates; a new database then takes the migrations
-- after it (0004-task-results.sql on), as an old one does.
PRAGMA user_version = 3;
