/*
 * frontend.h: the first stage of fuse-jit. Source text becomes an AST with source
 * positions; errors become diagnostics. Nothing here knows about shapes or LLVM.
 *
 * Memory: every AST node, string and diagnostic lives in an Arena and is freed with
 * it in one call (arena.c). Errors: functions return fuse_status and append Diags to
 * a DiagList; the caller formats them with fe_diag_format.
 */
#ifndef FUSE_FRONTEND_H
#define FUSE_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fusejit.h"

/* ---- arena.c: bump allocation in growing chunks, freed all at once ---- */

typedef struct ArenaChunk ArenaChunk;

typedef struct Arena {
    ArenaChunk *head; /* newest chunk first */
    bool is_oom;      /* sticky: set by the first failed allocation */
    /* Tests only: when > 0, counts allocations down and fails the one that reaches
     * 0 (then stays 0). arena_init sets it to 0 (never fail). */
    long fail_countdown;
} Arena;

void arena_init(Arena *a);
/* Frees every chunk; the arena can be reused afterwards. */
void arena_free_all(Arena *a);
/* Zeroed, 16-byte aligned memory, or NULL (and a->is_oom) when out of memory. */
void *arena_alloc(Arena *a, size_t size);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
/* printf into the arena. */
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns a copy of old (old_size bytes) in a new block of new_size bytes. */
void *arena_grow(Arena *a, void *old, size_t old_size, size_t new_size);

/* Appends item to a pointer vector kept as (items, n, cap) in the arena, growing it
 * by doubling. Returns false on OOM. */
bool arena_push_ptr(Arena *a, void ***items, int *n, int *cap, void *item);

/* ---- diag.c: diagnostics with spans ---- */

typedef struct Source {
    const char *name; /* file name as given, for messages */
    const char *text; /* NUL-terminated program text */
    size_t len;
} Source;

typedef struct Span {
    const Source *src; /* NULL when the diagnostic has no location */
    int line;          /* 1-based */
    int col;           /* 1-based, in characters */
    int len;           /* characters to underline; at least 1 */
} Span;

typedef enum DiagSeverity { DS_ERROR, DS_WARNING, DS_NOTE, DS_COUNT } DiagSeverity;

typedef struct Diag {
    DiagSeverity severity;
    fuse_status code; /* the status this diagnostic makes the operation return */
    char *msg;
    Span span;
    struct Diag *next;
} Diag;

/* Errors kept in a list before it stops with "too many errors emitted" (clang's
 * -ferror-limit), unless DiagList.error_limit says otherwise. */
#define FE_ERROR_LIMIT_DEFAULT 20

typedef struct DiagList {
    Arena *arena;
    Diag *first, *last;
    int n_errors;    /* errors reported, those past the limit included */
    int error_limit; /* errors kept: 0 FE_ERROR_LIMIT_DEFAULT, negative no limit */
    bool is_dropping;/* the last error was past the limit: its notes are dropped too */
} DiagList;

void fe_diags_init(DiagList *dl, Arena *arena);
/* Appends an error and returns `code` so callers can `return fe_error(...)`. Past
 * the limit the error is counted, not kept; the first one past it appends
 * "too many errors emitted, stopping now" instead. */
