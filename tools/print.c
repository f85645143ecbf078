/*
 * print.c: renders tensors as text the way NumPy's str() does with its default
 * print options (precision 8, line width 75, threshold 1000, edge items 3) and
 * suppress=True.
 *
 * Approach, as in numpy/core/arrayprint.py: one element format is chosen for the
 * whole array from the elements that are shown (all of them, or the three first
 * and last along every axis when the array has more than 1000 elements), then the
 * array is written recursively: '[' per axis, rows wrapped at the line width with
 * a hanging indent, blank lines between blocks of rank 3 and more, "..." where an
 * axis is elided.
 *
 * Floats use the shortest decimal digits that read back as the same value in the
 * tensor's own precision (float16, float32 or float64), capped at 8 fractional digits, in
 * positional notation, or in scientific notation when the largest magnitude shown
 * is 1e8 or more. Positional values are aligned on the decimal point; scientific
 * ones share one mantissa length. A scalar prints like NumPy's scalar str():
 * "2.5", "1.0", "1e-05".
 *
 * cli_log prints the library's log messages for the tools; cli_print_diags
 * prints diagnostics, in colour on a terminal (--color).
 */
#include "print.h"
#include "support.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    LINE_WIDTH = 75,  /* characters per line, as numpy's linewidth */
    THRESHOLD = 1000, /* more elements than this: elide the middle of long axes */
    EDGE_ITEMS = 3,   /* elements kept at each end of an elided axis */
    PRECISION = 8,    /* at most this many fractional digits in arrays */
    WORD_MAX = 96     /* room for one formatted element */
};

/* ---- growing strings ---- */

static void str_repeat(SupBuf *s, char c, long n)
{
    for (; n > 0; n--)
        sup_buf_append(s, &c, 1);
}

/* ---- element kinds and access ---- */

typedef enum Kind { K_FLOAT, K_INT, K_BOOL, K_INVALID } Kind;

static Kind dtype_kind(fuse_dtype dt)
{
    switch (dt) {
    case FUSE_F16:
    case FUSE_BF16:
    case FUSE_F32:
    case FUSE_F64:
        return K_FLOAT;
    case FUSE_I8:
    case FUSE_I16:
    case FUSE_I32:
    case FUSE_I64:
    case FUSE_U8:
    case FUSE_U16:
    case FUSE_U32:
    case FUSE_U64:
        return K_INT;
    case FUSE_BOOL:
        return K_BOOL;
    default:
        return K_INVALID;
    }
}

/* IEEE binary16 bits as a double (exact). This file uses fusejit.h only, so it
 * decodes halves itself. */
static double half_value(uint16_t h)
{
    int exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    double v = exp == 0    ? ldexp(mant, -24)
             : exp == 0x1F ? (mant ? NAN : INFINITY)
                           : ldexp(mant | 0x400, exp - 25);
    return h & 0x8000 ? -v : v;
}

/* y rounded to the nearest float16 value (ties to even), as a double. */
static double half_round(double y)
{
    if (!isfinite(y) || y == 0)
        return y;
    int e;
    frexp(y, &e); /* |y| in [2^(e-1), 2^e) */
    int ulp = (e - 1 < -14 ? -14 : e - 1) - 10; /* 10 mantissa bits; subnormals */
    double r = ldexp(nearbyint(ldexp(y, -ulp)), ulp);
    return fabs(r) > 65504 ? copysign(INFINITY, y) : r;
}

