/* db_svid.c -- LayerStats <-> layer_stats rows (see db_svid.h). Doubles
 * are written with 17 significant digits and floats with 9, so they read
 * back exactly; non-finite numbers become JSON null / SQL NULL and read
 * back as NAN. */
#include "db/db_svid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "db/db_internal.h"

static void num(ObBuf *b, double v, int digits)
{
    if (isfinite(v)) ob_buf_printf(b, "%.*g", digits, v);
    else ob_buf_printf(b, "null");
}

static void pair(ObBuf *b, const char *key, double x, double y, int digits)
{
    ob_buf_printf(b, ",\"%s\":[", key);
    num(b, x, digits);
    ob_buf_printf(b, ",");
    num(b, y, digits);
    ob_buf_printf(b, "]");
}

/* min,max,std with 17 digits */
static void min_max_std(ObBuf *b, double lo, double hi, double sd)
{
    num(b, lo, 17);
    ob_buf_printf(b, ",");
    num(b, hi, 17);
    ob_buf_printf(b, ",");
    num(b, sd, 17);
}

static void hist(ObBuf *b, const char *key, const long *h, int bins)
{
    ob_buf_printf(b, ",\"%s\":[", key);
    for (int i = 0; i < bins; i++) ob_buf_printf(b, "%s%ld", i ? "," : "", h[i]);
    ob_buf_printf(b, "]");
}

static char *detail_json(const LayerStats *s)
{
    ObBuf b = {0};
    ob_buf_printf(&b, "{\"row_pos\":[");
    min_max_std(&b, s->row_pos_min, s->row_pos_max, s->row_pos_std);
    ob_buf_printf(&b, "],\"col_pos\":[");
    min_max_std(&b, s->col_pos_min, s->col_pos_max, s->col_pos_std);
    ob_buf_printf(&b, "]");
    pair(&b, "g", s->g_min, s->g_max, 17);
    pair(&b, "h", s->h_min, s->h_max, 17);
    ob_buf_printf(&b, ",\"bpw\":");
    num(&b, s->bpw, 17);
    ob_buf_printf(&b, ",\"bins\":%d", s->bins);
    pair(&b, "abs_range", s->abs_lo, s->abs_hi, 9);
    pair(&b, "w_range", s->w_lo, s->w_hi, 9);
    int bins = s->bins > 0 && s->bins <= SVID_BINS ? s->bins : SVID_BINS;
    hist(&b, "abs_hist", s->abs_hist, bins);
    hist(&b, "w_hist", s->w_hist, bins);
    ob_buf_printf(&b, "}");
    return b.s;
}

int db_layer_stats_save(Db *db, int64_t teacher, const LayerStats *s, int n, char *err)
{
    static const char *what = "storing layer statistics";
    sqlite3_stmt *st = NULL;
    if (db_exec(db->h, db->path, "BEGIN IMMEDIATE", what, db->busy_ms, err)) return -1;
    if (db_prep(db, &st, "DELETE FROM layer_stats WHERE teacher_id=?", what, err)) goto fail;
    sqlite3_bind_int64(st, 1, teacher);
    int bad = db_step_done(db, st, what, err); /* finalizes st */
    st = NULL;
    if (bad) goto fail;
    if (db_prep(db, &st,
                "INSERT INTO layer_stats(teacher_id, layer, kind, name, rows, cols, nmf_err, svd_err, xnor_err, pos_frac, "
                "detail, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, json(?11), ?12)",
                what, err))
        goto fail;
    double now = db_wall_time();
    for (int i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, teacher);
        sqlite3_bind_int(st, 2, s[i].layer);
        sqlite3_bind_int(st, 3, s[i].kind);
        sqlite3_bind_text(st, 4, s[i].name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 5, s[i].rows);
        sqlite3_bind_int(st, 6, s[i].cols);
        db_bind_real_or_null(st, 7, s[i].nmf_err);
        db_bind_real_or_null(st, 8, s[i].svd_err);
        db_bind_real_or_null(st, 9, s[i].xnor_err);
        db_bind_real_or_null(st, 10, s[i].pos_frac);
        sqlite3_bind_text(st, 11, detail_json(&s[i]), -1, free);
        sqlite3_bind_double(st, 12, now);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) ob_seterr(err, "%s: no teacher %lld", db->path, (long long)teacher);
            else db_set_sqlerr(db->h, rc, db->path, what, db->busy_ms, err);
            goto fail;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (db_exec(db->h, db->path, "COMMIT", what, db->busy_ms, err)) goto fail;
    return 0;
