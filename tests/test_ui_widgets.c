/* test_ui_widgets.c -- the workbench widgets without a terminal: chart
 * scaling, ticks and glyphs (braille and ASCII), smoothing, histogram
 * binning and bars, the keymap (no duplicate keys, help and hints agree with
 * the table), text fields and file-name completion, word wrap, table sorting
 * and navigation, filters and mouse clicks, form validation and clicks,
 * the settings file's parser. */
#include <curses.h>
#include <locale.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ui/chart.h"
#include "ui/conf.h"
#include "ui/form.h"
#include "ui/grid.h"
#include "ui/hist.h"
#include "ui/keymap.h"
#include "ui/table.h"
#include "test.h"
#include "ui/textinput.h"

static int count_cp(const UiGrid *g, uint32_t lo, uint32_t hi)
{
    int n = 0;
    for (int i = 0; i < g->w * g->h; i++) n += g->cells[i].ch >= lo && g->cells[i].ch <= hi;
    return n;
}

static int all_ascii(const UiGrid *g)
{
    for (int i = 0; i < g->w * g->h; i++)
        if (g->cells[i].ch >= 0x80) return 0;
    return 1;
}

static void test_braille_and_ticks(void)
{
    CHECK(ui_braille(0) == 0x2800, "empty braille");
    CHECK(ui_braille(0xff) == 0x28ff, "full braille");
    unsigned all = 0;
    for (int dx = 0; dx < 2; dx++)
        for (int dy = 0; dy < 4; dy++) {
            unsigned b = ui_braille_dot(dx, dy);
            CHECK(b && !(all & b), "dot (%d,%d) has its own bit", dx, dy);
            all |= b;
        }
    CHECK(all == 0xff, "8 dots cover the byte");
    CHECK(ui_braille_dot(0, 3) == 0x40 && ui_braille_dot(1, 3) == 0x80, "bottom dots are 7 and 8");
    CHECK(ui_braille_dot(2, 0) == 0, "out of range");

    double t[16], st;
    int n = ui_chart_ticks(0, 10, 6, t, &st);
    CHECK(n == 6 && st == 2 && t[0] == 0 && t[5] == 10, "0..10 by 2: n=%d st=%g", n, st);
    n = ui_chart_ticks(0.013, 0.087, 5, t, &st);
    CHECK(n >= 2 && st == 0.02, "step 0.02, got %g", st);
    for (int i = 0; i < n; i++) CHECK(t[i] >= 0.013 - 1e-12 && t[i] <= 0.087 + 1e-12, "tick %g in range", t[i]);
    double lo = 3.2, hi = 9.7;
    ui_chart_nice_range(&lo, &hi, 5);
    CHECK(lo <= 3.2 && hi >= 9.7 && lo == 2 && hi == 10, "nice range %g..%g", lo, hi);
    lo = hi = 5;
    ui_chart_nice_range(&lo, &hi, 5);
    CHECK(lo < 5 && hi > 5, "flat range widened %g..%g", lo, hi);
    lo = 0; hi = NAN;
    ui_chart_nice_range(&lo, &hi, 5);
    CHECK(lo == 0 && hi == 1, "NaN range falls back to 0..1");

    char b[32];
    CHECK(!strcmp(ui_fmt_num(0, b, sizeof b), "0"), "0");
    CHECK(!strcmp(ui_fmt_num(1234567, b, sizeof b), "1.23M"), "1.23M: %s", b);
    CHECK(!strcmp(ui_fmt_num(25000, b, sizeof b), "25k"), "25k: %s", b);
    CHECK(!strcmp(ui_fmt_num(0.5, b, sizeof b), "0.5"), "0.5: %s", b);
    CHECK(!strcmp(ui_fmt_num(-2.5, b, sizeof b), "-2.5"), "-2.5: %s", b);
    CHECK(!strcmp(ui_fmt_num(NAN, b, sizeof b), "nan"), "nan");
}

static void test_smooth(void)
{
    double in[5] = {1, 1, 1, 1, 1}, out[5];
    ui_chart_smooth(in, out, 5, 0.9);
    for (int i = 0; i < 5; i++) CHECK_NEAR(out[i], 1, 1e-12, "debiased EMA of a constant");
    double step[4] = {0, 0, 10, 10}, o2[4];
    ui_chart_smooth(step, o2, 4, 0.5);
    CHECK(o2[2] > 0 && o2[2] < 10 && o2[3] > o2[2], "EMA lags a step: %g %g", o2[2], o2[3]);
    ui_chart_smooth(step, o2, 4, 0);
    CHECK(o2[2] == 10, "weight 0 = no smoothing");
}