/* bfloat16 bits (the top half of a float32's) as a double (exact). */
static double bf16_value(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* y rounded to the nearest bfloat16 value (8 significant bits, float32's
 * exponent range; ties to even), as a double. */
static double bf16_round(double y)
{
    if (!isfinite(y) || y == 0)
        return y;
    int e;
    frexp(y, &e);
    int ulp = (e - 1 < -126 ? -126 : e - 1) - 7;
    double r = ldexp(nearbyint(ldexp(y, -ulp)), ulp);
    return fabs(r) > 0x1.FEp127 ? copysign(INFINITY, y) : r;
}

/* Element i (flat, C order) of a float tensor, widened to double. */
static double elem_float(const fuse_tensor *t, int64_t i)
{
    if (t->dtype == FUSE_BF16)
        return bf16_value(((const uint16_t *)t->data)[i]);
    if (t->dtype == FUSE_F16)
        return half_value(((const uint16_t *)t->data)[i]);
    if (t->dtype == FUSE_F32)
        return ((const float *)t->data)[i];
    return ((const double *)t->data)[i];
}

/* Element i of an integer tensor in decimal. */
static void elem_int_text(const fuse_tensor *t, int64_t i, char *buf, size_t n)
{
    const void *d = t->data;
    switch (t->dtype) {
    case FUSE_I8: snprintf(buf, n, "%d", ((const int8_t *)d)[i]); break;
    case FUSE_I16: snprintf(buf, n, "%d", ((const int16_t *)d)[i]); break;
    case FUSE_I32: snprintf(buf, n, "%" PRId32, ((const int32_t *)d)[i]); break;
    case FUSE_I64: snprintf(buf, n, "%" PRId64, ((const int64_t *)d)[i]); break;
    case FUSE_U8: snprintf(buf, n, "%u", ((const uint8_t *)d)[i]); break;
    case FUSE_U16: snprintf(buf, n, "%u", ((const uint16_t *)d)[i]); break;
    case FUSE_U32: snprintf(buf, n, "%" PRIu32, ((const uint32_t *)d)[i]); break;
    default: snprintf(buf, n, "%" PRIu64, ((const uint64_t *)d)[i]); break;
    }
}

static bool elem_bool(const fuse_tensor *t, int64_t i)
{
    return ((const uint8_t *)t->data)[i] != 0;
}

/* ---- shortest float digits ---- */

/* A finite float as sign, significant digits and decimal exponent:
 * x = (neg ? -1 : 1) * d[0].d[1]d[2]... * 10^exp. No trailing zeros except "0". */
typedef struct Digits {
    char d[32];
    int n;
    int exp;
    bool neg;
} Digits;

/* Parses printf's "%e" output ("-1.2345e+08") into Digits, trimming zeros. */
static void digits_parse(const char *s, Digits *out)
{
    out->neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    out->n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && out->n < (int)sizeof out->d - 1)
            out->d[out->n++] = *s;
    out->exp = *s == 'e' ? atoi(s + 1) : 0;
    while (out->n > 1 && out->d[out->n - 1] == '0')
        out->n--;
    out->d[out->n] = '\0';
}

static bool reads_back(const char *s, double x, fuse_dtype dt)
{
    if (dt == FUSE_F16)
        return half_round(strtod(s, NULL)) == x;
    if (dt == FUSE_BF16)
        return bf16_round(strtod(s, NULL)) == x;
    if (dt == FUSE_F32)
        return strtof(s, NULL) == (float)x;
    return strtod(s, NULL) == x;
}

/* The shortest digits that read back as x in dt (float16, float32 or float64). */
static void digits_shortest(double x, fuse_dtype dt, Digits *out)
{
    char buf[64];
    int max_p = dt == FUSE_F16 || dt == FUSE_BF16 ? 4 : dt == FUSE_F32 ? 8 : 16;
    for (int p = 0; p <= max_p; p++) {
        snprintf(buf, sizeof buf, "%.*e", p, x);
        if (reads_back(buf, x, dt))
            break;
    }
    digits_parse(buf, out);
}

/* A formatted float split at the point: ip is the sign and integer part (or the
 * mantissa's leading digit), fp the fractional digits; exp for scientific. */
typedef struct Parts {
    char ip[48];
    char fp[48];
    int exp;
} Parts;

/* Splits printf output "-12.340" at the point, trimming trailing zeros of the
 * fraction. */