fail:
    sqlite3_finalize(st);
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* the numbers of a JSON array of integers ("[1,2,3]") into h */
static int parse_hist(const char *s, long *h, int bins)
{
    if (!s || *s != '[') return -1;
    s++;
    for (int i = 0; i < bins; i++) {
        char *end;
        h[i] = strtol(s, &end, 10);
        if (end == s) return -1;
        s = end;
        if (*s == ',') s++;
    }
    return *s == ']' ? 0 : -1;
}

/* a layer_stats row (see db_layer_stats_load's SELECT) */
static int stats_row(void *ctx, sqlite3_stmt *st, void *elem, char *err)
{
    const Db *db = ctx;
    LayerStats *s = elem;
    s->layer = sqlite3_column_int(st, 0);
    s->kind = sqlite3_column_int(st, 1);
    db_col_text(st, 2, s->name, sizeof s->name);
    s->rows = sqlite3_column_int(st, 3);
    s->cols = sqlite3_column_int(st, 4);
    s->nmf_err = db_col_real_or_nan(st, 5);
    s->svd_err = db_col_real_or_nan(st, 6);
    s->xnor_err = db_col_real_or_nan(st, 7);
    s->pos_frac = db_col_real_or_nan(st, 8);
    s->row_pos_min = db_col_real_or_nan(st, 9);
    s->row_pos_max = db_col_real_or_nan(st, 10);
    s->row_pos_std = db_col_real_or_nan(st, 11);
    s->col_pos_min = db_col_real_or_nan(st, 12);
    s->col_pos_max = db_col_real_or_nan(st, 13);
    s->col_pos_std = db_col_real_or_nan(st, 14);
    s->g_min = db_col_real_or_nan(st, 15);
    s->g_max = db_col_real_or_nan(st, 16);
    s->h_min = db_col_real_or_nan(st, 17);
    s->h_max = db_col_real_or_nan(st, 18);
    s->bpw = db_col_real_or_nan(st, 19);
    s->bins = sqlite3_column_int(st, 20);
    s->abs_lo = (float)db_col_real_or_nan(st, 21);
    s->abs_hi = (float)db_col_real_or_nan(st, 22);
    s->w_lo = (float)db_col_real_or_nan(st, 23);
    s->w_hi = (float)db_col_real_or_nan(st, 24);
    if (s->bins < 1 || s->bins > SVID_BINS || parse_hist((const char *)sqlite3_column_text(st, 25), s->abs_hist, s->bins) ||
        parse_hist((const char *)sqlite3_column_text(st, 26), s->w_hist, s->bins)) {
        ob_seterr(err, "%s: damaged layer statistics for %s of teacher %lld", db->path, s->name,
                  (long long)sqlite3_column_int64(st, 27));
        return -1;
    }
    return 0;
}

int db_layer_stats_load(Db *db, int64_t teacher, LayerStats **out, int *n, char *err)
{
    static const char *sql =
        "SELECT layer, kind, name, rows, cols, nmf_err, svd_err, xnor_err, pos_frac, "
        "json_extract(detail, '$.row_pos[0]'), json_extract(detail, '$.row_pos[1]'), json_extract(detail, '$.row_pos[2]'), "
        "json_extract(detail, '$.col_pos[0]'), json_extract(detail, '$.col_pos[1]'), json_extract(detail, '$.col_pos[2]'), "
        "json_extract(detail, '$.g[0]'), json_extract(detail, '$.g[1]'), json_extract(detail, '$.h[0]'), "
        "json_extract(detail, '$.h[1]'), json_extract(detail, '$.bpw'), json_extract(detail, '$.bins'), "
        "json_extract(detail, '$.abs_range[0]'), json_extract(detail, '$.abs_range[1]'), "
        "json_extract(detail, '$.w_range[0]'), json_extract(detail, '$.w_range[1]'), "
        "json_extract(detail, '$.abs_hist'), json_extract(detail, '$.w_hist'), teacher_id "
        "FROM layer_stats WHERE teacher_id=?1 ORDER BY layer, kind";
    void *v;
    int rc = db_select(db, sql, teacher, 0, sizeof **out, stats_row, db, NULL, "reading layer statistics", &v, n, err);
    *out = v;
    return rc;
}
