/* db_internal.h -- what db.c, writer.c and db_svid.c share: the connection
 * struct, the owner record, error mapping, column/array helpers and the SQL
 * more than one of them runs. */
#ifndef OB_DB_INTERNAL_H
#define OB_DB_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "db/db.h"

#define DB_BUSY_MS 5000

typedef struct {
    long long pid, start;  /* start: clock ticks since boot, -1 unknown */
    char boot[64], host[256];
} DbOwner;

struct Db {
    sqlite3 *h;
    char *path;
    int read_only, busy_ms;
    DbOwner self;
    pthread_t thread;   /* the thread using it (db.h: one at a time), checked by db_prep */
};

#define DB_SQL_METRIC_PUT                                                                                  \
    "INSERT OR REPLACE INTO metrics(run_id, step, loss, kl, mse, lr, grad_norm, tokens_per_s, wall) "      \
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
#define DB_SQL_EVAL_PUT \
    "INSERT OR REPLACE INTO evals(run_id, step, dataset, nll, ppl, time, model) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
#define DB_SQL_CKPT_PUT \
    "INSERT OR REPLACE INTO checkpoints(run_id, step, path, sha256, time) VALUES (?1, ?2, ?3, ?4, ?5)"

/* "PATH: <clear message> while WHAT" for an SQLite result code */
void db_set_sqlerr(sqlite3 *h, int rc, const char *path, const char *what, int busy_ms, char *err);
int db_exec(sqlite3 *h, const char *path, const char *sql, const char *what, int busy_ms, char *err);
/* open one connection: flags, busy timeout, WAL (read-write), foreign keys */
int db_connect(const char *path, int read_only, int busy_ms, sqlite3 **out, char *err);
void db_owner_self(DbOwner *o);
double db_wall_time(void);
/* prepare sql on db's connection; -1 with err ("... while WHAT") */
int db_prep(Db *db, sqlite3_stmt **st, const char *sql, const char *what, char *err);
/* step a statement that returns no rows, then finalize it */
int db_step_done(Db *db, sqlite3_stmt *st, const char *what, char *err);
/* bind v, or NULL when it is not finite */
void db_bind_real_or_null(sqlite3_stmt *st, int i, double v);
void db_bind_metric(sqlite3_stmt *st, int64_t run, const DbMetric *m);
void db_bind_eval(sqlite3_stmt *st, int64_t run, const DbEval *e);
/* a TEXT column into buf (n bytes, truncated), "" for NULL */
void db_col_text(sqlite3_stmt *st, int i, char *buf, size_t n);
/* a REAL column, NaN for NULL */
double db_col_real_or_nan(sqlite3_stmt *st, int i);
/* grow *v (element size sz, capacity *cap) to hold n+1 elements; aborts on OOM */
void *db_grow(void *v, int n, int *cap, size_t sz);
/* The rows of sql (its ?1 and ?2, when it has them, bound to p1 and p2) as
 * a malloc'd array of *n elements of sz bytes in *out: row(ctx, st, elem,
 * err) fills a zeroed element and returns 0, or -1 with err set to stop.
 * On a failure the elements so far are released with drop(elem) (NULL:
 * nothing to release), *out is NULL, *n 0, and err says what went wrong
 * ("... while WHAT" for SQLite). */
int db_select(Db *db, const char *sql, int64_t p1, int64_t p2, size_t sz,
              int (*row)(void *ctx, sqlite3_stmt *st, void *elem, char *err), void *ctx, void (*drop)(void *elem),
              const char *what, void **out, int *n, char *err);

#endif
