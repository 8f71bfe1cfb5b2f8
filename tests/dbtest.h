/* dbtest.h -- helpers shared by the run-store tests: paths in the test's
 * temporary directory and one-value SQL queries. */
#ifndef OB_DBTEST_H
#define OB_DBTEST_H

#include <sqlite3.h>
#include <stdio.h>

static char dir[256]; /* the test's temporary directory (mkdtemp) */

/* dir/name; the last 8 results stay valid */
static inline const char *tmp(const char *name)
{
    static char buf[8][512];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

/* the first column of the first row of sql; -998 if it does not prepare,
 * -999 if there is no row */
static inline long long q_int(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st;
    long long v = -999;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) return -998;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

#endif
