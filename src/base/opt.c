/* src/base/opt.c -- option tables (see opt.h): defaults, parsing with
 * bounds, --help, the run store's JSON. Any thread; getopt_long's globals
 * make opt_parse_argv main-thread only. */
#include "base/opt.h"

#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "base/file.h"

#define FIELD(obj, o, T) ((T *)(void *)((char *)(obj) + (o)->off))
#define CFIELD(obj, o, T) ((const T *)(const void *)((const char *)(obj) + (o)->off))

const OptSpec *opt_find(const OptSpec *rows, const char *name)
{
    for (const OptSpec *o = rows; o->name; o++)
        if (o->type != OPT_NOTE && !strcmp(o->name, name)) return o;
    return NULL;
}

static long lbound(double b) { return b >= (double)LONG_MAX ? LONG_MAX : b <= (double)LONG_MIN ? LONG_MIN : (long)b; }

/* the numeric value of a field as a double (U64 above 2^53 loses bits: for
 * bounds checks only) */
static double num(const OptSpec *o, const void *obj)
{
    switch (o->type) {
    case OPT_INT: return *CFIELD(obj, o, int);
    case OPT_LONG: return (double)*CFIELD(obj, o, long);
    case OPT_U64: return (double)*CFIELD(obj, o, uint64_t);
    case OPT_FLOAT: return *CFIELD(obj, o, float);
    case OPT_CHOICE: return *CFIELD(obj, o, int);
    default: return 0;
    }
}

static int in_bounds(const OptSpec *o, double v)
{
    if (o->flags & OPT_LO_OPEN ? !(v > o->lo) : !(v >= o->lo)) return 0;
    return v <= o->hi;
}

int opt_given(const OptSpec *o, const void *obj)
{
    switch (o->type) {
    case OPT_STR: return *CFIELD(obj, o, char *) != NULL;
    case OPT_CHOICE: case OPT_FLAG: return 1;
    case OPT_NOTE: return 0;
    default: return in_bounds(o, num(o, obj));
    }
}

/* "not given": a value below the bounds (or 0 when 0 is below them) */
static void set_unset(const OptSpec *o, void *obj)
{
    switch (o->type) {
    case OPT_INT: *FIELD(obj, o, int) = o->lo > 0 ? 0 : -1; break;
    case OPT_LONG: *FIELD(obj, o, long) = o->lo > 0 ? 0 : -1; break;
    case OPT_U64: *FIELD(obj, o, uint64_t) = 0; break;
    case OPT_FLOAT: *FIELD(obj, o, float) = o->lo > 0 || (o->flags & OPT_LO_OPEN) ? 0.0f : -1.0f; break;
    case OPT_STR: free(*FIELD(obj, o, char *)); *FIELD(obj, o, char *) = NULL; break;
    case OPT_CHOICE: case OPT_FLAG: *FIELD(obj, o, int) = 0; break;
    case OPT_NOTE: break;
    }
}

static int choice_index(const char *choices, const char *s)
{
    size_t n = strlen(s);
    int i = 0;
    for (const char *p = choices; *p; i++) {
        const char *e = strchr(p, '|');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && !strncmp(p, s, n)) return i;
        p += k + (e ? 1 : 0);
    }
    return -1;
}

static void choice_name(const char *choices, int i, char *buf, size_t n)
{
    const char *p = choices;
    for (; i > 0 && p; i--) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (!p) { snprintf(buf, n, "?"); return; }
    const char *e = strchr(p, '|');
    snprintf(buf, n, "%.*s", (int)(e ? e - p : (ptrdiff_t)strlen(p)), p);
}

