/* db.c -- the run store (see db.h): opening and migrating the SQLite file,
 * owner tracking for interrupted runs, and the direct CRUD calls. The
 * writer thread is in db/writer.c, shared helpers in db/db_internal.h. */
#include "db/db.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"
#include "base/file.h"
#include "db/db_internal.h"

/* ---- errors ---------------------------------------------------------------- */

/* SQLite often loses errno on a failed write: guess it from the file
 * system's free space and RLIMIT_FSIZE */
static int why_write_failed(const char *path)
{
    struct rlimit rl;
    struct statvfs vs;
    char *d = ob_strdup(path), *slash = strrchr(d, '/');
    if (slash) *slash = 0;
    int e = 0;
    if (statvfs(slash ? (*d ? d : "/") : ".", &vs) == 0 && (unsigned long long)vs.f_bavail * vs.f_frsize < (1u << 20))
        e = ENOSPC;
    else if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        struct stat sb;
        char wal[4200];
        snprintf(wal, sizeof wal, "%s-wal", path);
        /* the database or its log is within a page or two of the limit */
        if ((stat(path, &sb) == 0 && (unsigned long long)sb.st_size + 65536 >= rl.rlim_cur) ||
            (stat(wal, &sb) == 0 && (unsigned long long)sb.st_size + 65536 >= rl.rlim_cur))
            e = EFBIG;
    }
    free(d);
    return e;
}

void db_set_sqlerr(sqlite3 *h, int rc, const char *path, const char *what, int busy_ms, char *err)
{
    int prim = rc & 0xff;
    int sys = h ? sqlite3_system_errno(h) : 0;
    const char *msg = h ? sqlite3_errmsg(h) : sqlite3_errstr(rc);
    switch (prim) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        ob_seterr(err, "%s: database is locked by another process (gave up %s after %d ms)", path, what, busy_ms);
        break;
    case SQLITE_FULL:
        ob_seterr(err, "%s: disk full or file size limit reached while %s; what was committed before is intact", path, what);
        break;
    case SQLITE_READONLY:
        ob_seterr(err, "%s: database is read-only (%s) while %s; check the permissions of the file and its directory", path,
                  msg, what);
        break;
    case SQLITE_IOERR:
        if (!sys) sys = why_write_failed(path);
        if (sys == EFBIG)
            ob_seterr(err, "%s: file size limit reached (ulimit -f) while %s; what was committed before is intact", path, what);
        else if (sys == ENOSPC || sys == EDQUOT)
            ob_seterr(err, "%s: disk full or file size limit reached while %s (%s); what was committed before is intact", path,
                      what, strerror(sys));
        else
            ob_seterr(err, "%s: I/O error while %s (%s%s%s)", path, what, msg, sys ? ": " : "", sys ? strerror(sys) : "");
        break;
    case SQLITE_CANTOPEN:
        ob_seterr(err, "%s: cannot open the database while %s%s%s", path, what, sys ? ": " : "", sys ? strerror(sys) : "");
        break;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        ob_seterr(err, "%s: not a onebit-tui database, or it is damaged (%s)", path, msg);
        break;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        ob_seterr(err, "%s: permission denied while %s (%s)", path, what, msg);
        break;
    default:
        ob_seterr(err, "%s: %s while %s", path, msg, what);
        break;
    }
}

static void dberr(Db *db, int rc, const char *what, char *err)
{
    db_set_sqlerr(db->h, rc, db->path, what, db->busy_ms, err);
}

int db_exec(sqlite3 *h, const char *path, const char *sql, const char *what, int busy_ms, char *err)
{
    int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        db_set_sqlerr(h, rc, path, what, busy_ms, err);
        return -1;
    }
    return 0;
}

int db_data_version(Db *db)
{
    sqlite3_stmt *st;
    char err[OB_ERRLEN];
    if (db_prep(db, &st, "PRAGMA data_version", "reading data_version", err)) return -1;
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

void db_adopt(Db *db) { db->thread = pthread_self(); }

int db_prep(Db *db, sqlite3_stmt **st, const char *sql, const char *what, char *err)
{
    /* db.h's contract: the thread that opened (or adopted) it */
    assert(pthread_equal(db->thread, pthread_self()) && "a Db used from a thread that did not open or adopt it (db.h)");
    int rc = sqlite3_prepare_v2(db->h, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        dberr(db, rc, what, err);
        *st = NULL;
        return -1;
    }
    return 0;
}

int db_step_done(Db *db, sqlite3_stmt *st, const char *what, char *err)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) rc = sqlite3_extended_errcode(db->h);
    if (rc != SQLITE_DONE) dberr(db, rc, what, err); /* before finalize: it keeps errno */
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static char *col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? ob_strdup((const char *)s) : NULL;
}

void db_col_text(sqlite3_stmt *st, int i, char *buf, size_t n)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    snprintf(buf, n, "%s", s ? s : "");
}

