/* tests/test_ui_app.c -- the workbench shell's contracts without a
 * terminal: each screen's state is the app's (app_state: one zeroed block
 * per screen), screens ask each other through requests (app_post: every
 * screen sees each request once, in order, also requests posted while one
 * is handled; a path arrives whole), and the App is for the UI thread only
 * (app_assert_ui from another thread aborts: checked in a child); the
 * settings (app_conf_num takes a value in bounds, else the default with a
 * message; app_conf_set marks a change only) and the pick list. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/common.h"
#include "test.h"
#include "ui/app.h"

typedef struct { int seen[16], n; char path[4096]; } Probe;
static const UiScreen scr_a, scr_b;

static void on_event(App *a, const Event *ev, const UiScreen *me)
{
    Probe *p = app_state(a, me);
    if (ev->kind != EV_REQUEST || p->n >= 16) return;
    p->seen[p->n++] = ev->req;
    if (ev->path) snprintf(p->path, sizeof p->path, "%s", ev->path);
    /* screen A answers request 1 with request 3: it must come after 2 */
    if (me == &scr_a && ev->req == 1) app_post(a, &(Event){.kind = EV_REQUEST, .req = 3});
}
static void ev_a(App *a, const Event *ev) { on_event(a, ev, &scr_a); }
static void ev_b(App *a, const Event *ev) { on_event(a, ev, &scr_b); }
static const UiScreen scr_a = {.name = "A", .number = 1, .event = ev_a, .state_size = sizeof(Probe)};
static const UiScreen scr_b = {.name = "B", .number = 2, .event = ev_b, .state_size = sizeof(Probe)};

static void *other_thread(void *arg)
{
    app_assert_ui(arg); /* aborts */
    return NULL;
}

int main(void)
{
    App *a = ob_calloc(1, sizeof *a);
    a->ui_thread = pthread_self();
    a->screens[a->nscreens++] = &scr_a;
    a->screens[a->nscreens++] = &scr_b;
    for (int i = 0; i < a->nscreens; i++) a->state[i] = ob_calloc(1, a->screens[i]->state_size);
    Probe *pa = app_state(a, &scr_a), *pb = app_state(a, &scr_b);
    CHECK(pa && pb && pa != pb && pa->n == 0 && pb->n == 0, "one zeroed state per screen");

    char longp[3000];
    memset(longp, 'p', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = 0;
    app_post(a, &(Event){.kind = EV_REQUEST, .req = 1});
    app_post(a, &(Event){.kind = EV_REQUEST, .req = 2, .path = evring_intern(longp)});
    CHECK(pa->n == 0 && pb->n == 0, "nothing is delivered while posting");
    app_dispatch_posted(a);
    CHECK(pa->n == 3 && pa->seen[0] == 1 && pa->seen[1] == 2 && pa->seen[2] == 3, "A: 1, 2, then its own 3 (%d)", pa->n);
    CHECK(pb->n == 3 && pb->seen[0] == 1 && pb->seen[1] == 2 && pb->seen[2] == 3, "B: the same (%d)", pb->n);
    CHECK(!strcmp(pa->path, longp) && !strcmp(pb->path, longp), "a 2999-character path arrives whole");
    app_dispatch_posted(a);
    CHECK(pa->n == 3, "each request once");

    /* settings: a number in bounds is taken, anything else gives the
     * default and says why; setting the same value again is no change */
    ui_conf_parse(&a->conf, "chat.temperature = 0.3\nchat.top-p = 7\nchat.seed = x\n", NULL);
    CHECK(app_conf_num(a, "chat.temperature", 0.8, 0, 10) == 0.3, "a value in bounds");
    CHECK(app_conf_num(a, "chat.top-p", 0.9, 0, 1) == 0.9 && strstr(a->msg, "chat.top-p = '7'"), "out of bounds: the default, said: %s",
          a->msg);
    CHECK(app_conf_num(a, "chat.seed", 0, 0, 10) == 0 && strstr(a->msg, "chat.seed"), "not a number: the default");
    CHECK(app_conf_num(a, "nothing", 5, 0, 10) == 5, "missing: the default");
    a->conf_path[0] = 0;
    app_conf_set(a, "theme", "%s", "mono");
    CHECK(!strcmp(app_conf(a, "theme"), "mono") && !a->conf_dirty, "set; no file: nothing to write");
    snprintf(a->conf_path, sizeof a->conf_path, "/nonexistent/config");
    app_conf_set(a, "theme", "%s", "mono");
    CHECK(!a->conf_dirty, "the same value: no change to write");
    app_conf_set(a, "theme", "%s", "light");
    CHECK(a->conf_dirty, "a new value: to be written");
    ui_conf_free(&a->conf);
    /* the pick list: at most UI_MENU_MAX items, the current one kept in range */
    const char *items[UI_MENU_MAX + 4];
    for (int i = 0; i < UI_MENU_MAX + 4; i++) items[i] = "col";
    app_menu(a, "Sort by", items, UI_MENU_MAX + 4, 99, NULL);
    CHECK(a->menu && a->menu_n == UI_MENU_MAX && a->menu_cur == 0, "menu: clipped, the current in range");
    app_menu(a, "Sort by", items, 0, 0, NULL);
    CHECK(!a->menu, "an empty menu is not shown");

    /* the UI-thread contract: another thread is refused (assert -> abort) */
#ifndef NDEBUG
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t th;
        if (pthread_create(&th, NULL, other_thread, a)) _exit(3);
        pthread_join(th, NULL);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "app_assert_ui from another thread aborts (status %#x)", st);
#endif

    for (int i = 0; i < a->nscreens; i++) free(a->state[i]);
    app_log_clear(a); /* the messages of app_conf_num */
    free(a->posted);
    free(a);
    return test_done("test_ui_app");
}
