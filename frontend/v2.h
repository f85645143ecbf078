/*
 * v2.h: private to frontend/ (parse_v2.c, v2_lower.c): the tree of the structured
 * ("v2") syntax, SPEC §4 and notes C. parse_v2.c builds it from tokens of the
 * shared lexer; v2_lower.c rewrites it into the legacy Ast (frontend.h), adding
 * equations for the temporaries it needs, so the IR and everything after it see
 * one kind of program whichever syntax it was written in.
 *
 * Leaves that the legacy syntax already has (numbers, tensor references with
 * their index items, strings, literals, even/odd) are kept as legacy Exprs.
 */
#ifndef FUSE_FRONTEND_V2_H
#define FUSE_FRONTEND_V2_H

#include "frontend.h"

typedef enum VKind {
    V_LEAF,    /* leaf: a legacy Expr (number, tensor reference, string, literal, even/odd) */
    V_NAME,    /* bare identifier `name`: a const or a rank-0 tensor */
    V_BINARY,  /* kids[0] op kids[1] */
    V_JUXT,    /* legacy product by juxtaposition: kids[0] kids[1] ... */
    V_UNARY,   /* op (VO_NEG, VO_NOT) kids[0] */
    V_GROUP,   /* ( kids[0] ) */
    V_TERNARY, /* kids[0] ? kids[1] : kids[2] */
    V_CASE,    /* case { kids[0] -> kids[1]; ...; default -> kids[n-1] } (has_default) */
    V_REDUCE,  /* reduce(name, axes...) kids[0] */
    V_CALL,    /* name(kids..., kwargs...); name may be qualified (a::b) */
    V_MACRO,   /* @name(kids..., kwargs...) */
    V_COUNT
} VKind;

typedef enum VOp {
    VO_ADD, VO_SUB, VO_MUL, VO_DIV, VO_POW,
    VO_LT, VO_LE, VO_GT, VO_GE, VO_EQ, VO_NE,
    VO_AND, VO_OR, VO_NEG, VO_NOT,
    VO_COUNT
} VOp;

typedef struct VNode VNode;

typedef struct VKwarg {
    const char *name;
    VNode *value;
    Span span;
} VKwarg;

struct VNode {
    VKind kind;
    VOp op;            /* V_BINARY, V_UNARY */
    Span span;         /* first token */
    const char *text;  /* source text of the whole node: text_len bytes into the
                          source, not NUL-terminated (messages print %.*s) */
    int text_len;
    Expr *leaf;        /* V_LEAF */
    const char *name;  /* V_NAME, V_CALL, V_MACRO; V_REDUCE: the op as written */
    VNode **kids;
    int n_kids;
    VKwarg *kwargs;    /* V_CALL, V_MACRO */
    int n_kwargs;
    const char **axes; /* V_REDUCE */
    Span *axis_spans;
    int n_axes;
    bool has_default;  /* V_CASE */
    int height;        /* 1 + the largest height of the kids (bounds every walk) */
};

typedef enum VStmtKind {
    VS_EQUATION, /* lhs [when guard] op rhs, or let lhs = rhs */
    VS_SOURCE,   /* lhs = "path" */
    VS_SINK,     /* "path" = rhs */
    VS_EXPORT,   /* export NAME */
    VS_BLOCK,    /* { body } */
    VS_FN,       /* fn name(params) -> ret { body } */
    VS_CONST,    /* const name = value */
    VS_PARAM,    /* param name [: type] [= value] */
    VS_AXIS,     /* axis name [= value] */
    VS_IMPORT,   /* import "path" [as alias] */
    VS_COUNT
} VStmtKind;

/* A left-hand side or a function parameter: NAME [ [items] | (items) ]. */
typedef struct VLhs {
    const char *name;
    Index *indices;
    int n_indices;
    bool is_paren;
    Span span;
} VLhs;

typedef struct VStmt VStmt;

struct VStmt {
    VStmtKind kind;
    Span span;          /* first token */
    const char *text;   /* the statement's source text */
    VLhs lhs;           /* VS_EQUATION, VS_SOURCE; VS_FN: lhs.name is the function */
    AssignOp op;        /* VS_EQUATION */
    bool is_let;
    VNode *guard;       /* VS_EQUATION: `when` condition, or NULL */
    VNode *rhs;         /* VS_EQUATION, VS_SINK; VS_CONST/PARAM/AXIS: the value or NULL */
    const char *path;   /* VS_SOURCE, VS_SINK, VS_IMPORT */
    Span path_span;
    const char *name;   /* VS_EXPORT, VS_CONST, VS_PARAM, VS_AXIS; VS_IMPORT: alias */
    const char *type_name; /* VS_PARAM */
    VStmt **body;       /* VS_BLOCK, VS_FN */
    int n_body;
    VLhs *params;       /* VS_FN */
    int n_params;
    VLhs ret;           /* VS_FN (has_ret) */
    bool has_ret;
    const char *ns;     /* VS_FN from an import: its module's namespace ("m"), where
                           unqualified names are looked up first; else NULL */
};

typedef struct VProgram {
    VStmt **stmts;
    int n_stmts;
} VProgram;

/* parse_v2.c: the whole program into *out; FUSE_E_SYNTAX with the first error in dl. */
fuse_status fe_v2_parse(Arena *arena, const Source *src, DiagList *dl, VProgram *out);

/* v2_lower.c: the tree as a legacy Ast (temporaries become equations before the
 * statement that uses them). params[n_params] replace the defaults of `param`
 * declarations. Errors are positioned; FUSE_E_SYNTAX or FUSE_E_SHAPE. */
fuse_status fe_v2_lower(Arena *arena, const Source *src, const VProgram *prog,
                        const fuse_param *params, size_t n_params, DiagList *dl, Ast *out);

#endif /* FUSE_FRONTEND_V2_H */