double db_col_real_or_nan(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* ---- a row as a column table: column i of the SELECT into field i ------- */
typedef enum {
    COL_SKIP,     /* read by the caller */
    COL_I64,      /* int64_t */
    COL_INT,      /* int */
    COL_REAL,     /* double */
    COL_REAL_NAN, /* double, NAN for NULL */
    COL_STR,      /* char *, malloc'd ("" for NULL when the table says so) */
    COL_TEXT,     /* char[size] */
} ColKind;
typedef struct { ColKind kind; size_t off, size; } Col;
typedef struct {
    const Col *col;
    int n;
    size_t size;    /* the struct's */
    int str_empty;  /* COL_STR: "" instead of NULL for a NULL column */
} ColTable;
#define COL(kind, T, f) {kind, offsetof(T, f), sizeof(((T *)0)->f)}
#define COL_TABLE(cols, T, str_empty) {cols, (int)(sizeof cols / sizeof cols[0]), sizeof(T), str_empty}

/* the row's columns into obj (zeroed first) */
static void cols_read(const ColTable *t, sqlite3_stmt *st, void *obj)
{
    char *o = obj;
    memset(obj, 0, t->size);
    for (int i = 0; i < t->n; i++) {
        void *f = o + t->col[i].off;
        switch (t->col[i].kind) {
        case COL_SKIP: break;
        case COL_I64: *(int64_t *)f = sqlite3_column_int64(st, i); break;
        case COL_INT: *(int *)f = sqlite3_column_int(st, i); break;
        case COL_REAL: *(double *)f = sqlite3_column_double(st, i); break;
        case COL_REAL_NAN: *(double *)f = db_col_real_or_nan(st, i); break;
        case COL_STR:
            *(char **)f = col_str(st, i);
            if (!*(char **)f && t->str_empty) *(char **)f = ob_strdup("");
            break;
        case COL_TEXT: db_col_text(st, i, f, t->col[i].size); break;
        }
    }
}

/* free obj's strings and zero it */
static void cols_free(const ColTable *t, void *obj)
{
    for (int i = 0; i < t->n; i++)
        if (t->col[i].kind == COL_STR) free(*(char **)((char *)obj + t->col[i].off));
    memset(obj, 0, t->size);
}

/* db_select's row callback for a plain table (ctx: the ColTable) */
static int cols_row(void *ctx, sqlite3_stmt *st, void *elem, char *err)
{
    (void)err;
    cols_read(ctx, st, elem);
    return 0;
}

void db_bind_real_or_null(sqlite3_stmt *st, int i, double v)
{
    if (isfinite(v)) sqlite3_bind_double(st, i, v);
    else sqlite3_bind_null(st, i);
}

double db_wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the owner of a running run --------------------------------------------- */

/* start time of a process in clock ticks since boot (field 22 of
 * /proc/PID/stat), or -1 when unknown */
static long long proc_start_time(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may contain spaces and ')' */
    if (!p) return -1;
    p++;
    /* after ")": field 3 (state) ... field 22 (starttime) */
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p) return -1;
    }
    return strtoll(p + 1, NULL, 10);
}

void db_owner_self(DbOwner *o)
{
    memset(o, 0, sizeof *o);
    o->pid = getpid();
    o->start = proc_start_time(o->pid);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (fgets(o->boot, sizeof o->boot, f)) o->boot[strcspn(o->boot, "\n")] = 0;
        fclose(f);
    }
    if (gethostname(o->host, sizeof o->host - 1) != 0) o->host[0] = 0;
}

/* is the recorded owner certainly gone? (a run owned by another host, or
 * one we cannot check, counts as alive) */
static int owner_dead(const DbOwner *self, sqlite3_stmt *st, int c_pid)
{
    if (sqlite3_column_type(st, c_pid) == SQLITE_NULL) return 1; /* v1 runs, or a cleared owner */
    long long pid = sqlite3_column_int64(st, c_pid);
    long long start = sqlite3_column_type(st, c_pid + 1) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, c_pid + 1);
    const char *boot = (const char *)sqlite3_column_text(st, c_pid + 2);
    const char *host = (const char *)sqlite3_column_text(st, c_pid + 3);
    if (host && *host && *self->host && strcmp(host, self->host)) return 0; /* another machine */
    if (boot && *boot && *self->boot && strcmp(boot, self->boot)) return 1; /* rebooted since */
    if (pid <= 0) return 1;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return 1;
    if (start >= 0) {
        long long now = proc_start_time((long)pid);
        if (now >= 0 && now != start) return 1; /* the pid was reused */
    }
    return 0;
}

/* ---- open, migrate, close -------------------------------------------------------- */

extern const char db_schema_sql[];
extern const char *const db_migration_sql[];
extern const int db_migration_version[];

int db_schema_version(void)
{
    int v = 1;
    for (int i = 0; db_migration_sql[i]; i++)
        if (db_migration_version[i] > v) v = db_migration_version[i];
    return v;
}

char *db_default_path(char *err)
{
    char why[OB_ERRLEN];
    char *p = file_xdg_path("XDG_DATA_HOME", ".local/share", "onebit-tui/runs.db", why);
    if (!p) ob_seterr(err, "no database location (%s): pass --db PATH", why);
    return p;
}

/* mkdir -p of the directory part of path */
static int make_parent_dirs(const char *path, char *err)
{
    char *d = ob_strdup(path);
    char *slash = strrchr(d, '/');
    if (!slash || slash == d) { free(d); return 0; }
    *slash = 0;
    for (char *p = d + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(d, 0755) != 0 && errno != EEXIST) {
                ob_seterr(err, "%s: cannot create directory %s: %s", path, d, strerror(errno));
                free(d);
                return -1;
            }
            *p = c;
            if (!c) break;
        }
    }
    free(d);
    return 0;
}

static int user_version(sqlite3 *h, int *v)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* bring the database to db_schema_version(): create it, or run the
 * migrations after its version, each in the same transaction */
static int migrate(Db *db, char *err)
{
    int target = db_schema_version(), v = 0, rc;
    if (db_exec(db->h, db->path, "BEGIN IMMEDIATE", "starting the schema upgrade", db->busy_ms, err)) return -1;
    if ((rc = user_version(db->h, &v)) != SQLITE_OK) {
        dberr(db, rc, "reading the schema version", err);
        goto fail;
    }
    if (v > target) {
        ob_seterr(err, "%s: database schema version %d is newer than this onebit-tui understands (%d); upgrade onebit-tui",
                  db->path, v, target);
        goto fail;
    }
    if (v == 0) {
        /* empty file, or somebody else's database? */
        sqlite3_stmt *st;
        int n = 0;
        if ((rc = sqlite3_prepare_v2(db->h, "SELECT count(*) FROM sqlite_master", -1, &st, NULL)) == SQLITE_OK) {
            if ((rc = sqlite3_step(st)) == SQLITE_ROW) { n = sqlite3_column_int(st, 0); rc = SQLITE_OK; }
            sqlite3_finalize(st);
        }
        if (rc != SQLITE_OK) { dberr(db, rc, "reading the schema", err); goto fail; }
        if (n > 0) {
            ob_seterr(err, "%s: not a onebit-tui database (it has tables but no schema version)", db->path);
            goto fail;
        }
        /* schema.sql is a version of its own (its PRAGMA): the migrations
         * after it bring the new database forward */
        if (db_exec(db->h, db->path, db_schema_sql, "creating the schema", db->busy_ms, err)) goto fail;
        if ((rc = user_version(db->h, &v)) != SQLITE_OK) {
            dberr(db, rc, "reading the schema version", err);
            goto fail;
        }
    }
    for (int i = 0; db_migration_sql[i]; i++) {
        if (db_migration_version[i] <= v) continue;
        char what[64];
        snprintf(what, sizeof what, "migrating the schema to version %d", db_migration_version[i]);
        if (db_exec(db->h, db->path, db_migration_sql[i], what, db->busy_ms, err)) goto fail;
    }
    if (v != target) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", target);
        if (db_exec(db->h, db->path, sql, "setting the schema version", db->busy_ms, err)) goto fail;
    }
    if (db_exec(db->h, db->path, "COMMIT", "committing the schema upgrade", db->busy_ms, err)) goto fail;
    return 0;
