/* textinput.c -- one-line text fields and file-name completion (see
 * textinput.h). */
#include "ui/textinput.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/common.h"
#include "ui/keymap.h"

void ui_input_init(UiInput *in)
{
    memset(in, 0, sizeof *in);
    in->cap = 64;
    in->buf = ob_calloc(in->cap, 1);
}

void ui_input_free(UiInput *in)
{
    free(in->buf);
    memset(in, 0, sizeof *in);
}

static void reserve(UiInput *in, int extra)
{
    if (in->len + extra + 1 <= in->cap) return;
    while (in->len + extra + 1 > in->cap) in->cap *= 2;
    char *nb = ob_malloc(in->cap);
    memcpy(nb, in->buf, in->len + 1);
    free(in->buf);
    in->buf = nb;
}

void ui_input_set(UiInput *in, const char *text)
{
    int n = (int)strlen(text);
    in->len = 0;
    reserve(in, n);
    memcpy(in->buf, text, n + 1);
    in->len = in->cur = n;
    in->scroll = 0;
}

void ui_input_insert(UiInput *in, uint32_t cp)
{
    char enc[4];
    int n = ui_utf8_encode(cp, enc);
    reserve(in, n);
    memmove(in->buf + in->cur + n, in->buf + in->cur, in->len - in->cur + 1);
    memcpy(in->buf + in->cur, enc, n);
    in->len += n;
    in->cur += n;
}

static int prev_char(const UiInput *in, int pos)
{
    if (pos <= 0) return 0;
    pos--;
    while (pos > 0 && ((unsigned char)in->buf[pos] & 0xc0) == 0x80) pos--;
    return pos;
}

static int next_char(const UiInput *in, int pos)
{
    if (pos >= in->len) return in->len;
    uint32_t cp;
    return pos + ui_utf8_decode(in->buf + pos, &cp);
}

static void erase(UiInput *in, int a, int b)
{
    if (b <= a) return;
    memmove(in->buf + a, in->buf + b, in->len - b + 1);
    in->len -= b - a;
    if (in->cur > b) in->cur -= b - a;
    else if (in->cur > a) in->cur = a;
}

int ui_input_key(UiInput *in, int key)
{
    const UiKey *k = ui_keymap_find(UI_CTX_EDIT, key);
    if (k) {
        switch (k->action) {
        case A_ED_LEFT: in->cur = prev_char(in, in->cur); break;
        case A_ED_RIGHT: in->cur = next_char(in, in->cur); break;
        case A_ED_HOME: in->cur = 0; break;
        case A_ED_END: in->cur = in->len; break;
        case A_ED_BKSP: erase(in, prev_char(in, in->cur), in->cur); break;
        case A_ED_DEL: erase(in, in->cur, next_char(in, in->cur)); break;
        case A_ED_KILL_END: erase(in, in->cur, in->len); break;
        case A_ED_KILL_START: erase(in, 0, in->cur); break;
        case A_ED_KILL_WORD: {
            int p = in->cur;
            while (p > 0 && in->buf[p - 1] == ' ') p--;
            while (p > 0 && in->buf[p - 1] != ' ' && in->buf[p - 1] != '/') p--;
            if (p == in->cur && p > 0) p--; /* a lone separator */
            erase(in, p, in->cur);
            break;
        }
        default: return 0;
        }
        return 1;
    }
    if (UI_IS_FN(key) || key < 0x20 || key == 0x7f || key > 0x10ffff) return 0;
    ui_input_insert(in, (uint32_t)key);
    return 1;
}

void ui_input_render(UiInput *in, UiGrid *g, int x, int y, int w, int attr, int *cursor_x)
{
    if (w < 1) return;
    /* column of the cursor */
    char save = in->buf[in->cur];
    in->buf[in->cur] = 0;
    int ccol = ui_text_width(in->buf);
    in->buf[in->cur] = save;
    if (ccol < in->scroll) in->scroll = ccol;
    if (ccol >= in->scroll + w) in->scroll = ccol - w + 1;
    /* skip scroll columns */
    const char *s = in->buf;
    int col = 0;
    while (*s && col < in->scroll) {
        uint32_t cp;
        s += ui_utf8_decode(s, &cp);
        col += ui_cp_width(cp);
    }
    ui_grid_hline(g, x, y, w, ' ', attr);
    ui_grid_text(g, x, y, w, attr, s);
    if (cursor_x) *cursor_x = x + ccol - in->scroll;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int ui_complete_path(const char *path, char **completed, char *listing, size_t listing_len)
{
    *completed = NULL;
    if (listing && listing_len) listing[0] = 0;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0; /* with the slash */
    char dir[4096];
    const char *home = getenv("HOME");
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (!strncmp(path, "~/", 2) && home)
        snprintf(dir, sizeof dir, "%s/%.*s", home, (int)(dirlen - 2), path + 2);
    else snprintf(dir, sizeof dir, "%.*s", (int)dirlen, path);
    if (!dir[0]) snprintf(dir, sizeof dir, "/");
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t blen = strlen(base);
    int nmatch = 0, is_dir = 0;
    char *lcp = NULL;
    size_t used = 0;
    struct dirent *e;
    /* collect names sorted for a stable listing */
    char **names = NULL;
    int nn = 0, cn = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (e->d_name[0] == '.' && base[0] != '.') continue;
        if (strncmp(e->d_name, base, blen)) continue;
        if (nn == cn) {
            cn = cn ? cn * 2 : 16;
            char **nw = ob_malloc(sizeof(char *) * cn);
            if (names) memcpy(nw, names, sizeof(char *) * nn);
            free(names);
            names = nw;
        }
        names[nn++] = ob_strdup(e->d_name);
    }
    closedir(d);
    if (nn > 1) qsort(names, nn, sizeof(char *), cmp_names);
    for (int i = 0; i < nn; i++) {
        const char *nm = names[i];
        nmatch++;
        if (!lcp) lcp = ob_strdup(nm);
        else {
            size_t k = 0;
            while (lcp[k] && lcp[k] == nm[k]) k++;
            lcp[k] = 0;
        }
        if (listing && listing_len) {
            int w = snprintf(listing + used, listing_len - used, "%s%s", used ? "  " : "", nm);
            if (w > 0 && (size_t)w < listing_len - used) used += (size_t)w;
        }
    }
    if (nmatch == 1) {
        char full[4096 + 256];
        snprintf(full, sizeof full, "%s/%s", dir, lcp);
        struct stat st;
        is_dir = stat(full, &st) == 0 && S_ISDIR(st.st_mode);
        if (listing) listing[0] = 0;
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    if (!nmatch) return 0;
    size_t n = dirlen + strlen(lcp) + 2;
    char *out = ob_malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)dirlen, path, lcp, is_dir ? "/" : "");
    free(lcp);
    *completed = out;
    return nmatch;
}

int ui_input_complete(UiInput *in, char *listing, size_t listing_len)
{
    char *c;
    int n = ui_complete_path(in->buf, &c, listing, listing_len);
    if (n > 0) {
        ui_input_set(in, c);
        free(c);
    }
    return n;
}
