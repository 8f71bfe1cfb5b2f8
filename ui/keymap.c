/* keymap.c -- the keymap table, lookup, help text and status hints (see
 * keymap.h). To add a key: add a row here; dispatch and help follow. */
#include "ui/keymap.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

#define ENTER_KEYS(ctx, act, help, hint) \
    {ctx, '\n', "Enter", act, 0, help, hint}, {ctx, '\r', "Enter", act, 0, help, NULL}, \
    {ctx, UI_FN(KEY_ENTER), "Enter", act, 0, help, NULL}

const UiKey ui_keymap[] = {
    /* everywhere, even while typing */
    {UI_CTX_ANYWHERE, UI_FN(KEY_F(10)), "F10", A_QUIT, 0, "quit (asks first while a run trains)", "quit"},
    {UI_CTX_ANYWHERE, UI_FN(KEY_F(1)), "F1", A_HELP, 0, "help: this list of keys", "help"},
    {UI_CTX_ANYWHERE, UI_CTRL('l'), "^L", A_REDRAW, 0, "redraw the screen", NULL},

    /* global */
    {UI_CTX_GLOBAL, 'q', "q", A_QUIT, 0, "quit (asks first while a run trains)", "quit"},
    {UI_CTX_GLOBAL, '?', "?", A_HELP, 0, "help: this list of keys", "help"},
    {UI_CTX_GLOBAL, '1', "1", A_SCREEN, 1, "Model screen: the teacher", NULL},
    {UI_CTX_GLOBAL, '2', "2", A_SCREEN, 2, "Layers screen: per-layer errors and statistics", NULL},
    {UI_CTX_GLOBAL, '3', "3", A_SCREEN, 3, "Train screen: start, watch, pause and stop runs", NULL},
    {UI_CTX_GLOBAL, '4', "4", A_SCREEN, 4, "Runs screen: the run store", NULL},
    {UI_CTX_GLOBAL, '5', "5", A_SCREEN, 5, "Chat screen: talk to the teacher or a student", NULL},
    {UI_CTX_GLOBAL, '6', "6", A_SCREEN, 6, "Log screen: messages and errors", NULL},
    {UI_CTX_GLOBAL, '\t', "Tab", A_NEXT_SCREEN, 0, "next screen", NULL},
    {UI_CTX_GLOBAL, UI_FN(KEY_BTAB), "S-Tab", A_PREV_SCREEN, 0, "previous screen", NULL},

    /* scrolling lists and tables */
    {UI_CTX_LIST, UI_FN(KEY_UP), "Up", A_UP, 0, "move up", NULL},
    {UI_CTX_LIST, 'k', "k", A_UP, 0, "move up", NULL},
    {UI_CTX_LIST, UI_FN(KEY_DOWN), "Down", A_DOWN, 0, "move down", NULL},
    {UI_CTX_LIST, 'j', "j", A_DOWN, 0, "move down", NULL},
    {UI_CTX_LIST, UI_FN(KEY_PPAGE), "PgUp", A_PGUP, 0, "page up", NULL},
    {UI_CTX_LIST, UI_FN(KEY_NPAGE), "PgDn", A_PGDN, 0, "page down", NULL},
    {UI_CTX_LIST, UI_FN(KEY_HOME), "Home", A_HOME, 0, "to the top", NULL},
    {UI_CTX_LIST, 'g', "g", A_HOME, 0, "to the top", NULL},
    {UI_CTX_LIST, UI_FN(KEY_END), "End", A_END, 0, "to the bottom (and follow new output)", NULL},
    {UI_CTX_LIST, 'G', "G", A_END, 0, "to the bottom (and follow new output)", NULL},

    /* Model */
    {UI_CTX_MODEL, 'o', "o", A_OPEN, 0, "open a teacher (path prompt, Tab completes)", "open"},
    {UI_CTX_MODEL, 'r', "r", A_RECENT, 0, "recent teachers from the run store (Enter loads, Esc closes)", "recent"},
    ENTER_KEYS(UI_CTX_MODEL, A_FOCUS, "load the selected recent teacher", NULL),
    {UI_CTX_MODEL, UI_KEY_ESC, "Esc", A_ESCAPE, 0, "close the recent teachers", NULL},
    {UI_CTX_MODEL, 's', "s", A_SORT, 0, "sort the projection table by the next column", "sort"},
    {UI_CTX_MODEL, 'S', "S", A_SORT_REV, 0, "reverse the sort order", NULL},

    /* the Layers and Runs rows below are alike on purpose: the same keys mean
     * the same on both tables, each row is data (context, key, help text) */
    /* Layers */
    ENTER_KEYS(UI_CTX_LAYERS, A_OPEN, "histograms and sign-balance charts of the layer (again: back)", "details"),
    {UI_CTX_LAYERS, UI_KEY_ESC, "Esc", A_ESCAPE, 0, "back to the table", NULL},
    {UI_CTX_LAYERS, 's', "s", A_SORT, 0, "sort by the next column", "sort"},
    {UI_CTX_LAYERS, 'S', "S", A_SORT_REV, 0, "reverse the sort order", NULL},
    {UI_CTX_LAYERS, UI_FN(KEY_F(6)), "F6", A_SORT_PICK, 0, "sort by a column picked from a list (remembered)", NULL},
    {UI_CTX_LAYERS, '/', "/", A_FILTER, 0, "filter: show the rows with a cell that contains the text typed (Esc clears)", "filter"},
    {UI_CTX_LAYERS, 'R', "R", A_RECOMPUTE, 0, "compute the statistics again (ignore the stored ones)", "recompute"},

    /* Train */
    {UI_CTX_TRAIN, 'n', "n", A_NEW_RUN, 0, "new run: a form with the defaults; queued if one trains", "new run"},
    {UI_CTX_TRAIN, 'p', "p", A_PAUSE, 0, "pause / resume the run", "pause"},
    {UI_CTX_TRAIN, 'x', "x", A_STOP, 0, "stop the run (asks; writes a checkpoint), or cancel the generation of its data", "stop"},
    {UI_CTX_TRAIN, 'l', "l", A_LOGSCALE, 0, "log-scale y axis of the loss chart on / off (KL/MSE and perplexity are always log)", "log"},
    {UI_CTX_TRAIN, 'm', "m", A_SMOOTH, 0, "smoothing of the loss curves on / off", "smooth"},
    {UI_CTX_TRAIN, 'z', "z", A_ZOOM, 0, "charts: the newest half of the steps shown (again: a quarter ..., then all)", "zoom"},
    {UI_CTX_TRAIN, UI_FN(KEY_PPAGE), "PgUp", A_PGUP, 0, "charts zoomed in: back by half the steps shown (also the wheel)", NULL},
    {UI_CTX_TRAIN, UI_FN(KEY_NPAGE), "PgDn", A_PGDN, 0, "charts zoomed in: forward (at the newest they follow it again)", NULL},
    {UI_CTX_TRAIN, 'c', "c", A_UNQUEUE, 0, "cancel a queued run (asks which: its number or name in the queue line)", NULL},
    {UI_CTX_TRAIN, '+', "+", A_QUEUE_SOONER, 0, "start a queued run sooner: it moves one place up the queue (asks which)", NULL},
    {UI_CTX_TRAIN, '-', "-", A_QUEUE_LATER, 0, "start a queued run later: it moves one place down the queue (asks which)", NULL},

    /* Runs */
    ENTER_KEYS(UI_CTX_RUNS, A_OPEN, "details and loss curve of the run (again: hide)", "details"),
    {UI_CTX_RUNS, UI_KEY_ESC, "Esc", A_ESCAPE, 0, "hide the details", NULL},
    {UI_CTX_RUNS, 'm', "m", A_MARK, 0, "mark / unmark the run: its curve is overlaid on the selected run's", "compare"},
    {UI_CTX_RUNS, 'r', "r", A_RESUME, 0, "resume the run from its latest checkpoint", "resume"},
    {UI_CTX_RUNS, 'd', "d", A_DELETE, 0, "delete the run's records (asks; files stay)", "delete"},
    {UI_CTX_RUNS, 'e', "e", A_EXPORT, 0, "export the run to a directory (runs export)", "export"},
    {UI_CTX_RUNS, 'c', "c", A_CHAT_STUDENT, 0, "chat with the run's student", "chat"},
    {UI_CTX_RUNS, 't', "t", A_CHATS, 0, "the chats kept with the run's student, scrolled by the list keys (again or Esc: back)", "chats"},
    {UI_CTX_RUNS, 'R', "R", A_REFRESH, 0, "read the run store again", NULL},
    {UI_CTX_RUNS, 's', "s", A_SORT, 0, "sort by the next column", "sort"},
    {UI_CTX_RUNS, 'S', "S", A_SORT_REV, 0, "reverse the sort order", NULL},
    {UI_CTX_RUNS, UI_FN(KEY_F(6)), "F6", A_SORT_PICK, 0, "sort by a column picked from a list (remembered)", NULL},
    {UI_CTX_RUNS, '/', "/", A_FILTER, 0, "filter: show the rows with a cell that contains the text typed (Esc clears)", "filter"},

    /* Chat */
    ENTER_KEYS(UI_CTX_CHAT, A_FOCUS, "type a message (focus the input line)", "type"),
    {UI_CTX_CHAT, 'i', "i", A_FOCUS, 0, "type a message (focus the input line)", NULL},
    {UI_CTX_CHAT, 's', "s", A_SETTINGS, 0, "sampling settings (temperature, top-p, tokens, seed)", "settings"},
    {UI_CTX_CHAT, 'n', "n", A_NEW_CHAT, 0, "new conversation (clears the transcript)", "new"},
    {UI_CTX_CHAT, 'l', "l", A_STUDENT, 0, "load a student .onebit or OneBit checkpoint directory (path prompt)", "student"},
    {UI_CTX_CHAT, 't', "t", A_TARGET_CYCLE, 0, "talk to: teacher, student, or both side by side", "target"},
    {UI_CTX_CHAT, 'a', "a", A_ACT_TOGGLE, 0, "student activations: fp32 (exact) or int8 (faster batched kernels)", "fp32/int8"},
    {UI_CTX_CHAT, UI_KEY_ESC, "Esc", A_ESCAPE, 0, "stop the generation in progress", NULL},
    ENTER_KEYS(UI_CTX_CHAT_INPUT, A_SEND, "send the message; the reply streams in", "send"),
    {UI_CTX_CHAT_INPUT, UI_KEY_ESC, "Esc", A_ESCAPE, 0, "stop the generation (keeps the partial reply), else leave the input line", "stop/leave"},
    {UI_CTX_CHAT_INPUT, UI_FN(KEY_PPAGE), "PgUp", A_PGUP, 0, "scroll the transcript up", NULL},
    {UI_CTX_CHAT_INPUT, UI_FN(KEY_NPAGE), "PgDn", A_PGDN, 0, "scroll the transcript down (follows at the bottom)", NULL},

    /* Chat just shown: the input line waits for text (any other key starts
     * the message); until then the screen keys switch screens. These rows
     * repeat the global screen keys on purpose: each row is a key of this
     * context, so that dispatch, help and the man page's KEYS follow it */
    {UI_CTX_CHAT_READY, '1', "1", A_SCREEN, 0, "switch screens, until you type (then they are text)", NULL},
    {UI_CTX_CHAT_READY, '2', "2", A_SCREEN, 0, "switch screens, until you type (then they are text)", NULL},
    {UI_CTX_CHAT_READY, '3', "3", A_SCREEN, 0, "switch screens, until you type (then they are text)", NULL},
    {UI_CTX_CHAT_READY, '4', "4", A_SCREEN, 0, "switch screens, until you type (then they are text)", NULL},
    {UI_CTX_CHAT_READY, '5', "5", A_SCREEN, 0, "switch screens, until you type (then they are text)", NULL},
    {UI_CTX_CHAT_READY, '6', "6", A_SCREEN, 0, "switch screens, until you type (then they are text)", NULL},
    {UI_CTX_CHAT_READY, '\t', "Tab", A_NEXT_SCREEN, 0, "next screen", NULL},
    {UI_CTX_CHAT_READY, UI_FN(KEY_BTAB), "S-Tab", A_PREV_SCREEN, 0, "previous screen", NULL},
    ENTER_KEYS(UI_CTX_CHAT_READY, A_FOCUS, "type a message (focus the input line)", "type"),
    {UI_CTX_CHAT_READY, 'i', "i", A_FOCUS, 0, "type a message (focus the input line)", NULL},
    {UI_CTX_CHAT_READY, UI_KEY_ESC, "Esc", A_ESCAPE, 0, "stop the generation, else the chat's keys (s, n, l, t, a)", "keys"},
    {UI_CTX_CHAT_READY, UI_FN(KEY_PPAGE), "PgUp", A_PGUP, 0, "scroll the transcript up", NULL},
    {UI_CTX_CHAT_READY, UI_FN(KEY_NPAGE), "PgDn", A_PGDN, 0, "scroll the transcript down (follows at the bottom)", NULL},

    /* Log */
    {UI_CTX_LOG, 'c', "c", A_CLEAR, 0, "clear the log", "clear"},
    {UI_CTX_LOG, '/', "/", A_FILTER, 0, "search: the first line from the top shown that contains the text typed", "search"},
    {UI_CTX_LOG, 'n', "n", A_NEXT_MATCH, 0, "the next line that matches the search", NULL},
    {UI_CTX_LOG, 'N', "N", A_PREV_MATCH, 0, "the previous line that matches the search", NULL},
    {UI_CTX_LOG, 'f', "f", A_LOG_ONLY, 0, "filter: only the lines that match the search (again: all)", NULL},
    {UI_CTX_LOG, UI_KEY_ESC, "Esc", A_ESCAPE, 0, "end the search (no highlight)", NULL},

    /* line editing in any text field */
    {UI_CTX_EDIT, UI_FN(KEY_LEFT), "Left", A_ED_LEFT, 0, "cursor left", NULL},
    {UI_CTX_EDIT, UI_CTRL('b'), "^B", A_ED_LEFT, 0, "cursor left", NULL},
    {UI_CTX_EDIT, UI_FN(KEY_RIGHT), "Right", A_ED_RIGHT, 0, "cursor right", NULL},
    {UI_CTX_EDIT, UI_CTRL('f'), "^F", A_ED_RIGHT, 0, "cursor right", NULL},
    {UI_CTX_EDIT, UI_FN(KEY_HOME), "Home", A_ED_HOME, 0, "start of the line", NULL},
    {UI_CTX_EDIT, UI_CTRL('a'), "^A", A_ED_HOME, 0, "start of the line", NULL},
    {UI_CTX_EDIT, UI_FN(KEY_END), "End", A_ED_END, 0, "end of the line", NULL},
    {UI_CTX_EDIT, UI_CTRL('e'), "^E", A_ED_END, 0, "end of the line", NULL},
    {UI_CTX_EDIT, UI_FN(KEY_BACKSPACE), "Backspace", A_ED_BKSP, 0, "delete the character before the cursor", NULL},
    {UI_CTX_EDIT, 127, "Backspace", A_ED_BKSP, 0, "delete the character before the cursor", NULL},
    {UI_CTX_EDIT, UI_CTRL('h'), "^H", A_ED_BKSP, 0, "delete the character before the cursor", NULL},
    {UI_CTX_EDIT, UI_FN(KEY_DC), "Delete", A_ED_DEL, 0, "delete the character under the cursor", NULL},
    {UI_CTX_EDIT, UI_CTRL('d'), "^D", A_ED_DEL, 0, "delete the character under the cursor", NULL},
    {UI_CTX_EDIT, UI_CTRL('k'), "^K", A_ED_KILL_END, 0, "delete to the end of the line", NULL},
    {UI_CTX_EDIT, UI_CTRL('u'), "^U", A_ED_KILL_START, 0, "delete to the start of the line", NULL},
    {UI_CTX_EDIT, UI_CTRL('w'), "^W", A_ED_KILL_WORD, 0, "delete the word before the cursor", NULL},

    /* one-line prompts */
    ENTER_KEYS(UI_CTX_PROMPT, A_ACCEPT, "accept", "accept"),
    {UI_CTX_PROMPT, UI_KEY_ESC, "Esc", A_CANCEL, 0, "cancel", "cancel"},
    {UI_CTX_PROMPT, '\t', "Tab", A_ED_COMPLETE, 0, "complete a file name (twice: list the choices)", "complete"},

    /* forms */
    ENTER_KEYS(UI_CTX_FORM, A_ACCEPT, "accept the form", "accept"),
    {UI_CTX_FORM, UI_KEY_ESC, "Esc", A_CANCEL, 0, "cancel the form", "cancel"},
    {UI_CTX_FORM, UI_FN(KEY_DOWN), "Down", A_NEXT_FIELD, 0, "next field", "next field"},
    {UI_CTX_FORM, '\t', "Tab", A_NEXT_FIELD, 0, "next field", NULL},
    {UI_CTX_FORM, UI_FN(KEY_UP), "Up", A_PREV_FIELD, 0, "previous field", NULL},
    {UI_CTX_FORM, UI_FN(KEY_BTAB), "S-Tab", A_PREV_FIELD, 0, "previous field", NULL},

    /* yes/no questions */
    {UI_CTX_CONFIRM, 'y', "y", A_YES, 0, "yes", "yes"},
    {UI_CTX_CONFIRM, 'Y', "Y", A_YES, 0, "yes", NULL},
    {UI_CTX_CONFIRM, 'n', "n", A_NO, 0, "no", "no"},
    {UI_CTX_CONFIRM, 'N', "N", A_NO, 0, "no", NULL},
    {UI_CTX_CONFIRM, UI_KEY_ESC, "Esc", A_NO, 0, "no", NULL},

    /* the help screen */
    {UI_CTX_HELP, UI_KEY_ESC, "Esc", A_CANCEL, 0, "close the help", "close"},
    {UI_CTX_HELP, 'q', "q", A_CANCEL, 0, "close the help", NULL},
    {UI_CTX_HELP, '?', "?", A_CANCEL, 0, "close the help", NULL},

    /* pick lists */
    {UI_CTX_MENU, UI_FN(KEY_UP), "Up", A_UP, 0, "previous choice", NULL},
    {UI_CTX_MENU, UI_FN(KEY_DOWN), "Down", A_DOWN, 0, "next choice", "move"},
    ENTER_KEYS(UI_CTX_MENU, A_ACCEPT, "take the choice (the column sorted now: the other way round)", "pick"),
    {UI_CTX_MENU, UI_KEY_ESC, "Esc", A_CANCEL, 0, "close the list", "cancel"},

    /* the mouse (off with --no-mouse or mouse = off) */
    {UI_CTX_MOUSE, UI_KEY_CLICK, "click", A_CLICK, 0, "a tab: its screen; a row: select it; the selected row (a double click): Enter", NULL},
    {UI_CTX_MOUSE, UI_KEY_CLICK + 1, "click a title", A_CLICK, 1, "sort by that column (again: reversed)", NULL},
    {UI_CTX_MOUSE, UI_KEY_CLICK + 2, "click a field", A_CLICK, 2, "focus the form field; a choice in a list: take it", NULL},
    {UI_CTX_MOUSE, UI_KEY_CLICK + 3, "click a line", A_CLICK, 3, "Log: select the line (n and N search from it)", NULL},
    {UI_CTX_MOUSE, UI_KEY_WHEEL, "wheel", A_WHEEL, 0, "scroll lists, the Log, the help and the chat transcript", NULL},
};
const int ui_keymap_len = (int)(sizeof ui_keymap / sizeof ui_keymap[0]);