fail:
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* file:PATH?immutable=1 with PATH percent-encoded */
static char *immutable_uri(const char *path)
{
    size_t n = strlen(path);
    char *u = ob_malloc(3 * n + 32), *p = u;
    p += sprintf(p, "file:");
    for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
        if (*s == '%' || *s == '?' || *s == '#' || *s < 0x20 || *s >= 0x7f) p += sprintf(p, "%%%02X", *s);
        else *p++ = (char)*s;
    }
    strcpy(p, "?immutable=1");
    return u;
}

int db_connect(const char *path, int read_only, int busy_ms, sqlite3 **out, char *err)
{
    sqlite3 *h = NULL;
    int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    flags |= SQLITE_OPEN_NOMUTEX; /* one thread per connection */
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        ob_seterr(err, "%s: is a directory, not a database file", path);
        return -1;
    }
    if (read_only && access(path, F_OK) != 0) {
        ob_seterr(err, "%s: no database here (%s); nothing has been recorded yet, or pass --db PATH", path, strerror(errno));
        return -1;
    }
    int rc = sqlite3_open_v2(path, &h, flags, NULL);
    if (rc != SQLITE_OK) {
        db_set_sqlerr(h, rc, path, "opening", busy_ms, err);
        sqlite3_close(h);
        return -1;
    }
    sqlite3_extended_result_codes(h, 1);
    sqlite3_busy_timeout(h, busy_ms);
    if (!read_only && sqlite3_db_readonly(h, "main") == 1) {
        ob_seterr(err, "%s: database is read-only (%s); check the permissions of the file and its directory", path,
                  access(path, W_OK) != 0 ? strerror(errno) : "cannot be opened for writing");
        sqlite3_close(h);
        return -1;
    }
    /* the first read: is it a database at all, can it be read? */
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) rc = SQLITE_OK;
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_OK && read_only && ((rc & 0xff) == SQLITE_READONLY || (rc & 0xff) == SQLITE_CANTOPEN)) {
        /* A WAL database in a directory we cannot write: SQLite cannot
         * create the -shm index. With no log to replay nobody can be
         * writing, so reading the file as immutable is exact. */
        char wal[4200];
        snprintf(wal, sizeof wal, "%s-wal", path);
        if (stat(wal, &sb) == 0 && sb.st_size > 0) {
            ob_seterr(err, "%s: cannot read it here: its write-ahead log %s must be replayed, which needs write access to "
                           "the directory", path, wal);
            sqlite3_close(h);
            return -1;
        }
        sqlite3_close(h);
        h = NULL;
        char *uri = immutable_uri(path);
        rc = sqlite3_open_v2(uri, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
        free(uri);
        if (rc == SQLITE_OK) {
            sqlite3_extended_result_codes(h, 1);
            sqlite3_busy_timeout(h, busy_ms);
            rc = sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
            if (rc == SQLITE_OK) {
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) rc = SQLITE_OK;
                sqlite3_finalize(st);
            }
        }
    }
    if (rc != SQLITE_OK && !read_only && ((rc & 0xff) == SQLITE_READONLY || (rc & 0xff) == SQLITE_CANTOPEN)) {
        char *d = ob_strdup(path), *slash = strrchr(d, '/');
        const char *dir = slash ? (slash == d ? "/" : (*slash = 0, d)) : ".";
        if (access(dir, W_OK) != 0) {
            ob_seterr(err, "%s: cannot write in the directory %s (%s): SQLite keeps its -wal and -shm files beside the "
                           "database; fix the permissions or use a copy elsewhere",
                      path, dir, strerror(errno));
            free(d);
            sqlite3_close(h);
            return -1;
        }
        free(d);
    }
    if (rc != SQLITE_OK) {
        db_set_sqlerr(h, rc, path, "reading", busy_ms, err);
        sqlite3_close(h);
        return -1;
    }
    if (!read_only) {
        /* WAL: readers never block the writer; persists in the file */
        rc = sqlite3_prepare_v2(h, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW) rc = SQLITE_OK;
            sqlite3_finalize(st);
        }
        if (rc != SQLITE_OK) {
            db_set_sqlerr(h, rc, path, "switching to WAL mode", busy_ms, err);
            sqlite3_close(h);
            return -1;
        }
        sqlite3_exec(h, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    }
    if (db_exec(h, path, "PRAGMA foreign_keys=ON", "enabling foreign keys", busy_ms, err)) {
        sqlite3_close(h);
        return -1;
    }
    *out = h;
    return 0;
}

Db *db_open(const char *path, int read_only, char *err)
{
    char *p = path ? ob_strdup(path) : db_default_path(err);
    if (!p) return NULL;
    if (!read_only && make_parent_dirs(p, err)) { free(p); return NULL; }
    Db *db = ob_calloc(1, sizeof *db);
    db->path = p;
    db->read_only = read_only;
    db->busy_ms = DB_BUSY_MS;
    db_owner_self(&db->self);
    db->thread = pthread_self();
    if (db_connect(p, read_only, db->busy_ms, &db->h, err)) goto fail;
    int v = 0, rc = user_version(db->h, &v);
    if (rc != SQLITE_OK) { dberr(db, rc, "reading the schema version", err); goto fail; }
    if (read_only) {
        if (v != db_schema_version()) {
            if (v == 0) ob_seterr(err, "%s: not a onebit-tui database (no schema)", p);
            else if (v > db_schema_version())
                ob_seterr(err, "%s: database schema version %d is newer than this onebit-tui understands (%d)", p, v,
                          db_schema_version());
            else
                ob_seterr(err, "%s: database schema version %d needs an upgrade to %d; open it once read-write", p, v,
                          db_schema_version());
            goto fail;
        }
    } else {
        if (v != db_schema_version() && migrate(db, err)) goto fail;
        char e2[OB_ERRLEN];
        /* a busy database must not stop an open: the runs still read as
         * interrupted, and the next open stores it */
        db_mark_interrupted(db, e2);
    }
    return db;
fail:
    db_close(db);
    return NULL;
}