static void parts_split(const char *s, Parts *p)
{
    const char *dot = strchr(s, '.');
    size_t n = dot ? (size_t)(dot - s) : strlen(s);
    snprintf(p->ip, sizeof p->ip, "%.*s", (int)n, s);
    snprintf(p->fp, sizeof p->fp, "%s", dot ? dot + 1 : "");
    size_t k = strlen(p->fp);
    while (k > 0 && p->fp[k - 1] == '0')
        p->fp[--k] = '\0';
}

/* x positionally with its shortest digits, rounded to max_frac fractional digits
 * when it needs more. Meant for |x| < 1e17 (callers switch to scientific above);
 * larger values are still written safely, truncated to the buffer. */
static void float_positional(double x, fuse_dtype dt, int max_frac, Parts *p)
{
    Digits d;
    digits_shortest(x, dt, &d);
    if (d.n - 1 - d.exp > max_frac || d.exp > 30) {
        char buf[80];
        snprintf(buf, sizeof buf, "%.*f", max_frac, x);
        parts_split(buf, p);
        return;
    }
    size_t k = 0, f = 0;
    if (d.neg)
        p->ip[k++] = '-';
    if (d.exp < 0) {
        p->ip[k++] = '0';
        for (int i = 0; i < -d.exp - 1; i++)
            p->fp[f++] = '0';
        for (int i = 0; i < d.n; i++)
            p->fp[f++] = d.d[i];
    } else {
        for (int i = 0; i <= d.exp; i++)
            p->ip[k++] = i < d.n ? d.d[i] : '0';
        for (int i = d.exp + 1; i < d.n; i++)
            p->fp[f++] = d.d[i];
    }
    p->ip[k] = '\0';
    p->fp[f] = '\0';
}

/* x in scientific notation with its shortest digits, the mantissa rounded to
 * max_frac fractional digits when it needs more. */
static void float_scientific(double x, fuse_dtype dt, int max_frac, Parts *p)
{
    Digits d;
    digits_shortest(x, dt, &d);
    if (d.n - 1 > max_frac) {
        char buf[80];
        snprintf(buf, sizeof buf, "%.*e", max_frac, x);
        digits_parse(buf, &d);
    }
    snprintf(p->ip, sizeof p->ip, "%s%c", d.neg ? "-" : "", d.d[0]);
    snprintf(p->fp, sizeof p->fp, "%s", d.d + 1);
    p->exp = d.exp;
}

static int exp_width(int e)
{
    int n = 1;
    for (e = abs(e); e >= 10; e /= 10)
        n++;
    return n < 2 ? 2 : n;
}

/* ---- the element format of an array ---- */

typedef struct Format {
    Kind kind;
    fuse_dtype dt;  /* floats: the precision of shortest digits */
    bool is_exp;    /* floats in scientific notation */
    int pad_left;   /* floats: characters before the point; ints: the width */
    int pad_right;  /* floats: characters after the point */
    int precision;  /* scientific: mantissa fraction digits, zero-padded */
    int exp_digits; /* scientific: exponent digits, zero-padded */
} Format;

static int imax(int a, int b)
{
    return a > b ? a : b;
}

/* Widens f to hold finite x. */
static void format_fit_float(Format *f, double x)
{
    Parts p;
    if (f->is_exp) {
        float_scientific(x, f->dt, PRECISION, &p);
        f->precision = imax(f->precision, (int)strlen(p.fp));
        f->exp_digits = imax(f->exp_digits, exp_width(p.exp));
        f->pad_right = f->precision + 2 + f->exp_digits;
    } else {
        float_positional(x, f->dt, PRECISION, &p);
        f->pad_right = imax(f->pad_right, (int)strlen(p.fp));
    }
    f->pad_left = imax(f->pad_left, (int)strlen(p.ip));
}