static void test_chart_render(void)
{
    double y[50], x[50];
    for (int i = 0; i < 50; i++) { x[i] = i * 10; y[i] = 10.0 / (1 + i); }
    UiChart c = {.title = "loss", .xlabel = "step", .nseries = 1};
    c.series[0] = (UiSeries){"total", x, y, 50, 0};
    UiGrid g;
    ui_grid_init(&g, 60, 14, 0);
    ui_chart_render(&c, &g, 0, 0, 60, 14);
    static const char *const drawn[][2] = {
        {"loss", "title drawn"}, {"total", "legend drawn"}, {"step", "x label drawn"}, {"10", "top y label (10) drawn"}};
    for (size_t i = 0; i < sizeof drawn / sizeof drawn[0]; i++) CHECK(ui_grid_contains(&g, drawn[i][0]), "%s", drawn[i][1]);
    CHECK(ui_grid_contains(&g, "490") || ui_grid_contains(&g, "400"), "x tick labels drawn");
    CHECK(count_cp(&g, 0x2801, 0x28ff) > 20, "braille dots drawn: %d", count_cp(&g, 0x2801, 0x28ff));
    CHECK(count_cp(&g, 0x2502, 0x2502) > 0 && count_cp(&g, 0x2500, 0x2500) > 0, "box-drawing axes");
    /* the first point (max) is at the top-left of the plot, the last low */
    int top_row = -1;
    for (int r = 1; r < g.h && top_row < 0; r++) /* row 0: title and legend */
        for (int col = 0; col < g.w; col++) {
            uint32_t ch = ui_grid_at(&g, col, r)->ch;
            if (ch > 0x2800 && ch <= 0x28ff) { top_row = r; break; }
        }
    CHECK(top_row == 1, "maximum plotted on the first plot row, got %d", top_row);

    /* ASCII mode draws ASCII only */
    UiGrid ga;
    ui_grid_init(&ga, 60, 14, 1);
    ui_chart_render(&c, &ga, 0, 0, 60, 14);
    CHECK(all_ascii(&ga), "--ascii chart is pure ASCII");
    CHECK(count_cp(&ga, '*', '*') > 10, "ASCII marks drawn");

    /* log scale: labels are powers of the data, values <= 0 skipped */
    double ly[4] = {1000, 100, 0, 1};
    c.series[0] = (UiSeries){"nll", NULL, ly, 4, 0};
    c.logy = 1;
    ui_grid_clear(&g);
    ui_chart_render(&c, &g, 0, 0, 60, 14);
    CHECK(ui_grid_contains(&g, "[log]"), "log marker");
    CHECK(ui_grid_contains(&g, "1000") && ui_grid_contains(&g, "100") && ui_grid_contains(&g, "  10"), "decade labels");
    c.logy = 0;

    /* empty data and tiny rectangles */
    UiChart e = {.title = "empty", .nseries = 1};
    e.series[0] = (UiSeries){"x", NULL, NULL, 0, 0};
    ui_grid_clear(&g);
    ui_chart_render(&e, &g, 0, 0, 60, 14);
    CHECK(ui_grid_contains(&g, "no data yet"), "empty chart says so");
    ui_grid_clear(&g);
    ui_chart_render(&c, &g, 0, 0, 3, 2);
    ui_chart_render(&c, &g, 58, 12, 10, 10); /* partly outside: clipped */
    int outside = 0;
    for (int r = 2; r < 12; r++)
        for (int col = 3; col < 58; col++) outside += ui_grid_at(&g, col, r)->ch != ' ';
    CHECK(outside == 0, "small charts stay in their rectangles: %d cells", outside);

    /* two series: the second in its own attribute; points series */
    double y2[3] = {5, 6, 7};
    c.nseries = 2;
    c.series[0] = (UiSeries){"train", NULL, y, 50, 0};
    c.series[1] = (UiSeries){"eval", NULL, y2, 3, 1};
    ui_grid_clear(&g);
    ui_chart_render(&c, &g, 0, 0, 60, 14);
    int s2 = 0;
    for (int i = 0; i < g.w * g.h; i++) s2 += g.cells[i].attr == UI_A_S2 && g.cells[i].ch >= 0x2800;
    CHECK(s2 >= 3, "eval points drawn in series-2 colour: %d", s2);
    ui_grid_free(&g);
    ui_grid_free(&ga);
}

