/* dbtest.h -- helpers shared by the run-store tests: paths in the test's
 * temporary directory, one-value SQL queries, a child process that reports
 * back (for a file size limit, a mount namespace). */
#ifndef OB_DBTEST_H
#define OB_DBTEST_H

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Run fn(ctx, res) in a child process; it fills res (n bytes), which comes
 * back through a pipe, and returns the child's exit status. *status gets
 * the child's wait status. 0 when res came back whole, else -1 (res as it
 * was: the child died first, or fork failed). */
static inline int in_child(int (*fn)(void *ctx, void *res), void *ctx, void *res, size_t n, int *status)
{
    int fd[2];
    *status = -1;
    if (pipe(fd)) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { close(fd[0]); close(fd[1]); return -1; }
    if (pid == 0) {
        close(fd[0]);
        int code = fn(ctx, res);
        if (write(fd[1], res, n) != (ssize_t)n) _exit(4);
        _exit(code);
    }
    close(fd[1]);
    void *got = malloc(n);
    int whole = got && read(fd[0], got, n) == (ssize_t)n;
    if (whole) memcpy(res, got, n);
    free(got);
    close(fd[0]);
    waitpid(pid, status, 0);
    return whole ? 0 : -1;
}

/* in a child: files may grow to at most `bytes`; a write past it fails
 * with EFBIG (SIGXFSZ ignored) */
static inline int limit_file_size(long bytes)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {(rlim_t)bytes, (rlim_t)bytes};
    return setrlimit(RLIMIT_FSIZE, &rl);
}

#endif
