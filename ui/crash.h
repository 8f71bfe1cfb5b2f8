/* ui/crash.h -- putting the terminal back after the workbench: on a fatal
 * signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) from a handler that
 * only makes async-signal-safe calls (write, tcsetattr, dup2, raise), with
 * bytes prepared while curses was set up. ui_crash_arm and ui_crash_disarm
 * are for the UI thread (it owns curses); the handler runs in whichever
 * thread crashed. */
#ifndef OB_UI_CRASH_H
#define OB_UI_CRASH_H

/* Call before curses changes the terminal on tty_fd: keeps its termios. */
void ui_crash_save_modes(int tty_fd);
/* Prepare the crash restore for tty_fd: seq is written as is (NULL: the
 * current terminal's rmcup, rmkx, sgr0 and cnorm, read with tigetstr once
 * curses is set up), then the saved termios are put back. After a crash
 * the message goes to saved_stderr when >= 0 (fd 2 is the Log's pipe
 * while the workbench runs), else to fd 2. Installs the handler. */
void ui_crash_arm(int tty_fd, const char *seq, int saved_stderr);
/* more bytes for the crash restore (after ui_crash_arm): e.g. mouse
 * reporting off once the workbench turned it on */
void ui_crash_add(const char *seq);
/* curses has been ended normally: the handler only reports and re-raises */
void ui_crash_disarm(void);
/* what the handler writes to the terminal (for tests); its length in *n */
const char *ui_crash_restore_bytes(int *n);

#endif