static void test_hist(void)
{
    float v[] = {0, 0.1f, 0.5f, 0.99f, 1.0f, -1, 2, NAN, INFINITY};
    long counts[8];
    long k = ui_hist_bin(v, 9, 4, 0, 1, counts);
    CHECK(k == 5, "5 values in [0,1], got %ld", k);
    CHECK(counts[0] == 2 && counts[1] == 0 && counts[2] == 1 && counts[3] == 2, "bins %ld %ld %ld %ld", counts[0], counts[1],
          counts[2], counts[3]);
    double lo, hi;
    ui_hist_range(v, 9, &lo, &hi);
    CHECK(lo == -1 && hi == 2, "range skips NaN/inf: %g %g", lo, hi);
    float same[3] = {3, 3, 3};
    k = ui_hist_bin(same, 3, 5, 3, 3, counts);
    CHECK(k == 3 && counts[0] == 3, "zero-width range: all in bin 0");

    long c8[8] = {0, 1, 2, 4, 8, 4, 2, 100};
    UiHist h = {"|W|", c8, 8, -1, 1, 0};
    UiGrid g;
    ui_grid_init(&g, 40, 10, 0);
    ui_hist_render(&h, &g, 0, 0, 40, 10);
    CHECK(ui_grid_contains(&g, "|W|"), "title");
    CHECK(ui_grid_contains(&g, "100"), "peak count label");
    CHECK(ui_grid_contains(&g, "-1"), "low label");
    CHECK(count_cp(&g, 0x2588, 0x2588) >= 7, "full blocks of the tall bin");
    CHECK(count_cp(&g, 0x2581, 0x2588) > 8, "every nonzero bin visible");
    /* the empty first bin draws nothing in its columns */
    int px = 8, cols = ui_hist_plot_width(40) / 8;
    int empty = 1;
    for (int r = 1; r < 8; r++)
        for (int c = px; c < px + cols; c++) empty &= ui_grid_at(&g, c, r)->ch == ' ';
    CHECK(empty, "empty bin is blank");
    UiGrid ga;
    ui_grid_init(&ga, 40, 10, 1);
    h.logcount = 1;
    ui_hist_render(&h, &ga, 0, 0, 40, 10);
    CHECK(all_ascii(&ga) && count_cp(&ga, '#', '#') > 0, "ASCII bars");
    ui_grid_free(&g);
    ui_grid_free(&ga);
}

typedef struct { char text[16384]; int lines; } Collect;
static void collect(void *u, const char *t, int heading)
{
    Collect *c = u;
    size_t l = strlen(c->text);
    snprintf(c->text + l, sizeof c->text - l, "%s%s\n", heading ? "# " : "", t);
    c->lines++;
}

static void test_keymap(void)
{
    /* no key twice in one context */
    for (int i = 0; i < ui_keymap_len; i++)
        for (int j = i + 1; j < ui_keymap_len; j++)
            CHECK(!(ui_keymap[i].ctx == ui_keymap[j].ctx && ui_keymap[i].key == ui_keymap[j].key),
                  "%s bound twice in %s", ui_keymap[i].name, ui_ctx_name(ui_keymap[i].ctx));
    /* every entry: found by lookup, named, described, and in the help */
    UiCtx all[UI_CTX_COUNT];
    for (int c = 0; c < UI_CTX_COUNT; c++) all[c] = (UiCtx)c;
    Collect col = {"", 0};
    int lines = ui_keymap_help(all, UI_CTX_COUNT, collect, &col);
    CHECK(lines == col.lines && lines > 20, "help lines %d", lines);
    for (int i = 0; i < ui_keymap_len; i++) {
        const UiKey *k = &ui_keymap[i];
        CHECK(ui_keymap_find(k->ctx, k->key) == k, "lookup finds %s", k->name);
        CHECK(k->name && k->name[0] && k->help && k->help[0], "entry %d named and described", i);
        CHECK(k->action != A_NONE, "%s has an action", k->name);
        CHECK(strstr(col.text, k->help) != NULL, "help has '%s'", k->help);
        /* the help of this entry's context has one line with its key and text */
        Collect one = {"", 0};
        ui_keymap_help(&k->ctx, 1, collect, &one);
        int named = 0;
        for (char *ln = one.text; ln && *ln && !named;) {
            char *e = strchr(ln, '\n');
            *e = 0;
            named = strstr(ln, k->help) && strstr(ln, k->name);
            ln = e + 1;
        }
        CHECK(named, "help line of '%s' names key %s", k->help, k->name);
    }
    /* help headings name contexts */
    CHECK(strstr(col.text, "# Chat input line") != NULL, "chat input heading");
    /* lookup order: the first context wins, no fallback outside the list */
    UiCtx order[2] = {UI_CTX_PROMPT, UI_CTX_GLOBAL};
    const UiKey *k = ui_keymap_lookup(order, 2, '\t');
    CHECK(k && k->action == A_ED_COMPLETE, "Tab completes in a prompt");
    k = ui_keymap_lookup(order + 1, 1, '\t');
    CHECK(k && k->action == A_NEXT_SCREEN, "Tab switches screens elsewhere");
    UiCtx typing = UI_CTX_CHAT_INPUT;
    CHECK(ui_keymap_lookup(&typing, 1, 'q') == NULL, "q is text while typing");
    CHECK(ui_keymap_find(UI_CTX_ANYWHERE, UI_FN(KEY_F(10)))->action == A_QUIT, "F10 quits from anywhere");
    CHECK(ui_keymap_find(UI_CTX_CHAT_INPUT, UI_KEY_ESC)->action == A_ESCAPE, "Esc in the input line");
    /* number keys switch screens */
    const UiKey *one = ui_keymap_find(UI_CTX_GLOBAL, '1');
    CHECK(one && one->action == A_SCREEN && one->arg == 1, "1 = Model");
    char hints[512];
    UiCtx hc[2] = {UI_CTX_CHAT_INPUT, UI_CTX_ANYWHERE};
    ui_keymap_hints(hc, 2, hints, sizeof hints);
    CHECK(strstr(hints, "Enter send") && strstr(hints, "F10 quit") && strstr(hints, "Esc"), "hints: %s", hints);
    char tiny[12];
    ui_keymap_hints(hc, 2, tiny, sizeof tiny);
    CHECK(strlen(tiny) < sizeof tiny, "hints truncate safely");
}

