/* conf.c -- the workbench's settings file (see conf.h). */
#include "ui/conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/common.h"
#include "base/file.h"

void ui_conf_free(UiConf *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->keys[i]);
        free(c->vals[i]);
    }
    free(c->keys);
    free(c->vals);
    memset(c, 0, sizeof *c);
}

const char *ui_conf_get(const UiConf *c, const char *key)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->keys[i], key)) return c->vals[i];
    return NULL;
}

int ui_conf_set(UiConf *c, const char *key, const char *val)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->keys[i], key)) {
            if (!strcmp(c->vals[i], val)) return 0;
            free(c->vals[i]);
            c->vals[i] = ob_strdup(val);
            return 1;
        }
    int cap = c->cap;
    c->keys = ob_grow(c->keys, (size_t)c->n, &cap, 8, sizeof(char *));
    c->vals = ob_grow(c->vals, (size_t)c->n, &c->cap, 8, sizeof(char *));
    c->keys[c->n] = ob_strdup(key);
    c->vals[c->n++] = ob_strdup(val);
    return 1;
}

/* s[0..n) without blanks at either end, as a new string */
static char *trimmed(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) { s++; n--; }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    char *r = ob_malloc(n + 1);
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

int ui_conf_parse(UiConf *c, const char *text, char *err)
{
    int bad = 0, lineno = 0;
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        lineno++;
        char *line = trimmed(p, len);
        const char *eq = strchr(line, '=');
        if (line[0] && line[0] != '#') {
            char *k = eq ? trimmed(line, (size_t)(eq - line)) : NULL;
            if (!k || !k[0] || strpbrk(k, " \t")) {
                if (!bad++) ob_seterr(err, "line %d is not 'key = value': %.80s", lineno, line);
            } else {
                char *v = trimmed(eq + 1, strlen(eq + 1));
                ui_conf_set(c, k, v);
                free(v);
            }
            free(k);
        }
        free(line);
        p += len + (end != NULL);
    }
    return bad;
}

char *ui_conf_text(const UiConf *c)
{
    ObBuf b = {0};
    ob_buf_printf(&b, "# onebit-tui settings: key = value (written by the workbench)\n");
    for (int i = 0; i < c->n; i++) ob_buf_printf(&b, "%s = %s\n", c->keys[i], c->vals[i]);
    return b.s;
}

char *ui_conf_path(char *err)
{
    return file_xdg_path("XDG_CONFIG_HOME", ".config", "onebit-tui/config", err);
}

int ui_conf_load(UiConf *c, const char *path, char *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        ob_seterr(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    ObBuf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.n < (1 << 20)) ob_buf_put(&b, chunk, n);
    int rd = ferror(f);
    fclose(f);
    if (rd) {
        ob_seterr(err, "%s: read error", path);
        free(b.s);
        return -1;
    }
    if (b.s && memchr(b.s, 0, b.n)) {
        ob_seterr(err, "%s: not a text file", path);
        free(b.s);
        return -1;
    }
    int r = b.s ? ui_conf_parse(c, b.s, err) : 0;
    free(b.s);
    return r;
}

/* mkdir -p of path's directory */
static int make_dirs(const char *path, char *err)
{
    char *d = ob_strdup(path);
    for (char *s = strchr(d + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        if (mkdir(d, 0755) && errno != EEXIST) {
            ob_seterr(err, "cannot create %s: %s", d, strerror(errno));
            free(d);
            return -1;
        }
        *s = '/';
    }
    free(d);
    return 0;
}

int ui_conf_save(const UiConf *c, const char *path, char *err)
{
    if (make_dirs(path, err)) return -1;
    char *t = ui_conf_text(c);
    int r = file_write_atomic(path, t, strlen(t), err);
    free(t);
    return r;
}