void db_close(Db *db)
{
    if (!db) return;
    if (db->h) sqlite3_close(db->h);
    free(db->path);
    free(db);
}

const char *db_path(const Db *db) { return db->path; }

void db_set_busy_timeout(Db *db, int ms)
{
    db->busy_ms = ms;
    sqlite3_busy_timeout(db->h, ms);
}

int db_integrity_check(Db *db, char *err)
{
    sqlite3_stmt *st;
    if (db_prep(db, &st, "PRAGMA integrity_check", "checking integrity", err)) return -1;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        dberr(db, rc, "checking integrity", err);
        return -1;
    }
    const char *r = (const char *)sqlite3_column_text(st, 0);
    int ok = r && !strcmp(r, "ok");
    if (!ok) ob_seterr(err, "%s: integrity check failed: %s", db->path, r ? r : "?");
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

int db_mark_interrupted(Db *db, char *err)
{
    if (db->read_only) return 0;
    sqlite3_stmt *st;
    if (db_prep(db, &st,
             "SELECT id, owner_pid, owner_start, owner_boot, owner_host FROM runs WHERE status IN ('running','paused')",
             "looking for interrupted runs", err))
        return -1;
    int64_t *ids = NULL;
    int n = 0, cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!owner_dead(&db->self, st, 1)) continue;
        if (n == cap) { cap = cap ? 2 * cap : 8; ids = realloc(ids, cap * sizeof *ids); if (!ids) abort(); }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) { free(ids); dberr(db, rc, "looking for interrupted runs", err); return -1; }
    int marked = 0;
    for (int i = 0; i < n; i++) {
        /* the status check again: the owner may have finished meanwhile */
        if (db_prep(db, &st,
                 "UPDATE runs SET status='interrupted', message='the training process ended without finishing the run', "
                 "owner_pid=NULL, owner_start=NULL, owner_boot=NULL, owner_host=NULL, updated=?2 "
                 "WHERE id=?1 AND status IN ('running','paused')",
                 "marking a run interrupted", err)) { free(ids); return -1; }
        sqlite3_bind_int64(st, 1, ids[i]);
        sqlite3_bind_double(st, 2, db_wall_time());
        if (db_step_done(db, st, "marking a run interrupted", err)) { free(ids); return -1; }
        marked += sqlite3_changes(db->h);
    }
    free(ids);
    return marked;
}

/* "running" -> RUN_RUNNING ...; -1 for an unknown name */
static int status_parse(const char *s)
{
    for (int i = RUN_PENDING; i <= RUN_INTERRUPTED; i++)
        if (!strcmp(s, run_status_name((RunStatus)i))) return i;
    return -1;
}

/* ---- teachers ---------------------------------------------------------------------- */

int64_t db_teacher_upsert(Db *db, const char *path, const char *sha256, const char *format, const char *config_json,
                          char *err)
{
    sqlite3_stmt *st;
    if (db_prep(db, &st,
             "INSERT INTO teachers(path, sha256, format, config, created) VALUES (?1, ?2, ?3, json(?4), ?5) "
             "ON CONFLICT(path, sha256) DO UPDATE SET format=excluded.format, config=excluded.config "
             "RETURNING id",
             "recording the teacher", err))
        return -1;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, sha256 ? sha256 : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, format ? format : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, config_json && *config_json ? config_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 5, db_wall_time());
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    if (rc == SQLITE_ROW) rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) dberr(db, rc, "recording the teacher", err);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return -1;
    return id;
}

static const Col teacher_cols[] = {
    COL(COL_I64, DbTeacher, id),     COL(COL_STR, DbTeacher, path),   COL(COL_STR, DbTeacher, sha256),
    COL(COL_STR, DbTeacher, format), COL(COL_STR, DbTeacher, config), COL(COL_REAL, DbTeacher, created),
};
static const ColTable teacher_table = COL_TABLE(teacher_cols, DbTeacher, 0);

int db_teacher_get(Db *db, int64_t id, DbTeacher *out, char *err)
{
    sqlite3_stmt *st;
    memset(out, 0, sizeof *out);
    if (db_prep(db, &st, "SELECT id, path, sha256, format, config, created FROM teachers WHERE id=?", "reading a teacher", err))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) cols_read(&teacher_table, st, out);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) { ob_seterr(err, "%s: no teacher %lld", db->path, (long long)id); return -1; }
    if (rc != SQLITE_ROW) { dberr(db, rc, "reading a teacher", err); return -1; }
    return 0;
}

void db_teacher_free(DbTeacher *t) { cols_free(&teacher_table, t); }

/* ---- runs -------------------------------------------------------------------------- */

#define RUN_COLS                                                                                                   \
    "r.id, r.name, r.teacher_id, t.path, r.hparams, r.status, r.message, r.total_steps, r.student_path, r.created, " \
    "r.updated, (SELECT max(step) FROM metrics m WHERE m.run_id=r.id), "                                      \
    "(SELECT max(step) FROM checkpoints c WHERE c.run_id=r.id), "                                                \
    "coalesce((SELECT min(ppl) FROM evals e WHERE e.run_id=r.id AND e.model='student'), "                           \
    "(SELECT min(ppl) FROM evals e WHERE e.run_id=r.id AND e.model='student-partial')), " \
    "r.sweep, r.owner_pid, r.owner_start, r.owner_boot, r.owner_host "                                             \
    "FROM runs r LEFT JOIN teachers t ON t.id=r.teacher_id "