static void test_input(void)
{
    UiInput in;
    ui_input_init(&in);
    const char *s = "héllo wörld";
    for (const char *p = s; *p;) {
        uint32_t cp;
        p += ui_utf8_decode(p, &cp);
        CHECK(ui_input_key(&in, (int)cp), "typed");
    }
    CHECK(!strcmp(in.buf, s), "typed text: %s", in.buf);
    ui_input_key(&in, UI_CTRL('w'));
    CHECK(!strcmp(in.buf, "héllo "), "^W: '%s'", in.buf);
    ui_input_key(&in, UI_FN(KEY_BACKSPACE));
    ui_input_key(&in, UI_FN(KEY_LEFT));
    ui_input_key(&in, UI_FN(KEY_LEFT));
    ui_input_key(&in, UI_FN(KEY_LEFT));
    ui_input_key(&in, UI_FN(KEY_LEFT));
    CHECK(in.cur == 1, "cursor over a 2-byte char: %d", in.cur);
    ui_input_key(&in, UI_FN(KEY_DC));
    CHECK(!strcmp(in.buf, "hllo"), "Delete removes é: '%s'", in.buf);
    ui_input_key(&in, UI_CTRL('k'));
    CHECK(!strcmp(in.buf, "h"), "^K");
    ui_input_key(&in, UI_CTRL('a'));
    ui_input_key(&in, 'x');
    CHECK(!strcmp(in.buf, "xh"), "^A then insert");
    ui_input_key(&in, UI_CTRL('e'));
    ui_input_key(&in, UI_CTRL('u'));
    CHECK(in.len == 0 && in.cur == 0, "^U clears");
    CHECK(ui_input_key(&in, UI_CTRL('c')) == 0 && in.len == 0, "control keys are not typed");
    CHECK(ui_input_key(&in, UI_FN(KEY_F(5))) == 0, "F5 is not an edit key");
    CHECK(ui_input_key(&in, UI_KEY_ESC) == 0, "Esc is not typed");
    /* horizontal scroll keeps the cursor visible */
    for (int i = 0; i < 30; i++) ui_input_key(&in, 'a' + i % 26);
    UiGrid g;
    ui_grid_init(&g, 10, 1, 0);
    int cx;
    ui_input_render(&in, &g, 0, 0, 10, UI_A_INPUT, &cx);
    CHECK(cx >= 0 && cx < 10, "cursor inside the field: %d", cx);
    ui_grid_free(&g);
    ui_input_free(&in);
}

static void test_complete(void)
{
    char dir[] = "/tmp/onebit-ui-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char p[512];
    snprintf(p, sizeof p, "%s/stories260K.bin", dir); fclose(fopen(p, "w"));
    snprintf(p, sizeof p, "%s/stories15M.bin", dir); fclose(fopen(p, "w"));
    snprintf(p, sizeof p, "%s/tok512.bin", dir); fclose(fopen(p, "w"));
    snprintf(p, sizeof p, "%s/models", dir); mkdir(p, 0700);
    char *out, listing[256];
    snprintf(p, sizeof p, "%s/st", dir);
    int n = ui_complete_path(p, &out, listing, sizeof listing);
    char want[512];
    snprintf(want, sizeof want, "%s/stories", dir);
    CHECK(n == 2 && !strcmp(out, want), "common prefix: %d %s", n, out);
    CHECK(strstr(listing, "stories15M.bin") && strstr(listing, "stories260K.bin"), "listing: %s", listing);
    free(out);
    snprintf(p, sizeof p, "%s/to", dir);
    n = ui_complete_path(p, &out, listing, sizeof listing);
    snprintf(want, sizeof want, "%s/tok512.bin", dir);
    CHECK(n == 1 && !strcmp(out, want) && !listing[0], "unique: %s", out);
    free(out);
    snprintf(p, sizeof p, "%s/mo", dir);
    n = ui_complete_path(p, &out, listing, sizeof listing);
    snprintf(want, sizeof want, "%s/models/", dir);
    CHECK(n == 1 && !strcmp(out, want), "directory gets a slash: %s", out);
    free(out);
    snprintf(p, sizeof p, "%s/zz", dir);
    CHECK(ui_complete_path(p, &out, listing, sizeof listing) == 0 && !out, "no match");
    CHECK(ui_complete_path("/nonexistent-dir/x", &out, listing, sizeof listing) == 0, "missing dir");
    UiInput in;
    ui_input_init(&in);
    snprintf(p, sizeof p, "%s/tok", dir);
    ui_input_set(&in, p);
    CHECK(ui_input_complete(&in, listing, sizeof listing) == 1 && strstr(in.buf, "tok512.bin") && in.cur == in.len,
          "field completion: %s", in.buf);
    ui_input_free(&in);
    CHECK(test_rmtree(dir) == 0, "cleanup");
}