/* Chooses positional or scientific and the paddings over the shown elements. */
static void format_floats(const fuse_tensor *t, const int64_t *shown, int64_t n, Format *f)
{
    double max_abs = 0;
    bool has_neg_inf = false, has_nonfinite = false;
    for (int64_t i = 0; i < n; i++) {
        double x = elem_float(t, shown[i]);
        if (isfinite(x))
            max_abs = fmax(max_abs, fabs(x));
        else
            has_nonfinite = true;
        has_neg_inf |= isinf(x) && x < 0;
    }
    f->is_exp = max_abs >= 1e8;
    for (int64_t i = 0; i < n; i++) {
        double x = elem_float(t, shown[i]);
        if (isfinite(x))
            format_fit_float(f, x);
    }
    if (has_nonfinite) {
        int offset = f->pad_right + 1;
        f->pad_left = imax(f->pad_left, 3 + (has_neg_inf ? 1 : 0) - offset);
    }
}

static void format_init(const fuse_tensor *t, const int64_t *shown, int64_t n, Format *f)
{
    memset(f, 0, sizeof *f);
    f->kind = dtype_kind(t->dtype);
    f->dt = t->dtype;
    if (f->kind == K_FLOAT) {
        format_floats(t, shown, n, f);
    } else if (f->kind == K_INT) {
        char buf[32];
        for (int64_t i = 0; i < n; i++) {
            elem_int_text(t, shown[i], buf, sizeof buf);
            f->pad_left = imax(f->pad_left, (int)strlen(buf));
        }
    }
}

/* Writes "nan", "inf" or "-inf" right-aligned in width w. */
static void word_nonfinite(double x, int w, char *out, size_t n)
{
    const char *s = isnan(x) ? "nan" : x < 0 ? "-inf" : "inf";
    snprintf(out, n, "%*s", w, s);
}

/* One array element formatted with f, into out (n bytes). */
static void word_format(const Format *f, const fuse_tensor *t, int64_t i, char *out, size_t n)
{
    if (f->kind == K_BOOL) {
        snprintf(out, n, "%s", elem_bool(t, i) ? " True" : "False");
        return;
    }
    if (f->kind == K_INT) {
        char buf[32];
        elem_int_text(t, i, buf, sizeof buf);
        snprintf(out, n, "%*s", f->pad_left, buf);
        return;
    }
    double x = elem_float(t, i);
    Parts p;
    if (!isfinite(x)) {
        word_nonfinite(x, f->pad_left + f->pad_right + 1, out, n);
    } else if (f->is_exp) {
        float_scientific(x, f->dt, PRECISION, &p);
        size_t k = strlen(p.fp);
        while (k < (size_t)f->precision && k + 1 < sizeof p.fp)
            p.fp[k++] = '0';
        p.fp[k] = '\0';
        snprintf(out, n, "%*s.%se%c%0*d", f->pad_left, p.ip, p.fp, p.exp < 0 ? '-' : '+',
                 f->exp_digits, abs(p.exp));
    } else {
        float_positional(x, f->dt, PRECISION, &p);
        snprintf(out, n, "%*s.%-*s", f->pad_left, p.ip, f->pad_right, p.fp);
    }
}

/* ---- recursive layout ---- */

typedef struct Printer {
    const fuse_tensor *t;
    Format fmt;
    bool summarize;                   /* elide the middle of long axes */
    int64_t strides[FUSE_MAX_RANK];   /* elements */
    SupBuf out;
} Printer;

/* How many positions along an axis of n are shown. */
static int64_t shown_count(int64_t n, bool summarize)
{
    return summarize && n > 2 * EDGE_ITEMS ? 2 * EDGE_ITEMS : n;
}

/* The axis position of the k-th shown element. */
static int64_t shown_pos(int64_t n, int64_t k, bool summarize)
{
    if (!summarize || n <= 2 * EDGE_ITEMS || k < EDGE_ITEMS)
        return k;
    return n - 2 * EDGE_ITEMS + k;
}

/* Appends the flat offsets of the shown elements under (axis, base) to out. */
static void collect_shown(const Printer *pr, int axis, int64_t base, int64_t *out, int64_t *k)
{
    int64_t n = pr->t->shape[axis];
    int64_t m = shown_count(n, pr->summarize);
    for (int64_t j = 0; j < m; j++) {
        int64_t off = base + shown_pos(n, j, pr->summarize) * pr->strides[axis];
        if (axis == pr->t->rank - 1)
            out[(*k)++] = off;
        else
            collect_shown(pr, axis + 1, off, out, k);
    }
}