/* RUN_COLS' columns; status and the last checkpoint are read by hand */
static const Col run_cols[] = {
    COL(COL_I64, DbRun, id),           COL(COL_STR, DbRun, name),          COL(COL_I64, DbRun, teacher_id),
    COL(COL_STR, DbRun, teacher_path), COL(COL_STR, DbRun, hparams),       COL(COL_SKIP, DbRun, status),
    COL(COL_STR, DbRun, message),      COL(COL_INT, DbRun, total_steps),   COL(COL_STR, DbRun, student_path),
    COL(COL_REAL, DbRun, created),     COL(COL_REAL, DbRun, updated),      COL(COL_INT, DbRun, steps_done),
    COL(COL_SKIP, DbRun, last_ckpt_step), COL(COL_REAL_NAN, DbRun, best_ppl), COL(COL_STR, DbRun, sweep),
    COL(COL_I64, DbRun, owner_pid),
};
static const ColTable run_table = COL_TABLE(run_cols, DbRun, 0);

static void run_from_row(Db *db, sqlite3_stmt *st, DbRun *r)
{
    cols_read(&run_table, st, r);
    if (!r->teacher_path) r->teacher_path = ob_strdup("");
    const char *s = (const char *)sqlite3_column_text(st, 5);
    int status = s ? status_parse(s) : -1;
    r->status = status < 0 ? RUN_FAILED : (RunStatus)status;
    r->last_ckpt_step = sqlite3_column_type(st, 12) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 12);
    /* a long-lived reader (the UI) sees a dead owner at once */
    if ((r->status == RUN_RUNNING || r->status == RUN_PAUSED) && owner_dead(&db->self, st, 15)) r->status = RUN_INTERRUPTED;
}

void db_run_free(DbRun *r) { cols_free(&run_table, r); }

void db_run_list_free(DbRun *runs, int n)
{
    for (int i = 0; i < n; i++) db_run_free(&runs[i]);
    free(runs);
}

static void bind_owner(sqlite3_stmt *st, int i, const DbOwner *o)
{
    sqlite3_bind_int64(st, i, o->pid);
    if (o->start >= 0) sqlite3_bind_int64(st, i + 1, o->start);
    else sqlite3_bind_null(st, i + 1);
    sqlite3_bind_text(st, i + 2, o->boot, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i + 3, o->host, -1, SQLITE_TRANSIENT);
}

/* a new run: running and owned by this process, or pending (queued) without
 * an owner */
static int64_t run_insert(Db *db, const char *name, int64_t teacher_id, const char *hparams_json, int total_steps,
                          const char *sweep, int queued, char *err)
{
    sqlite3_stmt *st;
    if (name && !*name) { ob_seterr(err, "%s: a run name must not be empty", db->path); return -1; }
    if (name && name[strspn(name, "0123456789")] == 0) {
        ob_seterr(err, "%s: run name '%s' is all digits and would read as a run id", db->path, name);
        return -1;
    }
    if (db_exec(db->h, db->path, "BEGIN IMMEDIATE", "creating a run", db->busy_ms, err)) return -1;
    if (db_prep(db, &st,
             "INSERT INTO runs(name, teacher_id, hparams, status, total_steps, created, updated, owner_pid, owner_start, "
             "owner_boot, owner_host, sweep) VALUES (coalesce(?1, 'run-' || hex(randomblob(6))), ?2, json(?3), ?10, ?4, ?5, "
             "?5, ?6, ?7, ?8, ?9, ?11)",
             "creating a run", err))
        goto fail;
    sqlite3_bind_text(st, 10, queued ? "pending" : "running", -1, SQLITE_STATIC);
    if (sweep) sqlite3_bind_text(st, 11, sweep, -1, SQLITE_TRANSIENT);
    if (name) sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (teacher_id > 0) sqlite3_bind_int64(st, 2, teacher_id);
    sqlite3_bind_text(st, 3, hparams_json && *hparams_json ? hparams_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, total_steps);
    sqlite3_bind_double(st, 5, db_wall_time());
    if (!queued) bind_owner(st, 6, &db->self);
    int rc = sqlite3_step(st);
    char e2[OB_ERRLEN];
    if (rc != SQLITE_DONE) dberr(db, rc, "creating a run", e2); /* while errno is known */
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_CONSTRAINT_UNIQUE && name)
            ob_seterr(err, "%s: a run named '%s' exists already", db->path, name);
        else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            ob_seterr(err, "%s: no teacher %lld", db->path, (long long)teacher_id);
        else
            snprintf(err, OB_ERRLEN, "%s", e2);
        goto fail;
    }
    int64_t id = sqlite3_last_insert_rowid(db->h);
    if (!name) {
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE runs SET name='run-%lld' WHERE id=%lld", (long long)id, (long long)id);
        /* a user may have named a run "run-N" already: keep the random name then */
        if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK &&
            (sqlite3_extended_errcode(db->h) & 0xff) != SQLITE_CONSTRAINT) {
            dberr(db, sqlite3_extended_errcode(db->h), "naming a run", err);
            goto fail;
        }
    }
    if (db_exec(db->h, db->path, "COMMIT", "creating a run", db->busy_ms, err)) goto fail;
    return id;
fail:
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

int64_t db_run_create(Db *db, const char *name, int64_t teacher_id, const char *hparams_json, int total_steps, char *err)
{
    return run_insert(db, name, teacher_id, hparams_json, total_steps, NULL, 0, err);
}

int64_t db_run_queue(Db *db, const char *name, int64_t teacher_id, const char *hparams_json, int total_steps,
                     const char *sweep, char *err)
{
    return run_insert(db, name, teacher_id, hparams_json, total_steps, sweep, 1, err);
}

int db_run_get(Db *db, int64_t id, DbRun *out, char *err)
{
    sqlite3_stmt *st;
    memset(out, 0, sizeof *out);
    if (db_prep(db, &st, "SELECT " RUN_COLS "WHERE r.id=?", "reading a run", err)) return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) run_from_row(db, st, out);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) { ob_seterr(err, "%s: no run %lld", db->path, (long long)id); return -1; }
    if (rc != SQLITE_ROW) { dberr(db, rc, "reading a run", err); return -1; }
    return 0;
}