static char wl[16][64];
static int nwl;
static void wrap_cb(void *u, const char *s, int len)
{
    (void)u;
    if (nwl < 16) snprintf(wl[nwl], 64, "%.*s", len, s);
    nwl++;
}

static void test_wrap(void)
{
    nwl = 0;
    int n = ui_wrap("Once upon a time there was a cat", 10, wrap_cb, NULL);
    CHECK(n == 4 && nwl == 4, "4 lines, got %d", n);
    CHECK(!strcmp(wl[0], "Once upon") && !strcmp(wl[1], "a time") && !strcmp(wl[3], "a cat"), "'%s' '%s' '%s' '%s'", wl[0], wl[1],
          wl[2], wl[3]);
    nwl = 0;
    n = ui_wrap("abcdefghijklmnop", 5, wrap_cb, NULL);
    CHECK(n == 4 && !strcmp(wl[0], "abcde") && !strcmp(wl[3], "p"), "hard break");
    nwl = 0;
    n = ui_wrap("a\n\nb", 10, wrap_cb, NULL);
    CHECK(n == 3 && !strcmp(wl[1], ""), "blank line kept");
    CHECK(ui_wrap("", 10, NULL, NULL) == 1, "empty = one line");
    nwl = 0;
    ui_wrap("ääää bb", 4, wrap_cb, NULL);
    CHECK(!strcmp(wl[0], "ääää") && !strcmp(wl[1], "bb"), "wraps by columns, not bytes");
    CHECK(ui_text_width("äb") == 2, "width");
}

static void test_table(void)
{
    static const UiColumn cols[] = {{"name", 8, 0}, {"err", 8, 1}};
    UiTable t;
    ui_table_init(&t, cols, 2);
    const char *names[] = {"wq", "wk", "wv", "wo"};
    double errs[] = {0.3, 0.1, 0.4, 0.2};
    for (int i = 0; i < 4; i++) {
        int r = ui_table_add(&t);
        ui_table_set(&t, r, 0, names[i], NAN);
        ui_table_setf(&t, r, 1, errs[i], "%.2f", errs[i]);
    }
    ui_table_sort(&t, 1, 0);
    CHECK(t.order[0] == 1 && t.order[3] == 2, "ascending by error");
    ui_table_sort(&t, 1, 1);
    CHECK(t.order[0] == 2 && t.order[3] == 1, "descending");
    ui_table_sort(&t, 0, 0);
    CHECK(!strcmp(ui_table_get(&t, t.order[0], 0), "wk") && !strcmp(ui_table_get(&t, t.order[3], 0), "wv"), "by name");
    ui_table_nav(&t, A_END);
    CHECK(ui_table_selected(&t) == 2, "End selects the last (wv)");
    ui_table_sort(&t, 1, 0);
    CHECK(ui_table_selected(&t) == 2, "selection follows the row through a sort");
    ui_table_nav(&t, A_DOWN);
    CHECK(ui_table_selected(&t) == 2, "Down at the bottom stays");
    UiGrid g;
    ui_grid_init(&g, 20, 3, 1);
    ui_table_render(&t, &g, 0, 0, 20, 3, 1);
    CHECK(ui_grid_contains(&g, "err^"), "sorted column marked: ascii");
    CHECK(ui_grid_contains(&g, "0.40"), "selection scrolled into view");
    CHECK(!ui_grid_contains(&g, "0.10"), "rows above scrolled out");
    ui_table_nav(&t, A_HOME);
    CHECK(ui_table_selected(&t) == 1, "Home");
    /* the filter: rows with a cell that contains the text, any case */
    ui_table_filter(&t, "W");
    CHECK(t.nshow == 4, "every name has a w");
    ui_table_filter(&t, "0.4");
    CHECK(t.nshow == 1 && ui_table_selected(&t) == 2, "one row has 0.40: selected");
    ui_table_render(&t, &g, 0, 0, 20, 3, 1);
    CHECK(ui_grid_contains(&g, "wv") && !ui_grid_contains(&g, "wq"), "only the match drawn");
    ui_table_filter(&t, "nothing");
    CHECK(t.nshow == 0 && ui_table_selected(&t) == -1 && ui_table_nav(&t, A_DOWN) == 1, "no match: nothing selected");
    int r = ui_table_add(&t);
    CHECK(r == 4 && t.nshow == 1, "a row added shows until the next sort filters");
    ui_table_sort(&t, t.sort_col, t.sort_desc);
    CHECK(t.nshow == 0, "the sort filters it");
    ui_table_filter(&t, "");
    CHECK(t.nshow == 5, "an empty filter shows all");
    /* clicks: the header row sorts, a row selects, the selected row again */
    ui_grid_free(&g);
    ui_grid_init(&g, 20, 6, 1);
    ui_table_render(&t, &g, 0, 1, 20, 5, 1); /* header at y 1: rows 2.. */
    CHECK(ui_table_click(&t, 2, 1) == UI_TABLE_HEADER && t.sort_col == 0 && !t.sort_desc, "title 'name' sorts by name");
    CHECK(ui_table_click(&t, 2, 1) == UI_TABLE_HEADER && t.sort_col == 0 && t.sort_desc, "again: reversed");
    CHECK(ui_table_click(&t, 12, 1) == UI_TABLE_HEADER && t.sort_col == 1, "title 'err' sorts by it");
    ui_table_render(&t, &g, 0, 1, 20, 5, 1);
    CHECK(ui_table_click(&t, 3, 3) == UI_TABLE_ROW && ui_table_selected(&t) == t.order[1], "a row selects it");
    CHECK(ui_table_click(&t, 3, 3) == UI_TABLE_ROW_AGAIN, "the selected row again: Enter");
    CHECK(ui_table_click(&t, 3, 0) == UI_TABLE_MISS && ui_table_click(&t, 25, 3) == UI_TABLE_MISS, "outside: a miss");
    ui_table_filter(&t, "wq");
    ui_table_render(&t, &g, 0, 1, 20, 5, 1);
    CHECK(ui_table_click(&t, 3, 4) == UI_TABLE_MISS, "below the shown rows: a miss");
    ui_grid_free(&g);
    ui_table_free(&t);
    UiTable e;
    ui_table_init(&e, cols, 2);
    CHECK(ui_table_selected(&e) == -1 && ui_table_nav(&e, A_DOWN) == 1 && ui_table_selected(&e) == -1, "empty table");
    ui_table_free(&e);
}

