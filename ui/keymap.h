/* keymap.h -- the one keymap table of the workbench: every key of every
 * context with its action and help text. Key dispatch (ui_keymap_lookup),
 * the help screen (ui_keymap_help) and the status-bar hints
 * (ui_keymap_hints) are all drawn from this table, so they cannot disagree. */
#ifndef OB_UI_KEYMAP_H
#define OB_UI_KEYMAP_H

#include <stddef.h>

#include "ui/grid.h"

/* a key: a character (its code point) or a curses KEY_* code marked UI_FN */
#define UI_FN(k) ((k) | 0x1000000)
#define UI_IS_FN(k) (((k) & 0x1000000) != 0)
#define UI_CTRL(c) ((c) & 0x1f)
#define UI_KEY_ESC 27
/* the mouse's rows in the help (never typed: app.c reads KEY_MOUSE) */
#define UI_KEY_CLICK UI_FN(0xfff0)
#define UI_KEY_WHEEL UI_FN(0xffef)

typedef enum {
    UI_CTX_GLOBAL,     /* everywhere except while typing */
    UI_CTX_ANYWHERE,   /* everywhere, even while typing */
    UI_CTX_LIST,       /* scrolling lists and tables */
    UI_CTX_MODEL,
    UI_CTX_LAYERS,
    UI_CTX_TRAIN,
    UI_CTX_RUNS,
    UI_CTX_CHAT,
    UI_CTX_CHAT_INPUT, /* the chat input line has focus */
    UI_CTX_CHAT_READY, /* Chat just shown: typing text starts a message, screen keys still switch */
    UI_CTX_LOG,
    UI_CTX_EDIT,       /* any text field: line editing */
    UI_CTX_PROMPT,     /* a one-line prompt (file path, value) */
    UI_CTX_FORM,       /* a form of fields */
    UI_CTX_CONFIRM,    /* a yes/no question */
    UI_CTX_HELP,
    UI_CTX_MENU,       /* a pick list (the sort picker) */
    UI_CTX_MOUSE,      /* the mouse (help rows only: app.c dispatches it) */
    UI_CTX_COUNT
} UiCtx;

typedef enum {
    A_NONE = 0,
    /* global */
    A_QUIT, A_HELP, A_SCREEN, A_NEXT_SCREEN, A_PREV_SCREEN, A_REDRAW,
    /* lists */
    A_UP, A_DOWN, A_PGUP, A_PGDN, A_HOME, A_END, A_SORT, A_SORT_REV,
    A_FILTER, A_SORT_PICK, A_NEXT_MATCH, A_PREV_MATCH, A_LOG_ONLY,
    /* model */
    A_OPEN, A_RECENT,
    /* train */
    A_NEW_RUN, A_PAUSE, A_STOP, A_LOGSCALE, A_SMOOTH, A_UNQUEUE, A_QUEUE_SOONER, A_QUEUE_LATER, A_ZOOM,
    /* mouse (help only) */
    A_CLICK, A_WHEEL,
    /* runs */
    A_REFRESH, A_MARK, A_RESUME, A_DELETE, A_EXPORT, A_CHAT_STUDENT, A_CHATS,
    /* layers */
    A_RECOMPUTE,
    /* chat */
    A_STUDENT, A_TARGET_CYCLE, A_ACT_TOGGLE,
    A_FOCUS, A_SEND, A_ESCAPE, A_SETTINGS, A_TARGET, A_NEW_CHAT,
    /* log */
    A_CLEAR,
    /* line editing */
    A_ED_LEFT, A_ED_RIGHT, A_ED_HOME, A_ED_END, A_ED_BKSP, A_ED_DEL,
    A_ED_KILL_END, A_ED_KILL_START, A_ED_KILL_WORD, A_ED_COMPLETE,
    /* prompts, forms, questions */
    A_ACCEPT, A_CANCEL, A_NEXT_FIELD, A_PREV_FIELD, A_YES, A_NO,
    A_COUNT
} UiAction;

typedef struct {
    UiCtx ctx;
    int key;            /* character or UI_FN(KEY_...) */
    const char *name;   /* how help shows the key: "q", "F10", "Enter", "^K" */
    UiAction action;
    int arg;            /* e.g. the screen number of A_SCREEN */
    const char *help;   /* what it does; entries of one ctx with the same
                           action+arg+help are shown as one help line */
    const char *hint;   /* short status-bar label, or NULL */
} UiKey;

extern const UiKey ui_keymap[];
extern const int ui_keymap_len;

const char *ui_ctx_name(UiCtx c);

/* the entry for key in ctx, or NULL (no fallback to other contexts) */
const UiKey *ui_keymap_find(UiCtx ctx, int key);
/* first match in ctxs[0..n-1]; NULL when none */
const UiKey *ui_keymap_lookup(const UiCtx *ctxs, int n, int key);

/* Help text for the contexts ctxs: a heading per context and one line per
 * action ("  q, F10   quit"). Calls line(user, text, is_heading) per line;
 * returns the number of lines. */
int ui_keymap_help(const UiCtx *ctxs, int n, void (*line)(void *user, const char *text, int heading), void *user);
/* status-bar hints of ctxs, "F1 help  q quit ..." into buf */
char *ui_keymap_hints(const UiCtx *ctxs, int n, char *buf, size_t len);

#endif