int db_run_find(Db *db, const char *key, DbRun *out, char *err)
{
    sqlite3_stmt *st;
    memset(out, 0, sizeof *out);
    int digits = *key && key[strspn(key, "0123456789")] == 0 && strlen(key) < 19;
    if (db_prep(db, &st, "SELECT " RUN_COLS "WHERE r.name=?1 OR (?2 AND r.id=?3)", "finding a run", err)) return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, digits);
    sqlite3_bind_int64(st, 3, digits ? strtoll(key, NULL, 10) : 0);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) run_from_row(db, st, out);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        ob_seterr(err, "%s: no run '%s' (give a run id or name; 'onebit-tui runs list' shows them)", db->path, key);
        return -1;
    }
    if (rc != SQLITE_ROW) { dberr(db, rc, "finding a run", err); return -1; }
    return 0;
}

static int run_row(void *db, sqlite3_stmt *st, void *elem, char *err)
{
    run_from_row(db, st, elem);
    return 0;
}

static void run_drop(void *elem) { db_run_free(elem); }

int db_run_list(Db *db, DbRun **out, int *n, char *err)
{
    void *v;
    int rc = db_select(db, "SELECT " RUN_COLS "ORDER BY r.id DESC", 0, 0, sizeof **out, run_row, db, run_drop, "listing runs",
                       &v, n, err);
    *out = v;
    return rc;
}

/* run an UPDATE on one run and make sure the run exists */
static int update_run(Db *db, sqlite3_stmt *st, int64_t id, const char *what, char *err)
{
    if (db_step_done(db, st, what, err)) return -1;
    if (sqlite3_changes(db->h) == 0) { ob_seterr(err, "%s: no run %lld", db->path, (long long)id); return -1; }
    return 0;
}

int db_run_set_status(Db *db, int64_t id, RunStatus s, const char *message, char *err)
{
    sqlite3_stmt *st;
    int owned = s == RUN_RUNNING || s == RUN_PAUSED;
    if (db_prep(db, &st,
             owned ? "UPDATE runs SET status=?2, message=?3, updated=?4, owner_pid=?5, owner_start=?6, owner_boot=?7, "
                     "owner_host=?8 WHERE id=?1"
                   : "UPDATE runs SET status=?2, message=?3, updated=?4, owner_pid=NULL, owner_start=NULL, "
                     "owner_boot=NULL, owner_host=NULL WHERE id=?1",
             "setting a run's status", err))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, run_status_name(s), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, message ? message : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 4, db_wall_time());
    if (owned) bind_owner(st, 5, &db->self);
    return update_run(db, st, id, "setting a run's status", err);
}

int db_run_set_student(Db *db, int64_t id, const char *path, char *err)
{
    sqlite3_stmt *st;
    if (db_prep(db, &st, "UPDATE runs SET student_path=?2, updated=?3 WHERE id=?1", "setting the student path", err)) return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 3, db_wall_time());
    return update_run(db, st, id, "setting the student path", err);
}

int db_run_set_total(Db *db, int64_t id, int total_steps, char *err)
{
    sqlite3_stmt *st;
    if (db_prep(db, &st, "UPDATE runs SET total_steps=?2, updated=?3 WHERE id=?1", "setting the step count", err)) return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, total_steps);
    sqlite3_bind_double(st, 3, db_wall_time());
    return update_run(db, st, id, "setting the step count", err);
}

int db_run_delete(Db *db, int64_t id, char *err)
{
    sqlite3_stmt *st;
    if (db_prep(db, &st, "DELETE FROM runs WHERE id=?1", "deleting a run", err)) return -1;
    sqlite3_bind_int64(st, 1, id);
    return update_run(db, st, id, "deleting a run", err);
}

int db_run_hparam(Db *db, int64_t id, const char *key, char *buf, size_t n, char *err)
{
    sqlite3_stmt *st;
    if (db_prep(db, &st,
             "SELECT json_type(hparams, '$.\"' || ?2 || '\"'), json_extract(hparams, '$.\"' || ?2 || '\"') FROM runs "
             "WHERE id=?1",
             "reading a hyperparameter", err))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        const char *type = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (!strcmp(type, "true")) v = "1";
        else if (!strcmp(type, "false")) v = "0";
        else if (!strcmp(type, "null")) v = NULL;
        if (v) {
            snprintf(buf, n, "%s", v);
            found = 1;
        }
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) { ob_seterr(err, "%s: no run %lld", db->path, (long long)id); return -1; }
    if (rc != SQLITE_ROW) { dberr(db, rc, "reading a hyperparameter", err); return -1; }
    return found;
}

/* ---- metrics, evaluations, checkpoints ------------------------------------------------ */

int db_metric_put(Db *db, int64_t run, const DbMetric *m, char *err)
{
    sqlite3_stmt *st;
    if (db_prep(db, &st, DB_SQL_METRIC_PUT, "storing a metric", err)) return -1;
    db_bind_metric(st, run, m);
    return db_step_done(db, st, "storing a metric", err);
}

void db_bind_metric(sqlite3_stmt *st, int64_t run, const DbMetric *m)
{
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, m->step);
    db_bind_real_or_null(st, 3, m->loss);
    db_bind_real_or_null(st, 4, m->kl);
    db_bind_real_or_null(st, 5, m->mse);
    db_bind_real_or_null(st, 6, m->lr);
    db_bind_real_or_null(st, 7, m->grad_norm);
    db_bind_real_or_null(st, 8, m->tokens_per_s);
    db_bind_real_or_null(st, 9, m->wall);
}

void db_bind_eval(sqlite3_stmt *st, int64_t run, const DbEval *e)
{
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, e->step);
    sqlite3_bind_text(st, 3, e->dataset, -1, SQLITE_TRANSIENT);
    db_bind_real_or_null(st, 4, e->nll);
    db_bind_real_or_null(st, 5, e->ppl);
    sqlite3_bind_double(st, 6, e->time > 0 ? e->time : db_wall_time());
    sqlite3_bind_text(st, 7, e->model[0] ? e->model : "student", -1, SQLITE_TRANSIENT);
}

int db_eval_put(Db *db, int64_t run, const DbEval *e, char *err)
{
    sqlite3_stmt *st;
    if (db_prep(db, &st, DB_SQL_EVAL_PUT, "storing an evaluation", err)) return -1;
    db_bind_eval(st, run, e);
    return db_step_done(db, st, "storing an evaluation", err);
}