static void test_grid_helpers(void)
{
    CHECK(ui_text_find("layers.0.WQ", "wq") && ui_text_find("abc", "") && !ui_text_find("abc", "abcd"),
          "ui_text_find: without case, empty everywhere, longer never");
    CHECK(ui_text_find("xxab", "ab") && !ui_text_find("", "a"), "at the end; not in empty");
    UiGrid g;
    ui_grid_init(&g, 10, 4, 1);
    ui_grid_text(&g, 0, 1, 10, UI_A_NORMAL, "junkjunkju");
    ui_grid_box(&g, 1, 0, 6, 3);
    char row[64];
    CHECK(!strcmp(ui_grid_row(&g, 0, row, sizeof row), " +----+   "), "box top: '%s'", row);
    CHECK(!strcmp(ui_grid_row(&g, 1, row, sizeof row), "j|    |kju"), "box sides, inside cleared: '%s'", row);
    ui_grid_free(&g);
}

/* the settings file: key = value, comments, bad lines skipped and named,
 * later keys win, written back and read again the same */
static void test_conf(void)
{
    UiConf c = {0};
    char err[256] = "";
    int bad = ui_conf_parse(&c, "# a comment\n sort.runs = best ppl desc \n\ntheme=mono\r\nthis line is junk\n= no key\n"
                                "chat.temperature = 0.5\nchat.temperature = 0.7\nempty =\nlast=1", err);
    CHECK(bad == 2 && strstr(err, "line 5"), "two bad lines, the first named: %d %s", bad, err);
    CHECK(!strcmp(ui_conf_get(&c, "sort.runs"), "best ppl desc"), "spaces trimmed, inner kept");
    CHECK(!strcmp(ui_conf_get(&c, "theme"), "mono"), "no spaces, CRLF");
    CHECK(!strcmp(ui_conf_get(&c, "chat.temperature"), "0.7"), "the later wins");
    CHECK(!strcmp(ui_conf_get(&c, "empty"), "") && !strcmp(ui_conf_get(&c, "last"), "1"), "empty value; no final newline");
    CHECK(ui_conf_get(&c, "nothing") == NULL, "unknown: NULL");
    CHECK(ui_conf_set(&c, "theme", "light") == 1 && ui_conf_set(&c, "theme", "light") == 0, "set says when it changed");
    char dir[] = "/tmp/test_conf_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    char path[256];
    snprintf(path, sizeof path, "%s/sub/dir/config", dir);
    CHECK(ui_conf_save(&c, path, err) == 0, "saved, directories made: %s", err);
    UiConf d = {0};
    CHECK(ui_conf_load(&d, path, err) == 0 && d.n == c.n, "read back: %d of %d", d.n, c.n);
    for (int i = 0; i < c.n && i < d.n; i++)
        CHECK(!strcmp(ui_conf_get(&d, c.keys[i]), c.vals[i]), "%s read back", c.keys[i]);
    ui_conf_free(&d);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none", dir);
    CHECK(ui_conf_load(&d, missing, err) == 0 && d.n == 0, "a missing file: no settings, no error");
    FILE *f = fopen(path, "wb");
    fwrite("a = 1\n\0\x01", 1, 9, f);
    fclose(f);
    CHECK(ui_conf_load(&d, path, err) < 0 && strstr(err, "not a text file"), "binary refused: %s", err);
    ui_conf_free(&d);
    CHECK(ui_conf_load(&d, dir, err) < 0, "a directory cannot be read: %s", err);
    ui_conf_free(&d);
    snprintf(missing, sizeof missing, "%s/sub/dir/config/below", dir);
    CHECK(ui_conf_save(&c, missing, err) < 0, "cannot write below a file: %s", err);
    /* the XDG rules are file_xdg_path's (test_common): here the names */
    setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
    char *p = ui_conf_path(err);
    CHECK(p && !strcmp(p, "/x/cfg/onebit-tui/config"), "XDG_CONFIG_HOME: %s", p ? p : err);
    free(p);
    unsetenv("XDG_CONFIG_HOME");
    setenv("HOME", "/home/u", 1);
    p = ui_conf_path(err);
    CHECK(p && !strcmp(p, "/home/u/.config/onebit-tui/config"), "HOME: %s", p ? p : err);
    free(p);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    CHECK(system(path) == 0, "clean up");
    ui_conf_free(&c);
}

