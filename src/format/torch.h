/* torch.h -- a restricted reader of torch.save checkpoints (the zip format):
 * PREFIX/data.pkl, a pickle (protocol 2) of a state dict, and PREFIX/data/KEY,
 * the raw little-endian storages, STORED (not deflated), ZIP64 or not.
 *
 * The pickle is read by a small stack machine that knows only what a state
 * dict needs -- dict and collections.OrderedDict (with its _metadata set by
 * BUILD), torch._utils._rebuild_tensor_v2 / _rebuild_parameter, the
 * torch.*Storage classes and persistent ids ('storage', class, key,
 * location, numel) -- and rejects every other global by name, as torch's own
 * weights_only loader does. Nothing in the file is ever executed or
 * imported. The result is safetensors' description of the tensors (STFile)
 * pointing into the caller's buffer (an mmap'd file): storages are never
 * copied. Every offset, size, memo index, stack depth and nesting level is
 * checked before use. */
#ifndef OB_TORCH_H
#define OB_TORCH_H

#include <stddef.h>

#include "format/safetensors.h"

#define TORCH_MAX_DEPTH 64       /* nesting of MARKs and containers */
#define TORCH_MAX_MEMO (1u << 20) /* memo slots */

/* 1 when the first n bytes of a file look like a zip archive (a local file
 * header or an empty archive's end record) */
int torch_is_zip(const unsigned char *head, size_t n);

/* parse the torch.save zip in data (size bytes: the whole file, which must
 * stay mapped while f is used) into f: the tensors of the top-level dict,
 * sorted by name, with safetensors' dtypes and begin/end as byte offsets
 * from f->base = data. Contiguous tensors only; entries whose value is not
 * a tensor are skipped. Errors carry no path. Free f with st_free. */
int torch_parse(STFile *f, const void *data, size_t size, char *err);

#endif
