/* src/base/events.c -- the event ring buffer with self-pipe wake-up, and the
 * interned paths events carry (see events.h for which thread calls what). */
#include "base/events.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"

const char *run_status_name(RunStatus s)
{
    static const char *const names[] = {"pending", "running", "paused", "finished", "failed", "stopped", "interrupted"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

int evring_init(EventRing *r, int capacity)
{
    memset(r, 0, sizeof *r);
    if (capacity < 1) capacity = 1;
    if (pipe(r->pipefd) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(r->pipefd[i], F_SETFL, fcntl(r->pipefd[i], F_GETFL) | O_NONBLOCK);
        fcntl(r->pipefd[i], F_SETFD, FD_CLOEXEC);
    }
    pthread_mutex_init(&r->mu, NULL);
    r->buf = ob_calloc(capacity, sizeof(Event));
    r->cap = capacity;
    return 0;
}

void evring_destroy(EventRing *r)
{
    if (!r->buf) return;
    pthread_mutex_destroy(&r->mu);
    close(r->pipefd[0]);
    close(r->pipefd[1]);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

void evring_push(EventRing *r, const Event *ev)
{
    pthread_mutex_lock(&r->mu);
    int idx;
    if (r->count == r->cap) { /* full: drop the oldest */
        r->head = (r->head + 1) % r->cap;
        r->count--;
        r->dropped++;
    }
    idx = (r->head + r->count) % r->cap;
    r->buf[idx] = *ev;
    r->count++;
    pthread_mutex_unlock(&r->mu);
    char b = 1;
    ssize_t n = write(r->pipefd[1], &b, 1); /* EAGAIN: the pipe is full, a wake-up is pending anyway */
    (void)n;
}

int evring_pop(EventRing *r, Event *out, int max)
{
    char drain[256];
    while (read(r->pipefd[0], drain, sizeof drain) > 0) {}
    pthread_mutex_lock(&r->mu);
    int n = 0;
    while (n < max && r->count > 0) {
        out[n++] = r->buf[r->head];
        r->head = (r->head + 1) % r->cap;
        r->count--;
    }
    int more = r->count > 0;
    pthread_mutex_unlock(&r->mu);
    if (more) { char b = 1; ssize_t w = write(r->pipefd[1], &b, 1); (void)w; } /* keep the fd readable */
    return n;
}

int evring_fd(const EventRing *r) { return r->pipefd[0]; }

/* a list is enough: a process sees a handful of distinct checkpoint paths */
typedef struct Interned { struct Interned *next; char s[]; } Interned;
static Interned *interned;
static pthread_mutex_t intern_mu = PTHREAD_MUTEX_INITIALIZER;

const char *evring_intern(const char *s)
{
    if (!s) return NULL;
    pthread_mutex_lock(&intern_mu);
    Interned *p;
    for (p = interned; p; p = p->next)
        if (!strcmp(p->s, s)) break;
    if (!p) {
        size_t n = strlen(s) + 1;
        p = ob_malloc(sizeof *p + n);
        memcpy(p->s, s, n);
        p->next = interned;
        interned = p;
    }
    pthread_mutex_unlock(&intern_mu);
    return p->s;
}
