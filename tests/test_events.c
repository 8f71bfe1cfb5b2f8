/* test_events.c -- the event ring: order, overflow drops the oldest, the
 * self-pipe wakes a poll()ing consumer, many producers lose nothing. */
#include <poll.h>
#include <pthread.h>

#include "base/events.h"
#include "test.h"

static EventRing ring;

static void *producer(void *arg)
{
    int id = (int)(long)arg;
    for (int i = 0; i < 1000; i++) {
        Event e = {.kind = EV_STEP, .run_id = id, .step = i};
        evring_push(&ring, &e);
    }
    return NULL;
}

int main(void)
{
    CHECK(evring_init(&ring, 4) == 0, "init");
    struct pollfd p = {evring_fd(&ring), POLLIN, 0};
    CHECK(poll(&p, 1, 0) == 0, "idle ring is not readable");
    for (int i = 0; i < 6; i++) {
        Event e = {.kind = EV_STEP, .step = i};
        evring_push(&ring, &e);
    }
    CHECK(poll(&p, 1, 0) == 1, "readable after a push");
    Event out[8];
    int n = evring_pop(&ring, out, 2);
    CHECK(n == 2 && out[0].step == 2 && out[1].step == 3, "oldest two dropped, order kept (%d, %d)", n, out[0].step);
    CHECK(ring.dropped == 2, "dropped %ld", ring.dropped);
    CHECK(poll(&p, 1, 0) == 1, "still readable while events remain");
    n = evring_pop(&ring, out, 8);
    CHECK(n == 2 && out[1].step == 5, "rest");
    CHECK(poll(&p, 1, 0) == 0, "drained");
    evring_destroy(&ring);

    /* 4 producers, a consumer waiting in poll(): every event arrives in order per producer */
    CHECK(evring_init(&ring, 8192) == 0, "init big");
    pthread_t th[4];
    for (long i = 0; i < 4; i++) pthread_create(&th[i], NULL, producer, (void *)i);
    int got = 0, last[4] = {-1, -1, -1, -1}, inorder = 1;
    p.fd = evring_fd(&ring);
    while (got < 4000) {
        if (poll(&p, 1, 2000) != 1) break;
        n = evring_pop(&ring, out, 8);
        for (int i = 0; i < n; i++) {
            if (out[i].step != last[out[i].run_id] + 1) inorder = 0;
            last[out[i].run_id] = out[i].step;
        }
        got += n;
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    CHECK(got == 4000 && inorder, "got %d events, in order %d", got, inorder);
    CHECK(strcmp(run_status_name(RUN_INTERRUPTED), "interrupted") == 0, "status names");
    evring_destroy(&ring);
    return test_done("test_events");
}