/* Appends a word to the current row, first wrapping the line when the word would
 * pass width (never when the line holds only its indent). */
static void row_put(Printer *pr, const char *w, size_t *line_len, size_t hang, size_t width)
{
    size_t n = strlen(w);
    if (*line_len + n > width && *line_len > hang) {
        while (pr->out.len > 0 && pr->out.p[pr->out.len - 1] == ' ')
            pr->out.p[--pr->out.len] = '\0';
        sup_buf_puts(&pr->out, "\n");
        str_repeat(&pr->out, ' ', (long)hang);
        *line_len = hang;
    }
    sup_buf_puts(&pr->out, w);
    *line_len += n;
}

static void row_sep(Printer *pr, size_t *line_len)
{
    sup_buf_puts(&pr->out, " ");
    (*line_len)++;
}

/* The innermost axis: elements separated by spaces, wrapped with a hanging indent
 * of axis+1 columns, leaving room for one ']'. */
static void print_row(Printer *pr, int axis, int64_t base)
{
    int64_t n = pr->t->shape[axis];
    int64_t m = shown_count(n, pr->summarize);
    size_t hang = (size_t)axis + 1, line_len = hang;
    size_t width = (size_t)(LINE_WIDTH - axis - 1);
    char word[WORD_MAX];
    for (int64_t k = 0; k < m; k++) {
        if (k == EDGE_ITEMS && m < n) {
            row_put(pr, "...", &line_len, hang, width);
            row_sep(pr, &line_len);
        }
        int64_t off = base + shown_pos(n, k, pr->summarize) * pr->strides[axis];
        word_format(&pr->fmt, pr->t, off, word, sizeof word);
        row_put(pr, word, &line_len, hang, width);
        if (k + 1 < m)
            row_sep(pr, &line_len);
    }
}

/* Ends one block of an outer axis and indents the next: rank-axis-1 newlines. */
static void block_break(Printer *pr, int axis)
{
    str_repeat(&pr->out, '\n', pr->t->rank - axis - 1);
    str_repeat(&pr->out, ' ', axis + 1);
}

static void print_axis(Printer *pr, int axis, int64_t base)
{
    sup_buf_puts(&pr->out, "[");
    if (axis == pr->t->rank - 1) {
        print_row(pr, axis, base);
    } else {
        int64_t n = pr->t->shape[axis];
        int64_t m = shown_count(n, pr->summarize);
        for (int64_t k = 0; k < m; k++) {
            if (k > 0)
                block_break(pr, axis);
            if (k == EDGE_ITEMS && m < n) {
                sup_buf_puts(&pr->out, "...");
                block_break(pr, axis);
            }
            int64_t pos = shown_pos(n, k, pr->summarize);
            print_axis(pr, axis + 1, base + pos * pr->strides[axis]);
        }
    }
    sup_buf_puts(&pr->out, "]");
}

/* ---- scalars ---- */

/* A float scalar like NumPy's scalar str(): positional with at least one
 * fractional digit between 1e-4 and 1e16, else scientific without padding. */
static void scalar_float(double x, fuse_dtype dt, SupBuf *s)
{
    char buf[WORD_MAX];
    Parts p;
    double a = fabs(x);
    if (!isfinite(x)) {
        word_nonfinite(x, 0, buf, sizeof buf);
    } else if (a == 0 || (a >= 1e-4 && a < 1e16)) {
        float_positional(x, dt, 64, &p);
        snprintf(buf, sizeof buf, "%s.%s", p.ip, p.fp[0] ? p.fp : "0");
    } else {
        float_scientific(x, dt, 64, &p);
        snprintf(buf, sizeof buf, "%s%s%se%c%02d", p.ip, p.fp[0] ? "." : "", p.fp,
                 p.exp < 0 ? '-' : '+', abs(p.exp));
    }
    sup_buf_puts(s, buf);
}