fuse_status fe_error(DiagList *dl, fuse_status code, Span span, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A note on the error or warning just appended (dropped with a dropped error). */
void fe_note(DiagList *dl, Span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* True once an error past the limit was reported ("too many errors"): a phase
 * stops checking there. */
bool fe_diags_stopped(const DiagList *dl);
/* The limit in effect: error_limit, or the default; 0 for no limit. */
int fe_diags_limit(const DiagList *dl);
/* Formats one diagnostic: "FILE:LINE:COL: error: msg\n  source line\n  ^~~~\n" (no
 * location: "error: msg\n"). Returns a malloc'd string the caller frees, or NULL. */
char *fe_diag_format(const Diag *d);
/* Formats every diagnostic of a list, in order. malloc'd; caller frees. */
char *fe_diags_format(const DiagList *dl);

/* ---- lexer.c: tokens for the parser ---- */

typedef enum TokKind {
    TK_EOF,
    TK_NEWLINE,   /* statement separator (runs collapse to one) */
    TK_NAME,      /* identifier */
    TK_NUMBER,    /* integer or float literal, unsigned */
    TK_STRING,    /* "..." with escapes decoded into tok.str */
    TK_PUNCT,     /* ( ) [ ] { } , : + - * / = . etc.; text in tok.text/len */
    TK_OP_ASSIGN, /* = += max= avg= (the parser also takes max=/avg= as keyword names) */
    TK_COUNT
} TokKind;

typedef struct Token {
    TokKind kind;
    const char *text; /* points into the source */
    int len;          /* bytes of text */
    Span span;
    /* TK_NUMBER */
    bool is_int;
    int64_t ival;
    double fval;
    /* TK_STRING: decoded contents, NUL-terminated, in the arena */
    char *str;
    int str_len;
    /* A malformed token (bad character, unterminated string, bad escape, integer
     * out of range): the message, and kind is TK_PUNCT; NULL for a good token. The
     * parser reports it when it reaches the token. */
    const char *err;
} Token;

/* Lexer state; fields are private to lexer.c. */
typedef struct Lexer {
    Arena *arena;
    const Source *src;
    const char *p;   /* next unread byte */
    const char *end; /* src->text + src->len */
    int line, col;   /* position of p (1-based; col in characters) */
    bool emitted;    /* a token other than TK_NEWLINE was returned */
    bool at_newline; /* the last token returned was TK_NEWLINE */
} Lexer;

/* Starts lexing src (skipping a leading UTF-8 BOM). */
void fe_lex_init(Lexer *lx, Arena *arena, const Source *src);
/* Reads the next token. Newline runs (with blank and comment lines) come back as
 * one TK_NEWLINE; none is returned before the first token. At the end TK_EOF is
 * returned, again on every later call. A malformed token comes back with tok->err
 * set and lexing continues after it. Returns FUSE_E_NOMEM (arena full) or FUSE_OK. */
fuse_status fe_lex_next(Lexer *lx, Token *tok);
/* Tokenises all of src into an array ending with TK_EOF. Decoded strings and error
 * messages are allocated in `arena`, the array itself in `array_arena` (the same
 * arena, or a scratch arena so the array can be freed early). When dl is not NULL,
 * each malformed token's error is appended to dl and the result is FUSE_E_SYNTAX
 * (the array is still complete). */
fuse_status fe_lex_all(Arena *arena, Arena *array_arena, const Source *src, DiagList *dl,
                       Token **toks, int *n_toks);
/* "name", "number", ... for messages and tests. */
const char *fe_tok_kind_name(TokKind kind);
/* A short quoted description of a token for messages: 'text' (elided past 24
 * bytes), "end of input" or "end of line". */
typedef struct TokDesc {
    char s[48];
} TokDesc;
TokDesc fe_tok_describe(const Token *t);
/* An integer token, or digits with one trailing '.' (the dotted "1." of "t+1."):
 * its value in *v and *dotted; false for any other token. */
bool fe_tok_int(const Token *t, int64_t *v, bool *dotted);

/* ---- AST (parser.c) ---- */

typedef enum IndexKind {
    IX_AXIS,   /* i, p', t+1, t-1: name plus offset (0 for plain) */
    IX_INT,    /* 0, -1: select one position, the axis is dropped */
    IX_SLICE,  /* 0:3, ::2: name is the slice text */
    IX_STREAM, /* *t, *t-1: streaming axis name plus offset */
    IX_COUNT
} IndexKind;

typedef struct Index {
    IndexKind kind;
    const char *name; /* axis name (IX_AXIS, IX_STREAM) or slice text (IX_SLICE) */
    int64_t offset;   /* IX_AXIS/IX_STREAM: shift; IX_INT: the position */
    bool is_dotted;   /* written with a trailing '.' */
    /* IX_SLICE: absent bounds are has_* = false */
    bool has_start, has_stop, has_step;
    int64_t start, stop, step;
    Span span;
} Index;

typedef enum ExprKind {
    EX_NUMBER, /* num; is_int says whether it was written as an integer */
    EX_STRING, /* str */
    EX_BOOL,   /* num is 0 or 1 */
    EX_NONE,   /* none */
    EX_LIST,   /* items[n_items] */
    EX_DICT,   /* items[2*k] = key, items[2*k+1] = value; n_items = 2 * pairs */
    EX_TENSOR, /* name, indices[n_indices], is_paren; bare NAME has n_indices 0 */
    EX_CALL,   /* name (as written), items[n_items] positional args, kwargs */
    EX_INDEXFN,/* even/odd: name lowercased, axis_name */
    EX_SUM,    /* items[n_items] terms; signs[i] is +1 or -1 */
    EX_PRODUCT,/* items[n_items] factors, n_items >= 2 */
    EX_NEG,    /* unary minus of items[0] */
    EX_GROUP,  /* parenthesised expression items[0] (kept for explain and distribution) */
    EX_COUNT
} ExprKind;

typedef struct Expr Expr;

typedef struct Kwarg {
    const char *name;
    Expr *value;
    Span span;
} Kwarg;

struct Expr {
    ExprKind kind;
    Span span;            /* first token of the expression */
    double num;           /* EX_NUMBER, EX_BOOL */
    int64_t ival;         /* EX_NUMBER with is_int: the exact value (num may round) */
    bool is_int;          /* EX_NUMBER written without '.' or exponent */
    const char *str;      /* EX_STRING contents */
    const char *name;     /* EX_TENSOR, EX_CALL, EX_INDEXFN */
    const char *axis_name;/* EX_INDEXFN */
    bool is_paren;        /* EX_TENSOR written as NAME(...) */
    Index *indices;       /* EX_TENSOR */
    int n_indices;
    Expr **items;         /* see ExprKind */
    int n_items;
    int *signs;           /* EX_SUM */
    Kwarg *kwargs;        /* EX_CALL */
    int n_kwargs;
};

typedef enum StmtKind {
    ST_EQUATION, /* lhs op rhs */
    ST_SOURCE,   /* lhs = "path" */
    ST_SINK,     /* "path" = rhs */
    ST_EXPORT,   /* export NAME */
    ST_COUNT
} StmtKind;

typedef enum AssignOp {
    AOP_SET,  /* =    sum projection */
    AOP_ADD,  /* +=   sum projection, another contribution */
    AOP_MAX,  /* max= */
    AOP_AVG,  /* avg= */
    AOP_PROD, /* product: v2's reduce(prod, ...) only, no legacy spelling */
    AOP_MIN,  /* minimum: v2's reduce(min, ...) only */
    AOP_COUNT
} AssignOp;

typedef struct Stmt {
    StmtKind kind;
    Span span;          /* first token of the statement */
    const char *text;   /* the statement's source text (first to last token) */
    /* ST_EQUATION, ST_SOURCE: the LHS */
    const char *name;   /* LHS tensor name; ST_EXPORT: exported name */
    Index *indices;
    int n_indices;
    bool is_paren;      /* LHS written Name(...): a boolean tensor */
    AssignOp op;
    Expr *rhs;          /* ST_EQUATION, ST_SINK */
    const char *path;   /* ST_SOURCE, ST_SINK */
    Span path_span;
} Stmt;

/* `axis n = 8` (v2): every loop axis named n has that size (ir/shapes.c). */
typedef struct AxisDecl {
    const char *name;
    int64_t size;
    Span span;
} AxisDecl;

typedef struct Ast {
    Stmt **stmts;
    int n_stmts;
    int cap_stmts;
    AxisDecl *axis_decls; /* v2 only */
    int n_axis_decls;
} Ast;

/* Limits of an expression, which the IR enforces when it expands a right-hand side
 * (ir/build.c checks they equal its own). The parser counts against them as it
 * goes, so a statement far over them fails after a few thousand tokens, not after
 * its whole line is lexed and built. */
#define FE_MAX_TERMS 4096   /* terms an expression expands to */
#define FE_MAX_FACTORS 64   /* tensor factors of one term (IR_MAX_OP_OPERANDS) */
#define FE_MAX_INDICES 64   /* index items of one reference, before a rank error stops
                               parsing (the rank limit is FUSE_MAX_RANK) */

/* Parses a whole legacy-syntax program. On error returns FUSE_E_SYNTAX (or
 * FUSE_E_NOMEM) with diagnostics in dl; *out may then hold the statements parsed so
 * far. All memory comes from `arena`. */
fuse_status fe_parse(Arena *arena, const Source *src, DiagList *dl, Ast *out);

/* Parses a program in opts->syntax (NULL: legacy), or the one its first line
 * chooses (`#!fuse v2`, `#!fuse legacy`): fe_parse, or the structured parser
 * (parse_v2.c) and its lowering into the same Ast (v2_lower.c), which takes the
 * param values of opts. Overrides of params a program does not declare are an
 * error. opts->error_limit becomes dl's. */
fuse_status fe_parse_program(Arena *arena, const Source *src,
                             const fuse_program_options *opts, DiagList *dl, Ast *out);

/* The syntax a `#!fuse NAME` first line of text chooses, else `fallback`. */
fuse_syntax fe_syntax_of(const char *text, size_t len, fuse_syntax fallback);

/* True when `name` (any case) is a builtin function of SPEC §5. */
bool fe_is_builtin(const char *name);

/* Writes into buf (size bytes) the hint for an unknown function `name`, as
 * "; did you mean 'sig'? (sig(x, T): logistic sigmoid; ...)" for a builtin near
 * it in spelling or a NumPy/PyTorch name for it, else "". Returns buf. */
#define FE_HINT_SIZE 160
const char *fe_builtin_hint(const char *name, char *buf, size_t size);

/* Prints the AST as an indented text tree (for `fuse-jit emit --what=ast`).
 * malloc'd string; caller frees. */
char *fe_ast_dump(const Ast *ast);

#endif /* FUSE_FRONTEND_H */