static void test_form(void)
{
    UiForm f;
    ui_form_init(&f, "Sampling");
    ui_form_add(&f, "temperature", UI_F_NUM, "0.8", 0, 10, "t");
    ui_form_add(&f, "tokens", UI_F_INT, "256", 1, 1000, "n");
    CHECK(ui_form_key(&f, '\n') == UI_FORM_ACCEPT, "valid form accepts");
    double v;
    CHECK(ui_form_num(&f, 0, &v) == 0 && v == 0.8, "temperature");
    ui_form_key(&f, UI_FN(KEY_DOWN));
    CHECK(f.cur == 1, "Down moves");
    ui_form_key(&f, UI_CTRL('u'));
    ui_form_key(&f, 'x');
    CHECK(ui_form_key(&f, '\n') == UI_FORM_CONTINUE && strstr(f.err, "tokens"), "bad int refused: %s", f.err);
    ui_form_key(&f, UI_CTRL('u'));
    ui_form_key(&f, '5');
    ui_form_key(&f, '0');
    ui_form_key(&f, '0');
    ui_form_key(&f, '0');
    CHECK(ui_form_key(&f, '\n') == UI_FORM_CONTINUE, "out of bounds refused");
    ui_form_key(&f, UI_FN(KEY_BACKSPACE));
    CHECK(ui_form_key(&f, '\n') == UI_FORM_ACCEPT && ui_form_num(&f, 1, &v) == 0 && v == 500, "500 accepted");
    f.cur = 0;
    ui_form_key(&f, UI_CTRL('u'));
    ui_form_key(&f, 'n'); ui_form_key(&f, 'a'); ui_form_key(&f, 'n');
    CHECK(ui_form_key(&f, '\n') == UI_FORM_CONTINUE, "nan refused");
    CHECK(ui_form_key(&f, UI_KEY_ESC) == UI_FORM_CANCEL, "Esc cancels");
    UiGrid g;
    ui_grid_init(&g, 80, 20, 0);
    int cx = -1, cy = -1;
    ui_form_render(&f, &g, &cx, &cy);
    CHECK(ui_grid_contains(&g, "Sampling") && ui_grid_contains(&g, "temperature") && cx >= 0 && cy >= 0, "form drawn");
    CHECK(ui_grid_contains(&g, "Enter accept"), "form hints from the keymap");
    CHECK(ui_form_click(&f, cy + 1) && f.cur == 1, "a click on the next field's row focuses it");
    CHECK(!ui_form_click(&f, 0) && f.cur == 1, "a click on the border does not");
    ui_grid_free(&g);
    ui_form_free(&f);

    /* more fields than rows (the New-run form at 64x18: a 15-line body):
     * the form scrolls to keep the current field in view */
    ui_form_init(&f, "Long");
    char label[16];
    for (int i = 0; i < 15; i++) {
        snprintf(label, sizeof label, "field-%02d", i);
        ui_form_add(&f, label, UI_F_TEXT, "", 0, 0, "h");
    }
    ui_grid_init(&g, 64, 15, 0);
    ui_form_render(&f, &g, &cx, &cy);
    CHECK(ui_grid_contains(&g, "field-00") && !ui_grid_contains(&g, "field-14") && ui_grid_contains(&g, "fields 1-10 of 15"),
          "a long form shows its first fields and says so");
    for (int i = 0; i < 14; i++) ui_form_key(&f, UI_FN(KEY_DOWN));
    ui_grid_clear(&g);
    ui_form_render(&f, &g, &cx, &cy);
    CHECK(f.cur == 14 && ui_grid_contains(&g, "field-14") && !ui_grid_contains(&g, "field-00") &&
              ui_grid_contains(&g, "fields 6-15 of 15") && cy > 0 && cy < 15,
          "the last field scrolls into view, the cursor on it (row %d)", cy);
    ui_form_key(&f, UI_FN(KEY_DOWN)); /* wraps to the first */
    ui_grid_clear(&g);
    ui_form_render(&f, &g, &cx, &cy);
    CHECK(f.cur == 0 && ui_grid_contains(&g, "field-00") && ui_grid_contains(&g, "fields 1-10 of 15"), "and back to the top");
    ui_grid_free(&g);
    ui_form_free(&f);
}

