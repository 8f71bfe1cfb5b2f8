/* textinput.h -- a one-line text field: UTF-8 buffer with a cursor, the
 * editing keys of the keymap's "Text fields" context, horizontal scrolling,
 * and file-name completion for path prompts. Pure: unit-tested. */
#ifndef OB_UI_TEXTINPUT_H
#define OB_UI_TEXTINPUT_H

#include <stddef.h>
#include <stdint.h>

#include "ui/grid.h"

typedef struct {
    char *buf;     /* NUL-terminated UTF-8 */
    int len, cap;  /* bytes */
    int cur;       /* cursor, byte offset on a character boundary */
    int scroll;    /* first shown column */
} UiInput;

void ui_input_init(UiInput *in);
void ui_input_free(UiInput *in);
void ui_input_set(UiInput *in, const char *text); /* cursor at the end */
void ui_input_insert(UiInput *in, uint32_t cp);
/* handle a key (UI_FN(...) or a character): an editing key of the keymap or
 * a printable character. Returns 1 when handled, 0 when not an edit key. */
int ui_input_key(UiInput *in, int key);
/* draw into (x,y,w); *cursor_x gets the cursor column (absolute) */
void ui_input_render(UiInput *in, UiGrid *g, int x, int y, int w, int attr, int *cursor_x);

/* Complete the file name at the end of path: returns the number of matches
 * (0: none); *completed (malloc'd) gets path extended by the longest common
 * prefix of the matches (with '/' after a unique directory); when there are
 * several matches their names go into listing, separated by two spaces. A
 * leading "~/" means $HOME. */
int ui_complete_path(const char *path, char **completed, char *listing, size_t listing_len);
/* complete the whole field as a path (see ui_complete_path) */
int ui_input_complete(UiInput *in, char *listing, size_t listing_len);

#endif
