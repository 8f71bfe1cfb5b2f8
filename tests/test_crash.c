/* tests/test_crash.c -- the workbench's crash handler (ui/crash.h) is
 * async-signal-safe: a fatal signal while another thread holds stdout's
 * lock (where fflush, as endwin's output, would wait forever) still writes
 * the precomputed restore sequence to the terminal, its message to the
 * saved stderr, and ends the process by the same signal. Each case runs in
 * a child; a hung handler is a failure after 10 s, not a hung test. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <curses.h>
#include <term.h>
#include <unistd.h>

#include "test.h"
#include "ui/crash.h"

#define SEQ "\033[?1049l\033[?25h\033[0m"

static int ready[2];

static void *hold_stdout(void *arg)
{
    (void)arg;
    flockfile(stdout); /* and never let go */
    char b = 1;
    if (write(ready[1], &b, 1) != 1) _exit(3);
    for (;;) pause();
    return NULL;
}

static void child(int tty_w, int err_w, int sig)
{
    if (pipe(ready)) _exit(3);
    printf("a line left in stdout's buffer, which the handler must not flush");
    ui_crash_arm(tty_w, SEQ, err_w);
    pthread_t th;
    if (pthread_create(&th, NULL, hold_stdout, NULL)) _exit(3);
    char b;
    if (read(ready[0], &b, 1) != 1) _exit(3);
    raise(sig);
    _exit(4); /* not reached when the handler re-raises */
}

static size_t slurp(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)r;
    buf[n] = 0;
    return n;
}

static void one(int sig)
{
    int tp[2], ep[2];
    CHECK(pipe(tp) == 0 && pipe(ep) == 0, "pipes");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(tp[0]);
        close(ep[0]);
        child(tp[1], ep[1], sig);
    }
    close(tp[1]);
    close(ep[1]);
    int st = 0, done = 0;
    for (int i = 0; i < 1000 && !done; i++) { /* a hang guard, not a timing assertion */
        done = waitpid(pid, &st, WNOHANG) == pid;
        if (!done) usleep(10000);
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    CHECK(done, "signal %d: the handler returned within 10 s (it hung: not async-signal-safe)", sig);
    CHECK(done && WIFSIGNALED(st) && WTERMSIG(st) == sig, "signal %d: the process ends by it (status %#x)", sig, st);
    char tb[256], eb[512];
    slurp(tp[0], tb, sizeof tb);
    slurp(ep[0], eb, sizeof eb);
    CHECK(!strcmp(tb, SEQ), "signal %d: the restore sequence reached the terminal (%zu bytes)", sig, strlen(tb));
    CHECK(strstr(eb, "fatal signal; the terminal was restored") != NULL, "signal %d: message on the saved stderr: '%s'", sig, eb);
    close(tp[0]);
    close(ep[0]);
}

int main(void)
{
    one(SIGSEGV);
    one(SIGABRT);
    one(SIGBUS);
    /* without a sequence given, the terminal's own capabilities are used */
    int e;
    if (setupterm("xterm", 1, &e) == OK) {
        ui_crash_arm(1, NULL, -1);
        int n;
        const char *b = ui_crash_restore_bytes(&n);
        CHECK(n > 0 && memmem(b, (size_t)n, "\033[?1049l", 8) && memmem(b, (size_t)n, "\033[?25h", 6),
              "xterm: rmcup and cnorm precomputed (%d bytes)", n);
        ui_crash_disarm();
        signal(SIGSEGV, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
    } else printf("no xterm terminfo: the capability check is skipped\n");
    return test_done("test_crash");
}