int opt_set(const OptSpec *o, void *obj, const char *text, char *err)
{
    if (o->type == OPT_NOTE) { ob_seterr(err, "is not an option"); return -1; }
    if (o->type == OPT_FLAG) { *FIELD(obj, o, int) = (int)o->hi; return 0; }
    if (!text || !*text) { set_unset(o, obj); return 0; }
    if (o->type == OPT_STR) {
        free(*FIELD(obj, o, char *));
        *FIELD(obj, o, char *) = ob_strdup(text);
        return 0;
    }
    if (o->type == OPT_CHOICE) {
        int i = choice_index(o->choices, text);
        if (i < 0) {
            char alts[128];
            size_t k = 0;
            alts[0] = 0;
            for (const char *p = o->choices; *p && k < sizeof alts - 8; p++) {
                if (*p != '|') { alts[k++] = *p; continue; }
                const char *sep = strchr(p + 1, '|') ? ", " : " or ";
                k += (size_t)snprintf(alts + k, sizeof alts - k, "%s", sep);
            }
            alts[k < sizeof alts ? k : sizeof alts - 1] = 0;
            ob_seterr(err, "must be %s, not '%s'", alts, text);
            return -1;
        }
        *FIELD(obj, o, int) = i;
        return 0;
    }
    if (o->type == OPT_FLOAT) {
        double v;
        if (ob_parse_float(text, &v) || !in_bounds(o, v)) {
            const char *op = o->flags & OPT_LO_OPEN ? ">" : ">=";
            if (isinf(o->hi)) ob_seterr(err, "needs a number %s %g, not '%s'", op, o->lo, text);
            else ob_seterr(err, "needs a number from %g to %g, not '%s'", o->lo, o->hi, text);
            return -1;
        }
        *FIELD(obj, o, float) = (float)v;
        return 0;
    }
    long v, lo = lbound(o->lo), hi = lbound(o->hi);
    if (ob_parse_int(text, lo, hi, &v)) {
        ob_seterr(err, "needs an integer from %ld to %ld, not '%s'", lo, hi, text);
        return -1;
    }
    if (o->type == OPT_INT) *FIELD(obj, o, int) = (int)v;
    else if (o->type == OPT_LONG) *FIELD(obj, o, long) = v;
    else *FIELD(obj, o, uint64_t) = (uint64_t)v;
    return 0;
}

void opt_format(const OptSpec *o, const void *obj, char *buf, size_t n)
{
    if (!opt_given(o, obj)) { snprintf(buf, n, "%s", ""); return; }
    switch (o->type) {
    case OPT_INT: snprintf(buf, n, "%d", *CFIELD(obj, o, int)); break;
    case OPT_LONG: snprintf(buf, n, "%ld", *CFIELD(obj, o, long)); break;
    case OPT_U64: snprintf(buf, n, "%llu", (unsigned long long)*CFIELD(obj, o, uint64_t)); break;
    case OPT_FLOAT: { /* the shortest text that reads back as the same float */
        float f = *CFIELD(obj, o, float);
        for (int p = 6; p <= 9; p++) {
            snprintf(buf, n, "%.*g", p, (double)f);
            if (strtof(buf, NULL) == f) break;
        }
        break;
    }
    case OPT_STR: snprintf(buf, n, "%s", *CFIELD(obj, o, char *)); break;
    case OPT_CHOICE: choice_name(o->choices, *CFIELD(obj, o, int), buf, n); break;
    case OPT_FLAG: snprintf(buf, n, "%d", *CFIELD(obj, o, int)); break;
    case OPT_NOTE: snprintf(buf, n, "%s", ""); break;
    }
}

void opt_defaults(const OptSpec *rows, void *obj)
{
    char err[OB_ERRLEN];
    for (const OptSpec *o = rows; o->name; o++) {
        if (o->type == OPT_NOTE || (o->flags & OPT_ALIAS)) continue;
        if (o->type == OPT_STR) *FIELD(obj, o, char *) = NULL;
        set_unset(o, obj);
        if (!o->def) continue;
        if (o->type == OPT_STR) { *FIELD(obj, o, char *) = ob_strdup(o->def); continue; }
        /* a default outside the bounds is how a row says "not given" */
        double v = strtod(o->def, NULL);
        if (o->type == OPT_FLOAT) *FIELD(obj, o, float) = (float)v;
        else if (o->type == OPT_INT) *FIELD(obj, o, int) = (int)v;
        else if (o->type == OPT_LONG) *FIELD(obj, o, long) = (long)v;
        else if (o->type == OPT_U64) *FIELD(obj, o, uint64_t) = strtoull(o->def, NULL, 10);
        else if (o->type == OPT_FLAG) *FIELD(obj, o, int) = (int)v;
        else if (opt_set(o, obj, o->def, err)) abort(); /* a choice the table does not list */
    }
}

