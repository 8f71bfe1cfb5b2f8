/* ui/crash.c -- terminal restoration on a fatal signal (see crash.h):
 * arm/disarm from the UI thread; the handler from any crashing thread.
 *
 * endwin() and fflush() are not async-signal-safe: a crash while another
 * thread holds stdout's lock (or while curses is half-way through an
 * update) would hang the handler, leaving a dead process on a terminal in
 * raw mode on the alternate screen. So everything the handler needs is
 * computed beforehand, into static storage: the escape sequence that
 * leaves the alternate screen, keypad mode and attributes and shows the
 * cursor, and the termios from before curses. The handler writes the one,
 * sets the other, points fd 2 back at the real stderr, writes its message
 * with write(2), and re-raises the signal with the default action (the
 * handler is installed with SA_RESETHAND), so the exit status and core dump
 * are those of the original fault. */
#include "ui/crash.h"

#include <curses.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <term.h>
#include <termios.h>
#include <unistd.h>

static char restore_seq[256];
static int restore_len;
static struct termios saved_modes;
static volatile sig_atomic_t have_modes, armed;
static volatile sig_atomic_t tty = -1, err_fd = -1;

void ui_crash_save_modes(int tty_fd)
{
    have_modes = tcgetattr(tty_fd, &saved_modes) == 0;
}

static void add_cap(const char *name)
{
    char *s = tigetstr((char *)name);
    if (!s || s == (char *)-1) return;
    size_t n = strlen(s);
    if (restore_len + n >= sizeof restore_seq) return;
    memcpy(restore_seq + restore_len, s, n);
    restore_len += (int)n;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

static void crash_handler(int sig)
{
    int e = errno;
    if (armed) {
        armed = 0;
        if (restore_len > 0) write_all(tty, restore_seq, (size_t)restore_len);
        if (have_modes) tcsetattr(tty, TCSANOW, &saved_modes);
    }
    if (err_fd >= 0) dup2(err_fd, 2);
    static const char m[] = "onebit-tui: fatal signal; the terminal was restored\n";
    write_all(2, m, sizeof m - 1);
    errno = e;
    raise(sig); /* SA_RESETHAND: the default action now, so this ends the process */
}

void ui_crash_arm(int tty_fd, const char *seq, int saved_stderr)
{
    armed = 0;
    restore_len = 0;
    if (seq) {
        size_t n = strlen(seq);
        if (n >= sizeof restore_seq) n = sizeof restore_seq - 1;
        memcpy(restore_seq, seq, n);
        restore_len = (int)n;
    } else {
        add_cap("rmcup"); /* leave the alternate screen */
        add_cap("rmkx");  /* keypad back to normal mode */
        add_cap("sgr0");  /* no attributes */
        add_cap("cnorm"); /* a visible cursor */
    }
    tty = tty_fd;
    err_fd = saved_stderr;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = crash_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    int crash[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof crash / sizeof crash[0]; i++) sigaction(crash[i], &sa, NULL);
    armed = 1;
}

void ui_crash_add(const char *seq)
{
    size_t n = strlen(seq);
    if (restore_len + n >= sizeof restore_seq) return;
    armed = 0; /* the handler never sees a half-written sequence */
    memcpy(restore_seq + restore_len, seq, n);
    restore_len += (int)n;
    armed = 1;
}

void ui_crash_disarm(void)
{
    armed = 0;
    err_fd = -1;
}

const char *ui_crash_restore_bytes(int *n)
{
    *n = restore_len;
    return restore_seq;
}