static void scalar_text(const fuse_tensor *t, SupBuf *s)
{
    char buf[32];
    switch (dtype_kind(t->dtype)) {
    case K_FLOAT:
        scalar_float(elem_float(t, 0), t->dtype, s);
        break;
    case K_INT:
        elem_int_text(t, 0, buf, sizeof buf);
        sup_buf_puts(s, buf);
        break;
    default:
        sup_buf_puts(s, elem_bool(t, 0) ? "True" : "False");
        break;
    }
}

/* ---- entry points ---- */

/* Lays out a non-empty array of rank >= 1 into pr->out. */
static void array_text(Printer *pr, int64_t count)
{
    const fuse_tensor *t = pr->t;
    pr->summarize = count > THRESHOLD;
    int64_t n_shown = 1;
    for (int a = t->rank - 1; a >= 0; a--) {
        pr->strides[a] = a == t->rank - 1 ? 1 : pr->strides[a + 1] * t->shape[a + 1];
        n_shown *= shown_count(t->shape[a], pr->summarize);
    }
    int64_t *shown = malloc((size_t)n_shown * sizeof *shown);
    if (!shown) {
        pr->out.is_oom = true;
        return;
    }
    int64_t k = 0;
    collect_shown(pr, 0, 0, shown, &k);
    format_init(t, shown, k, &pr->fmt);
    free(shown);
    print_axis(pr, 0, 0);
}

char *cli_tensor_text(const fuse_tensor *t)
{
    if (!t || dtype_kind(t->dtype) == K_INVALID || t->rank < 0 || t->rank > FUSE_MAX_RANK)
        return NULL;
    Printer pr = {.t = t};
    int64_t count = 1;
    for (int a = 0; a < t->rank; a++)
        count *= t->shape[a];
    if (t->rank == 0)
        scalar_text(t, &pr.out);
    else if (count == 0)
        sup_buf_puts(&pr.out, "[]");
    else
        array_text(&pr, count);
    if (pr.out.is_oom) {
        free(pr.out.p);
        return NULL;
    }
    return pr.out.p;
}

void cli_shape_text(const fuse_tensor *t, char *buf, size_t n)
{
    SupBuf s = {0};
    char num[32];
    sup_buf_puts(&s, "(");
    for (int a = 0; a < t->rank; a++) {
        snprintf(num, sizeof num, "%s%" PRId64, a ? ", " : "", t->shape[a]);
        sup_buf_puts(&s, num);
    }
    sup_buf_puts(&s, t->rank == 1 ? ",)" : ")");
    snprintf(buf, n, "%s", s.is_oom ? "(?)" : s.p);
    free(s.p);
}

fuse_status cli_print_export(FILE *f, const char *name, const fuse_tensor *t)
{
    char shape[FUSE_MAX_RANK * 24 + 8];
    if (dtype_kind(t->dtype) == K_INVALID)
        return FUSE_E_ARG;
    char *text = cli_tensor_text(t);
    if (!text)
        return FUSE_E_NOMEM;
    cli_shape_text(t, shape, sizeof shape);
    int rc = fprintf(f, "# %s shape=%s dtype=%s\n%s\n", name, shape,
                     fuse_dtype_name(t->dtype), text);
    free(text);
    return rc < 0 ? FUSE_E_IO : FUSE_OK;
}

/* ---- log messages ---- */

void cli_log(int level, const char *msg, void *user)
{
    if (level != FUSE_LEVEL_ERROR && level != FUSE_LEVEL_WARNING)
        return;
    fflush(stdout);
    char *line = sup_strprintf("%s: %s: %s\n", (const char *)user,
                               level == FUSE_LEVEL_ERROR ? "error" : "warning", msg);
    if (line)
        cli_print_diags(stderr, line);
    else
        fprintf(stderr, "%s: %s: %s\n", (const char *)user,
                level == FUSE_LEVEL_ERROR ? "error" : "warning", msg);
    free(line);
}

/* ---- diagnostics in colour ---- */