void opt_free(const OptSpec *rows, void *obj)
{
    for (const OptSpec *o = rows; o->name; o++)
        if (o->type == OPT_STR && !(o->flags & OPT_ALIAS)) {
            free(*FIELD(obj, o, char *));
            *FIELD(obj, o, char *) = NULL;
        }
}

void opt_copy(const OptSpec *rows, void *dst, const void *src)
{
    for (const OptSpec *o = rows; o->name; o++) {
        if (o->flags & OPT_ALIAS) continue;
        switch (o->type) {
        case OPT_INT: case OPT_CHOICE: case OPT_FLAG: *FIELD(dst, o, int) = *CFIELD(src, o, int); break;
        case OPT_LONG: *FIELD(dst, o, long) = *CFIELD(src, o, long); break;
        case OPT_U64: *FIELD(dst, o, uint64_t) = *CFIELD(src, o, uint64_t); break;
        case OPT_FLOAT: *FIELD(dst, o, float) = *CFIELD(src, o, float); break;
        case OPT_STR: {
            const char *s = *CFIELD(src, o, char *);
            *FIELD(dst, o, char *) = s ? ob_strdup(s) : NULL;
            break;
        }
        case OPT_NOTE: break;
        }
    }
}

int opt_parse_argv(const OptSpec *rows, void *obj, int argc, char **argv, char *err)
{
    int n = 0;
    for (const OptSpec *o = rows; o->name; o++) n++;
    struct option *lo = ob_calloc((size_t)n + 2, sizeof *lo);
    char *shorts = ob_malloc(2 * (size_t)n + 4), *sp = shorts;
    *sp++ = ':';
    *sp++ = 'h';
    int k = 0;
    for (int i = 0; i < n; i++) {
        const OptSpec *o = &rows[i];
        if (o->type == OPT_NOTE || (o->flags & OPT_NOCLI)) continue;
        if (o->name[0] && !o->name[1]) { /* -n: getopt returns the letter */
            *sp++ = o->name[0];
            if (o->type != OPT_FLAG) *sp++ = ':';
            continue;
        }
        lo[k++] = (struct option){o->name, o->type == OPT_FLAG ? no_argument : required_argument, NULL, 256 + i};
    }
    *sp = 0;
    lo[k++] = (struct option){"help", no_argument, NULL, 'h'};
    int ch, rc = 0;
    optind = 0;
    opterr = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        const OptSpec *o = NULL;
        if (ch >= 256 && ch < 256 + n) o = &rows[ch - 256];
        else if (ch != 'h' && ch != ':' && ch != '?')
            for (int i = 0; i < n && !o; i++)
                if (rows[i].name[0] == ch && !rows[i].name[1] && rows[i].type != OPT_NOTE) o = &rows[i];
        if (ch == 'h') rc = 1;
        else if (ch == ':') { ob_seterr(err, "option '%s' needs a value", argv[optind - 1]); rc = -1; }
        else if (!o) { ob_seterr(err, "unknown option '%s'", argv[optind - 1]); rc = -1; }
        else {
            char e2[OB_ERRLEN];
            const char *dash = o->name[1] ? "--" : "-", *typed = o->name;
            while ((o->flags & OPT_ALIAS) && o > rows) o--; /* the row it names */
            /* on the command line an empty number is a mistake, not "not given" */
            if (optarg && !*optarg && o->type != OPT_STR) { ob_seterr(err, "option '%s%s' needs a value", dash, typed); rc = -1; }
            else if (opt_set(o, obj, optarg, e2)) { ob_seterr(err, "%s%s %s", dash, typed, e2); rc = -1; }
        }
    }
    if (rc == 0 && optind < argc) { ob_seterr(err, "unexpected argument '%s'", argv[optind]); rc = -1; }
    free(lo);
    free(shorts);
    return rc;
}

