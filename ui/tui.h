/* tui.h -- the entry point of the full-screen workbench, for src/cli/main.c. */
#ifndef OB_UI_TUI_H
#define OB_UI_TUI_H

/* `onebit-tui [--teacher M] [--tokenizer T] [--db F] [--ascii] [--no-color]`;
 * returns the exit status */
int ui_main(int argc, char **argv);

#endif