/* The escapes clang uses: bold locations and messages, a bold colour per
 * severity, a bold green caret. */
#define SGR_RESET "\033[0m"
#define SGR_BOLD "\033[1m"
#define SGR_ERROR "\033[0;1;31m"
#define SGR_WARNING "\033[0;1;35m"
#define SGR_NOTE "\033[0;1;36m"
#define SGR_CARET "\033[0;1;32m"

static CliColor color_choice = CLI_COLOR_AUTO;

bool cli_color_parse(const char *when, CliColor *out)
{
    static const char *const names[] = {"auto", "always", "never"};
    for (int i = 0; i < 3; i++)
        if (when && strcmp(when, names[i]) == 0) {
            *out = (CliColor)i;
            return true;
        }
    return false;
}

void cli_color_set(CliColor when)
{
    color_choice = when;
}

bool cli_color_stderr(void)
{
    if (color_choice != CLI_COLOR_AUTO)
        return color_choice == CLI_COLOR_ALWAYS;
    const char *no_color = getenv("NO_COLOR"), *term = getenv("TERM");
    if (no_color && *no_color)
        return false;
    return isatty(STDERR_FILENO) && !(term && strcmp(term, "dumb") == 0);
}

/* Where a line's "error: ", "warning: " or "note: " starts (at the line's start or
 * after ": "), with its escape; NULL for any other line. */
static const char *severity_at(const char *line, size_t n, const char **sgr)
{
    static const struct {
        const char *word, *sgr;
    } SEVERITIES[] = {{"error: ", SGR_ERROR}, {"warning: ", SGR_WARNING}, {"note: ", SGR_NOTE}};
    for (size_t at = 0; at < n; at++) {
        if (at > 0 && (at < 2 || line[at - 2] != ':' || line[at - 1] != ' '))
            continue;
        for (size_t k = 0; k < sizeof SEVERITIES / sizeof SEVERITIES[0]; k++) {
            size_t len = strlen(SEVERITIES[k].word);
            if (len <= n - at && memcmp(line + at, SEVERITIES[k].word, len) == 0) {
                *sgr = SEVERITIES[k].sgr;
                return line + at;
            }
        }
    }
    return NULL;
}

/* A caret line: blanks, then '^' and '~' only. */
static bool is_caret_line(const char *line, size_t n)
{
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == n || line[i] != '^')
        return false;
    while (i < n && (line[i] == '^' || line[i] == '~'))
        i++;
    return i == n;
}

static void color_line(SupBuf *b, const char *line, size_t n)
{
    const char *sgr = NULL, *sev = severity_at(line, n, &sgr);
    if (sev) {
        const char *colon = strchr(sev, ':');
        size_t pre = (size_t)(sev - line), word = (size_t)(colon + 1 - sev);
        if (pre) {
            sup_buf_puts(b, SGR_BOLD);
            sup_buf_append(b, line, pre);
        }
        sup_buf_puts(b, sgr);
        sup_buf_append(b, sev, word);
        sup_buf_puts(b, SGR_RESET SGR_BOLD);
        sup_buf_append(b, sev + word, n - pre - word);
        sup_buf_puts(b, SGR_RESET);
    } else if (is_caret_line(line, n)) {
        size_t blank = strspn(line, " \t");
        sup_buf_append(b, line, blank);
        sup_buf_puts(b, SGR_CARET);
        sup_buf_append(b, line + blank, n - blank);
        sup_buf_puts(b, SGR_RESET);
    } else {
        sup_buf_append(b, line, n);
    }
}

char *cli_color_diags(const char *text)
{
    SupBuf b = {0};
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        color_line(&b, p, n);
        p += n;
        if (*p == '\n')
            sup_buf_putc(&b, *p++);
    }
    return sup_buf_finish(&b);
}

void cli_print_diags(FILE *f, const char *text)
{
    char *colored = f == stderr && cli_color_stderr() ? cli_color_diags(text) : NULL;
    fputs(colored ? colored : text, f);
    free(colored);
}
