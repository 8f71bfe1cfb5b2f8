/* form.h -- a form of labelled fields (text, path, integer, number) with
 * validation on accept, drawn as a box into a UiGrid. Pure: unit-tested. */
#ifndef OB_UI_FORM_H
#define OB_UI_FORM_H

#include "ui/grid.h"
#include "ui/textinput.h"

typedef enum { UI_F_TEXT, UI_F_PATH, UI_F_INT, UI_F_NUM } UiFieldKind;

typedef struct {
    char label[48];
    UiFieldKind kind;
    UiInput in;
    double lo, hi;      /* bounds of UI_F_INT / UI_F_NUM */
    char help[128];
} UiField;

#define UI_FORM_MAX 32

typedef struct {
    char title[64];
    UiField f[UI_FORM_MAX];
    int n, cur;
    int top;            /* the first field shown when they do not all fit (scrolls with cur) */
    char err[256];      /* the last validation error */
    char listing[512];  /* completion choices of a path field */
    int ry, rrows;      /* grid row of the first field shown, rows of fields (the last render) */
} UiForm;

enum { UI_FORM_CONTINUE = 0, UI_FORM_ACCEPT, UI_FORM_CANCEL };

void ui_form_init(UiForm *f, const char *title);
void ui_form_free(UiForm *f);
/* add a field with its initial text; returns its index */
int ui_form_add(UiForm *f, const char *label, UiFieldKind kind, const char *init, double lo, double hi,
                const char *help);
/* a key: form navigation, accept (validates all fields: on an error f->err
 * says which and the field gets focus), cancel, or editing of the current
 * field. Returns UI_FORM_* */
int ui_form_key(UiForm *f, int key);
/* 0 and the value, or -1 when the field does not parse within its bounds */
int ui_form_num(const UiForm *f, int i, double *out);
const char *ui_form_text(const UiForm *f, int i);
int ui_form_validate(UiForm *f);
/* a box centred in the grid; *cx,*cy receive the cursor position. When the
 * fields do not fit, they scroll to keep the current one in view and the
 * top border says which are shown ("fields 3-12 of 15") */
void ui_form_render(UiForm *f, UiGrid *g, int *cx, int *cy);
/* a click on grid row y of the last render: the field there gets focus; 1
 * when a field was hit */
int ui_form_click(UiForm *f, int y);

#endif