int db_checkpoint_put(Db *db, int64_t run, int step, const char *path, const char *sha256, char *err)
{
    sqlite3_stmt *st;
    if (db_prep(db, &st, DB_SQL_CKPT_PUT, "storing a checkpoint", err)) return -1;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, step);
    sqlite3_bind_text(st, 3, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, sha256 ? sha256 : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 5, db_wall_time());
    return db_step_done(db, st, "storing a checkpoint", err);
}

void *db_grow(void *v, int n, int *cap, size_t sz)
{
    if (n < *cap) return v;
    *cap = *cap ? 2 * *cap : 64;
    v = realloc(v, (size_t)*cap * sz);
    if (!v) abort();
    return v;
}

int db_select(Db *db, const char *sql, int64_t p1, int64_t p2, size_t sz,
              int (*row)(void *ctx, sqlite3_stmt *st, void *elem, char *err), void *ctx, void (*drop)(void *elem),
              const char *what, void **out, int *n, char *err)
{
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    if (db_prep(db, &st, sql, what, err)) return -1;
    int np = sqlite3_bind_parameter_count(st);
    if (np >= 1) sqlite3_bind_int64(st, 1, p1);
    if (np >= 2) sqlite3_bind_int64(st, 2, p2);
    int rc, cap = 0, bad = 0;
    unsigned char *v = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        v = db_grow(v, *n, &cap, sz);
        unsigned char *e = v + (size_t)*n * sz;
        memset(e, 0, sz);
        ++*n;
        if ((bad = row(ctx, st, e, err)) != 0) break;
    }
    if (!bad && rc != SQLITE_DONE) dberr(db, rc, what, err);
    sqlite3_finalize(st);
    if (bad || rc != SQLITE_DONE) {
        for (int i = 0; drop && i < *n; i++) drop(v + (size_t)i * sz);
        free(v);
        *n = 0;
        return -1;
    }
    *out = v;
    return 0;
}

static const Col metric_cols[] = {
    COL(COL_INT, DbMetric, step),       COL(COL_REAL_NAN, DbMetric, loss),         COL(COL_REAL_NAN, DbMetric, kl),
    COL(COL_REAL_NAN, DbMetric, mse),   COL(COL_REAL_NAN, DbMetric, lr),           COL(COL_REAL_NAN, DbMetric, grad_norm),
    COL(COL_REAL_NAN, DbMetric, tokens_per_s), COL(COL_REAL_NAN, DbMetric, wall),
};
static const ColTable metric_table = COL_TABLE(metric_cols, DbMetric, 0);

int db_metrics(Db *db, int64_t run, DbMetric **out, int *n, char *err)
{
    void *v;
    int rc = db_select(db, "SELECT step, loss, kl, mse, lr, grad_norm, tokens_per_s, wall FROM metrics WHERE run_id=?1 "
                           "ORDER BY step",
                       run, 0, sizeof **out, cols_row, (void *)&metric_table, NULL, "reading metrics", &v, n, err);
    *out = v;
    return rc;
}

static const Col eval_cols[] = {
    COL(COL_INT, DbEval, step),     COL(COL_TEXT, DbEval, dataset), COL(COL_REAL_NAN, DbEval, nll),
    COL(COL_REAL_NAN, DbEval, ppl), COL(COL_REAL, DbEval, time),    COL(COL_TEXT, DbEval, model),
};
static const ColTable eval_table = COL_TABLE(eval_cols, DbEval, 0);

int db_evals(Db *db, int64_t run, DbEval **out, int *n, char *err)
{
    void *v;
    int rc = db_select(db, "SELECT step, dataset, nll, ppl, time, model FROM evals WHERE run_id=?1 ORDER BY step, dataset, model",
                       run, 0, sizeof **out, cols_row, (void *)&eval_table, NULL, "reading evaluations", &v, n, err);
    *out = v;
    return rc;
}

static const Col ckpt_cols[] = {
    COL(COL_I64, DbCheckpoint, id),      COL(COL_INT, DbCheckpoint, step), COL(COL_STR, DbCheckpoint, path),
    COL(COL_TEXT, DbCheckpoint, sha256), COL(COL_REAL, DbCheckpoint, time),
};
static const ColTable ckpt_table = COL_TABLE(ckpt_cols, DbCheckpoint, 0);

static void ckpt_drop(void *elem) { cols_free(&ckpt_table, elem); }

int db_checkpoints(Db *db, int64_t run, DbCheckpoint **out, int *n, char *err)
{
    void *v;
    int rc = db_select(db, "SELECT id, step, path, sha256, time FROM checkpoints WHERE run_id=?1 ORDER BY step", run, 0,
                       sizeof **out, cols_row, (void *)&ckpt_table, ckpt_drop, "reading checkpoints", &v, n, err);
    *out = v;
    return rc;
}

void db_checkpoints_free(DbCheckpoint *c, int n)
{
    for (int i = 0; i < n; i++) ckpt_drop(&c[i]);
    free(c);
}

int db_checkpoint_latest(Db *db, int64_t run, DbCheckpoint *out, char *err)
{
    sqlite3_stmt *st;
    memset(out, 0, sizeof *out);
    if (db_prep(db, &st, "SELECT id, step, path, sha256, time FROM checkpoints WHERE run_id=? ORDER BY step DESC LIMIT 1",
             "reading checkpoints", err))
        return -1;
    sqlite3_bind_int64(st, 1, run);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) cols_read(&ckpt_table, st, out);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    dberr(db, rc, "reading checkpoints", err);
    return -1;
}

/* ---- zero-shot task results ------------------------------------------------------- */

static const Col task_cols[] = {
    COL(COL_I64, DbTaskResult, id),       COL(COL_I64, DbTaskResult, run_id),   COL(COL_I64, DbTaskResult, teacher_id),
    COL(COL_TEXT, DbTaskResult, model),   COL(COL_TEXT, DbTaskResult, task),    COL(COL_STR, DbTaskResult, file),
    COL(COL_INT, DbTaskResult, items),    COL(COL_REAL_NAN, DbTaskResult, acc), COL(COL_REAL_NAN, DbTaskResult, acc_stderr),
    COL(COL_REAL_NAN, DbTaskResult, acc_norm), COL(COL_REAL_NAN, DbTaskResult, acc_norm_stderr),
    COL(COL_REAL, DbTaskResult, time),
};
static const ColTable task_table = COL_TABLE(task_cols, DbTaskResult, 1);

