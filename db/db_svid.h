/* db_svid.h -- `inspect`'s per-layer statistics (LayerStats, src/onebit/svid.h)
 * in the run store: the scalars that sort and filter (errors, sign balance)
 * as layer_stats columns, the spreads, ranges and histograms as the detail
 * JSON. A saved set loads back bit-exactly, so the workbench can show a
 * teacher's statistics without recomputing them. */
#ifndef OB_DB_SVID_H
#define OB_DB_SVID_H

#include "db/db.h"
#include "onebit/svid.h"

/* replace the teacher's statistics by these n, in one transaction */
int db_layer_stats_save(Db *db, int64_t teacher, const LayerStats *st, int n, char *err);
/* the teacher's statistics in (layer, kind) order, malloc'd (free());
 * n = 0 when none were saved */
int db_layer_stats_load(Db *db, int64_t teacher, LayerStats **out, int *n, char *err);

#endif