int opt_check_required(const OptSpec *rows, const void *obj, char *err)
{
    for (const OptSpec *o = rows; o->name; o++)
        if ((o->flags & OPT_REQUIRED) && !opt_given(o, obj)) {
            ob_seterr(err, "--%s %s is required", o->name, o->meta ? o->meta : "");
            return -1;
        }
    return 0;
}

void opt_help_width(FILE *f, const OptSpec *rows, int width)
{
    for (const OptSpec *o = rows; o->name; o++) {
        if (o->flags & (OPT_NOHELP | OPT_NOCLI | OPT_ALIAS)) continue;
        if (o->section) fprintf(f, "%s:\n", o->section);
        char head[96];
        size_t hl = 0;
        for (const OptSpec *a = o + 1; a->name && (a->flags & OPT_ALIAS); a++) /* "-p, --prompt" */
            hl += (size_t)snprintf(head + hl, sizeof head - hl, "%s%s, ", a->name[1] ? "--" : "-", a->name);
        snprintf(head + hl, sizeof head - hl, "%s%s%s%s", o->name[1] ? "--" : "-", o->name, o->meta ? " " : "",
                 o->meta ? o->meta : "");
        const char *h = o->help ? o->help : "";
        const char *nl = strchr(h, '\n');
        fprintf(f, "  %-*s %.*s\n", width, head, (int)(nl ? nl - h : (ptrdiff_t)strlen(h)), h);
        while (nl) {
            h = nl + 1;
            nl = strchr(h, '\n');
            fprintf(f, "%*s%.*s\n", width + 3, "", (int)(nl ? nl - h : (ptrdiff_t)strlen(h)), h);
        }
    }
}

void opt_help(FILE *f, const OptSpec *rows) { opt_help_width(f, rows, 20); }

/* ---- JSON ------------------------------------------------------------------------ */
char *opt_to_json(const OptSpec *rows, const void *obj)
{
    char *s = NULL;
    size_t sn = 0;
    FILE *b = open_memstream(&s, &sn);
    if (!b) abort();
    fputc('{', b);
    int first = 1;
    for (const OptSpec *o = rows; o->name; o++) {
        if (!(o->flags & OPT_STORE) || !opt_given(o, obj)) continue;
        fprintf(b, "%s\"%s\":", first ? "" : ",", o->name);
        first = 0;
        if (o->type == OPT_STR || o->type == OPT_CHOICE) {
            char cb[64];
            const char *v = cb;
            char *own = NULL;
            if (o->type == OPT_STR) {
                v = *CFIELD(obj, o, char *);
                if (o->flags & OPT_PATH) v = own = file_abs(v);
            } else opt_format(o, obj, cb, sizeof cb);
            fprintf(b, "\"");
            for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
                if (*p == '"' || *p == '\\') fprintf(b, "\\%c", *p);
                else if (*p < 0x20) fprintf(b, "\\u%04x", *p);
                else fprintf(b, "%c", *p);
            }
            fprintf(b, "\"");
            free(own);
        } else {
            char nb[64];
            opt_format(o, obj, nb, sizeof nb);
            fprintf(b, "%s", nb);
        }
    }
    fputc('}', b);
    if (fclose(b)) abort();
    return s;
}

int opt_load(const OptSpec *rows, void *obj, OptGetter get, void *ud, char *err)
{
    char *buf = ob_malloc(8192);
    int rc = 0;
    for (const OptSpec *o = rows; o->name && rc == 0; o++) {
        if (!(o->flags & OPT_STORE)) continue;
        int k = get(ud, o->name, buf, 8192, err);
        if (k < 0) rc = -1;
        else if (k > 0) {
            char e2[OB_ERRLEN];
            if (!*buf && o->type != OPT_STR) { ob_seterr(err, "stored option '%s' is empty", o->name); rc = -1; }
            else if (opt_set(o, obj, buf, e2)) { ob_seterr(err, "stored option '%s' %s", o->name, e2); rc = -1; }
        }
    }
    free(buf);
    return rc;
}