const char *ui_ctx_name(UiCtx c)
{
    static const char *const names[UI_CTX_COUNT] = {
        "Everywhere but while typing", "Everywhere", "Lists and tables", "Model screen", "Layers screen",
        "Train screen", "Runs screen", "Chat screen", "Chat input line",
        "Chat input line, before typing", "Log screen", "Text fields",
        "Prompts", "Forms", "Questions", "Help", "Pick lists", "Mouse"};
    return (unsigned)c < UI_CTX_COUNT ? names[c] : "?";
}

const UiKey *ui_keymap_find(UiCtx ctx, int key)
{
    for (int i = 0; i < ui_keymap_len; i++)
        if (ui_keymap[i].ctx == ctx && ui_keymap[i].key == key) return &ui_keymap[i];
    return NULL;
}

const UiKey *ui_keymap_lookup(const UiCtx *ctxs, int n, int key)
{
    for (int c = 0; c < n; c++) {
        const UiKey *k = ui_keymap_find(ctxs[c], key);
        if (k) return k;
    }
    return NULL;
}

static int same_line(const UiKey *a, const UiKey *b)
{
    return a->ctx == b->ctx && a->action == b->action && a->arg == b->arg && !strcmp(a->help, b->help);
}

int ui_keymap_help(const UiCtx *ctxs, int n, void (*line)(void *user, const char *text, int heading), void *user)
{
    int lines = 0;
    char buf[256];
    for (int c = 0; c < n; c++) {
        int heading_done = 0;
        for (int i = 0; i < ui_keymap_len; i++) {
            const UiKey *k = &ui_keymap[i];
            if (k->ctx != ctxs[c]) continue;
            int seen = 0; /* already listed with an earlier entry */
            for (int j = 0; j < i && !seen; j++) seen = same_line(&ui_keymap[j], k);
            if (seen) continue;
            if (!heading_done) {
                if (line) line(user, ui_ctx_name(ctxs[c]), 1);
                lines++;
                heading_done = 1;
            }
            char names[96] = "";
            for (int j = i; j < ui_keymap_len; j++) {
                if (!same_line(&ui_keymap[j], k)) continue;
                int dup = 0; /* Enter as \n, \r and KEY_ENTER: one name */
                for (int q = i; q < j && !dup; q++)
                    dup = same_line(&ui_keymap[q], k) && !strcmp(ui_keymap[q].name, ui_keymap[j].name);
                if (dup) continue;
                size_t l = strlen(names);
                snprintf(names + l, sizeof names - l, "%s%s", l ? ", " : "", ui_keymap[j].name);
            }
            snprintf(buf, sizeof buf, "  %-16s %s", names, k->help);
            if (line) line(user, buf, 0);
            lines++;
        }
    }
    return lines;
}

char *ui_keymap_hints(const UiCtx *ctxs, int n, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = 0;
    for (int c = 0; c < n; c++)
        for (int i = 0; i < ui_keymap_len; i++) {
            const UiKey *e = &ui_keymap[i];
            if (e->ctx != ctxs[c] || !e->hint) continue;
            int w = snprintf(buf + k, len - k, "%s%s %s", k ? "  " : "", e->name, e->hint);
            if (w < 0 || (size_t)w >= len - k) { buf[k] = 0; return buf; }
            k += (size_t)w;
        }
    return buf;
}
