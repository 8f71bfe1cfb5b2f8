/* src/base/opt.h -- option tables: each option of a subcommand is one row
 * (name, type, bounds, default, help, the struct field it fills by
 * offsetof). The same rows set the defaults, parse the command line, print
 * the option list of --help, write the run store's hyperparameter JSON and
 * read it back with the same checks, and give the workbench's forms their
 * fields. Pure functions over a caller's struct; any thread, one struct per
 * thread at a time.
 *
 * Values: a numeric field outside its bounds means "not given" (so a
 * default of 0 for --steps with bounds [1, ...] is "required, missing", and
 * -1 for --warmup with bounds [0, ...] is "derived from --steps"); a string
 * field is malloc'd and owned by the struct (opt_free), NULL when not
 * given. opt_set (forms) takes an empty text as "not given"; on the command
 * line an empty number is an error, and stored values must not be empty. */
#ifndef OB_OPT_H
#define OB_OPT_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    OPT_INT,     /* int */
    OPT_LONG,    /* long */
    OPT_U64,     /* uint64_t */
    OPT_FLOAT,   /* float */
    OPT_STR,     /* char *, malloc'd */
    OPT_CHOICE,  /* int: the index of the value in `choices` ("nmf|svd") */
    OPT_FLAG,    /* int, no value: the option sets the field to (int)hi (1 for a plain switch) */
    OPT_NOTE,    /* no field: one more help entry for the option above */
} OptType;

enum {
    OPT_STORE = 1 << 0,    /* written to and read from the run store's JSON */
    OPT_PATH = 1 << 1,     /* a file name: absolute in the JSON, a path field in forms */
    OPT_REQUIRED = 1 << 2, /* opt_check_required: "--steps S is required" */
    OPT_NOCLI = 1 << 3,    /* not a command-line option (recorded only) */
    OPT_NOHELP = 1 << 4,   /* an option --help does not list (it is in the usage line) */
    OPT_LO_OPEN = 1 << 5,  /* the lower bound itself is not allowed (lr > 0) */
    OPT_ALIAS = 1 << 6,    /* another name of the row above (-p for --prompt): the same
                              type and field; --help lists it on that row, and it takes
                              no part in defaults, copies, frees or the JSON */
};

typedef struct {
    const char *name;      /* "seq-len": --seq-len, the JSON key; one letter: "n" is -n
                              (NULL ends a table) */
    OptType type;
    size_t off;            /* offsetof the field */
    unsigned flags;
    double lo, hi;         /* bounds of numbers (inclusive unless OPT_LO_OPEN) */
    const char *def;       /* the default as text (NULL: zero / not given) */
    const char *choices;   /* OPT_CHOICE: "a|b|c" */
    const char *meta;      /* the value in --help: "L" */
    const char *help;      /* lines separated by '\n'; the first one is the short help */
    const char *section;   /* a heading printed before this row in --help ("Data") */
} OptSpec;

/* the row named `name`, NULL when there is none */
const OptSpec *opt_find(const OptSpec *rows, const char *name);
/* every field to its default (strings duplicated); obj is uninitialised */
void opt_defaults(const OptSpec *rows, void *obj);
/* free the strings, leaving NULLs */
void opt_free(const OptSpec *rows, void *obj);
/* dst = a deep copy of src (dst is uninitialised) */
void opt_copy(const OptSpec *rows, void *dst, const void *src);

/* parse and check one value; on an error the message reads after the
 * option's name: "needs an integer from 1 to 65536, not '0'" */
int opt_set(const OptSpec *o, void *obj, const char *text, char *err);
/* the value as text ("" when not given); JSON-free, for forms and messages */
void opt_format(const OptSpec *o, const void *obj, char *buf, size_t n);
/* 1 when the field holds a value (in bounds / not NULL) */
int opt_given(const OptSpec *o, const void *obj);

/* Parse argv[1..] (argv[0] is the subcommand) with getopt_long over the
 * rows. 0 done, 1 --help was given, -1 a usage error in err ("unknown
 * option '--x'", "--lr needs a number > 0, not 'abc'", ...). */
int opt_parse_argv(const OptSpec *rows, void *obj, int argc, char **argv, char *err);
/* "--steps S is required" for the first OPT_REQUIRED row not given */
int opt_check_required(const OptSpec *rows, const void *obj, char *err);
/* the option list of --help: sections, "  --name META" and the help lines,
 * which start in column width + 3 (opt_help: width 20) */
void opt_help(FILE *f, const OptSpec *rows);
void opt_help_width(FILE *f, const OptSpec *rows, int width);

/* the OPT_STORE rows that hold a value as one JSON object, paths absolute;
 * malloc'd */
char *opt_to_json(const OptSpec *rows, const void *obj);
/* stored values: get(ud, key, buf, n) returns 1 with the value's text in
 * buf, 0 when absent, -1 with err. Every OPT_STORE row present is set and
 * checked as on the command line; an error names the key: "stored option
 * 'batch' needs an integer from 1 to 65536, not '0'". */
typedef int (*OptGetter)(void *ud, const char *key, char *buf, size_t n, char *err);
int opt_load(const OptSpec *rows, void *obj, OptGetter get, void *ud, char *err);

#endif