static void test_grid(void)
{
    UiGrid g;
    ui_grid_init(&g, 6, 2, 0);
    CHECK(ui_grid_text(&g, 0, 0, -1, 0, "ab\tc") == 4, "control chars shown as ?");
    char row[64];
    CHECK(!strcmp(ui_grid_row(&g, 0, row, sizeof row), "ab?c  "), "row: '%s'", row);
    CHECK(ui_grid_text(&g, 4, 1, -1, 0, "xyz") == 2, "clipped at the edge");
    CHECK(ui_grid_text(&g, 5, 1, -1, 0, "\xe4\xb8\xad") == 0, "a wide char that does not fit is not drawn");
    ui_grid_text(&g, 0, 1, -1, 0, "\xe4\xb8\xad");
    CHECK(ui_grid_at(&g, 1, 1)->ch == UI_WIDE_CONT, "wide char takes two cells");
    uint32_t cp;
    CHECK(ui_utf8_decode("\xff", &cp) == 1 && cp == 0xfffd, "invalid byte");
    CHECK(ui_utf8_decode("\xc3", &cp) == 1 && cp == 0xfffd, "truncated sequence");
    CHECK(ui_utf8_decode("\xc0\x80", &cp) == 2 && cp == 0xfffd, "overlong");
    ui_grid_put(&g, -1, 0, 'x', 0);
    ui_grid_put(&g, 0, 9, 'x', 0);
    CHECK(ui_grid_at(&g, 6, 0) == NULL, "out of bounds");
    ui_grid_free(&g);
}

/* the man page's KEYS section lists every key of the keymap with its text */
static void test_man_keys(void)
{
    const char *src = getenv("ONEBIT_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/man/onebit-tui.1", src && *src ? src : ".");
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "open %s", path);
    if (!f) return;
    static char raw[1 << 18], man[1 << 18];
    size_t n = fread(raw, 1, sizeof raw - 1, f);
    fclose(f);
    raw[n] = 0;
    size_t k = 0; /* undo the troff escapes the page uses in KEYS */
    for (size_t i = 0; i < n && k < sizeof man - 1; i++) {
        if (raw[i] == '\\' && raw[i + 1] == '-') { man[k++] = '-'; i++; }
        else if (raw[i] == '\\' && raw[i + 1] == 'e') { man[k++] = '\\'; i++; }
        else if (!strncmp(raw + i, "\\(aq", 4)) { man[k++] = '\''; i += 3; }
        else man[k++] = raw[i];
    }
    man[k] = 0;
    const char *keys = strstr(man, "\n.SH KEYS\n"), *end = keys ? strstr(keys + 1, "\n.SH ") : NULL;
    CHECK(keys && end, "the man page has a KEYS section");
    if (!keys || !end) return;
    for (int i = 0; i < ui_keymap_len; i++) {
        const UiKey *e = &ui_keymap[i];
        /* a ".SS <context>" heading, then ".B <names>" with this name and the help below it */
        char head[128];
        snprintf(head, sizeof head, ".SS \"%s\"", ui_ctx_name(e->ctx));
        const char *h = strstr(keys, head);
        CHECK(h && h < end, "man KEYS has the context '%s'", ui_ctx_name(e->ctx));
        if (!h || h >= end) continue;
        const char *next = strstr(h + 1, "\n.SS ");
        if (!next || next > end) next = end;
        int found = 0;
        for (const char *p = strstr(h, "\n.B "); p && p < next && !found; p = strstr(p + 1, "\n.B ")) {
            const char *eol = strchr(p + 4, '\n');
            char names[160];
            snprintf(names, sizeof names, "%.*s", (int)(eol - p - 4), p + 4);
            int named = 0;
            for (char *tok = strtok(names, ","); tok; tok = strtok(NULL, ",")) {
                while (*tok == ' ') tok++;
                named |= !strcmp(tok, e->name);
            }
            found = named && !strncmp(eol + 1, e->help, strlen(e->help));
        }
        CHECK(found, "man KEYS lists %s in '%s' as '%s'", e->name, ui_ctx_name(e->ctx), e->help);
    }
}

int main(void)
{
    setlocale(LC_ALL, "C.UTF-8");
    test_grid();
    test_braille_and_ticks();
    test_smooth();
    test_chart_render();
    test_hist();
    test_keymap();
    test_input();
    test_complete();
    test_wrap();
    test_table();
    test_grid_helpers();
    test_conf();
    test_form();
    test_man_keys();
    return test_done("test_ui_widgets");
}