static void task_drop(void *elem) { cols_free(&task_table, elem); }

int64_t db_task_result_put(Db *db, const DbTaskResult *r, char *err)
{
    sqlite3_stmt *st;
    if (db_prep(db, &st,
                "INSERT INTO task_results(run_id, teacher_id, model, task, file, items, acc, acc_stderr, acc_norm, "
                "acc_norm_stderr, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                "recording a task result", err))
        return -1;
    if (r->run_id > 0) sqlite3_bind_int64(st, 1, r->run_id);
    if (r->teacher_id > 0) sqlite3_bind_int64(st, 2, r->teacher_id);
    sqlite3_bind_text(st, 3, r->model, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, r->task, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, r->file ? r->file : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 6, r->items);
    db_bind_real_or_null(st, 7, r->acc);
    db_bind_real_or_null(st, 8, r->acc_stderr);
    db_bind_real_or_null(st, 9, r->acc_norm);
    db_bind_real_or_null(st, 10, r->acc_norm_stderr);
    sqlite3_bind_double(st, 11, r->time > 0 ? r->time : db_wall_time());
    if (db_step_done(db, st, "recording a task result", err)) return -1;
    return sqlite3_last_insert_rowid(db->h);
}

int db_task_results(Db *db, int64_t run, int64_t teacher, DbTaskResult **out, int *n, char *err)
{
    void *v;
    int rc = db_select(db,
                       "SELECT id, coalesce(run_id, 0), coalesce(teacher_id, 0), model, task, file, items, acc, acc_stderr, "
                       "acc_norm, acc_norm_stderr, time FROM task_results WHERE (?1 > 0 AND run_id=?1) OR (?2 > 0 AND "
                       "teacher_id=?2 AND run_id IS NULL) ORDER BY task, model, time DESC",
                       run, teacher, sizeof **out, cols_row, (void *)&task_table, task_drop, "reading task results", &v, n,
                       err);
    *out = v;
    return rc;
}

void db_task_results_free(DbTaskResult *r, int n)
{
    for (int i = 0; i < n; i++) task_drop(&r[i]);
    free(r);
}

int64_t db_run_of_student(Db *db, const char *path, char *err)
{
    sqlite3_stmt *st;
    if (db_prep(db, &st, "SELECT id FROM runs WHERE student_path=?1 ORDER BY id DESC LIMIT 1", "finding a student's run", err))
        return -1;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) { dberr(db, rc, "finding a student's run", err); return -1; }
    return id;
}

/* ---- chats ------------------------------------------------------------------------- */

int64_t db_chat_new_session(Db *db, int64_t run, int64_t teacher, char *err)
{
    sqlite3_stmt *st;
    if (db_prep(db, &st,
             run ? "SELECT coalesce(max(session), 0) + 1 FROM chats WHERE run_id=?1"
                 : "SELECT coalesce(max(session), 0) + 1 FROM chats WHERE teacher_id=?1 AND run_id IS NULL",
             "starting a chat", err))
        return -1;
    sqlite3_bind_int64(st, 1, run ? run : teacher);
    int rc = sqlite3_step(st);
    int64_t s = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) { dberr(db, rc, "starting a chat", err); return -1; }
    return s;
}

int64_t db_chat_add(Db *db, int64_t run, int64_t teacher, int64_t session, const char *role, const char *text, char *err)
{
    sqlite3_stmt *st;
    if (!run && !teacher) { ob_seterr(err, "%s: a chat belongs to a run or a teacher", db->path); return -1; }
    if (db_prep(db, &st, "INSERT INTO chats(run_id, teacher_id, session, role, text, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
             "storing a chat message", err))
        return -1;
    if (run) sqlite3_bind_int64(st, 1, run);
    if (teacher) sqlite3_bind_int64(st, 2, teacher);
    sqlite3_bind_int64(st, 3, session);
    sqlite3_bind_text(st, 4, role, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 6, db_wall_time());
    int rc = sqlite3_step(st);
    char e2[OB_ERRLEN];
    if (rc != SQLITE_DONE) dberr(db, rc, "storing a chat message", e2); /* while errno is known */
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_CONSTRAINT_CHECK) ob_seterr(err, "%s: chat role must be system, user or assistant, not '%s'", db->path, role);
        else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) ob_seterr(err, "%s: no such run or teacher for a chat", db->path);
        else snprintf(err, OB_ERRLEN, "%s", e2);
        return -1;
    }
    return sqlite3_last_insert_rowid(db->h);
}

static const Col chat_cols[] = {
    COL(COL_I64, DbChat, id),       COL(COL_I64, DbChat, run_id), COL(COL_I64, DbChat, teacher_id),
    COL(COL_I64, DbChat, session),  COL(COL_TEXT, DbChat, role),  COL(COL_STR, DbChat, text),
    COL(COL_REAL, DbChat, time),
};
static const ColTable chat_table = COL_TABLE(chat_cols, DbChat, 1); /* text "" for NULL */

static void chat_drop(void *elem) { cols_free(&chat_table, elem); }

int db_chat_list(Db *db, int64_t run, int64_t teacher, int64_t session, DbChat **out, int *n, char *err)
{
    void *v;
    int rc = db_select(db,
                       run ? "SELECT id, run_id, teacher_id, session, role, text, time FROM chats WHERE run_id=?1 AND (?2 < 0 "
                             "OR session=?2) ORDER BY session, id"
                           : "SELECT id, run_id, teacher_id, session, role, text, time FROM chats WHERE teacher_id=?1 AND "
                             "run_id IS NULL AND (?2 < 0 OR session=?2) ORDER BY session, id",
                       run ? run : teacher, session, sizeof **out, cols_row, (void *)&chat_table, chat_drop, "reading chats", &v, n, err);
    *out = v;
    return rc;
}

void db_chat_list_free(DbChat *c, int n)
{
    for (int i = 0; i < n; i++) chat_drop(&c[i]);
    free(c);
}
