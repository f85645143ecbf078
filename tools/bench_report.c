/*
 * bench_report.c: fuse-bench's reports: the table on stdout and the warnings
 * below it, the same table as Markdown, a bar chart as SVG (written by hand),
 * the results as JSON (jansson, so always valid: a missing number is null) and
 * the comparison with an earlier JSON file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bench.h"

void bench_result_free(BenchResult *r)
{
    free(r->times);
    free(r->base_times);
    free(r->eq_text);
    r->times = r->base_times = NULL;
    r->eq_text = NULL;
}

/* ---- the cells of a row, shared by the table and Markdown ---- */

typedef struct RowCells {
    char compile[32], first[32], mean_sd[64], median[32], range[64], runs[16], gflops[16];
    char base[32], ratio[16], rss[32];
} RowCells;

static double gflops_of(const BenchResult *r)
{
    return r->flops > 0 && r->stats.median > 0 ? r->flops / (r->stats.median * 1e6) : NAN;
}

/* fuse-jit speed over the baseline's: the baseline's median time over ours. */
static double ratio_of(const BenchResult *r)
{
    return r->ok && r->has_base && r->stats.median > 0 ? r->base.median / r->stats.median : NAN;
}

static void cells_of(const BenchResult *r, RowCells *c)
{
    memset(c, 0, sizeof *c);
    const BenchStats *s = &r->stats;
    BenchUnit u = bench_unit_for(s->mean);
    int d = bench_unit_decimals(u, s->mean);
    char a[32], b[32];
    bench_format_time(c->compile, sizeof c->compile, r->compile_ms);
    bench_format_time(c->first, sizeof c->first, r->first_ms);
    if (isnan(s->stddev))
        bench_format_in(c->mean_sd, sizeof c->mean_sd, s->mean, u, d);
    else
        snprintf(c->mean_sd, sizeof c->mean_sd, "%s ± %s", bench_format_in(a, 32, s->mean, u, d),
                 bench_format_in(b, 32, s->stddev, u, d));
    bench_format_in(c->median, sizeof c->median, s->median, u, d);
    snprintf(c->range, sizeof c->range, "%s … %s", bench_format_in(a, 32, s->min, u, d),
             bench_format_in(b, 32, s->max, u, d));
    snprintf(c->runs, sizeof c->runs, "%d", s->n);
    double g = gflops_of(r);
    snprintf(c->gflops, sizeof c->gflops, isnan(g) ? "-" : "%.1f", g);
    if (r->has_base)
        bench_format_time(c->base, sizeof c->base, r->base.median);
    else
        snprintf(c->base, sizeof c->base, "-");
    double q = ratio_of(r);
    snprintf(c->ratio, sizeof c->ratio, isnan(q) ? "-" : "%.2f", q);
    if (r->peak_rss_kib > 0)
        bench_format_kib(c->rss, sizeof c->rss, r->peak_rss_kib);
    else
        snprintf(c->rss, sizeof c->rss, "-");
}

/* ---- the table ---- */

int bench_display_width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

void bench_put_padded(FILE *f, const char *s, int width, bool right)
{
    int pad = width - bench_display_width(s);
    for (int i = 0; right && i < pad; i++)
        fputc(' ', f);
    fputs(s, f);
    for (int i = 0; !right && i < pad; i++)
        fputc(' ', f);
}

enum { W_NAME = 20, W_TIME = 10, W_MEAN = 22, W_RANGE = 22, W_RUNS = 5, W_GF = 8, W_RATIO = 6 };

static void put_cell(const char *s, int width)
{
    fputc(' ', stdout);
    bench_put_padded(stdout, s, width, true);
}

void bench_print_header(const BenchOpts *o)
{
    bench_put_padded(stdout, "workload", W_NAME, false);
    put_cell("compile", W_TIME);
    put_cell("first", W_TIME);
    put_cell("mean ± σ", W_MEAN);
    put_cell("median", W_TIME);
    put_cell("min … max", W_RANGE);
    put_cell("runs", W_RUNS);
    put_cell("GFLOP/s", W_GF);
    if (o->baseline) {
        put_cell("OpenBLAS", W_TIME);
        put_cell("ratio", W_RATIO);
    }
    if (o->memory)
        put_cell("peak RSS", W_TIME);
    fputc('\n', stdout);
    fflush(stdout);
}

void bench_print_row(const BenchResult *r, const BenchOpts *o)
{
    bench_put_padded(stdout, r->name, W_NAME, false);
    if (!r->ok) {
        fputs(" failed\n", stdout);
        fflush(stdout);
        return;
    }
    RowCells c;
    cells_of(r, &c);
    put_cell(c.compile, W_TIME);
    put_cell(c.first, W_TIME);
    put_cell(c.mean_sd, W_MEAN);
    put_cell(c.median, W_TIME);
    put_cell(c.range, W_RANGE);
    put_cell(c.runs, W_RUNS);
    put_cell(c.gflops, W_GF);
    if (o->baseline) {
        put_cell(c.base, W_TIME);
        put_cell(c.ratio, W_RATIO);
    }
    if (o->memory)
        put_cell(c.rss, W_TIME);
    fputc('\n', stdout);
    if (r->eq_text)
        fputs(r->eq_text, stdout);
    fflush(stdout);
}

int bench_print_warnings(const BenchResult *rs, int n)
{
    int count = 0;
    for (int i = 0; i < n; i++) {
        const BenchResult *r = &rs[i];
        char t[32];
        if (!r->ok)
            continue;
        if (r->stats.n_outliers > 0) {
            printf("Warning: %s: %d of %d runs slower than Q3 + 1.5 IQR (%s): statistical "
                   "outliers, perhaps other programs or a busy machine; try more --warmup or "
                   "--repeat, on a quieter machine.\n",
                   r->name, r->stats.n_outliers, r->stats.n,
                   bench_format_time(t, sizeof t, r->stats.q3 + 1.5 * (r->stats.q3 - r->stats.q1)));
            count++;
        }
        if (r->stats.first_slow) {
            printf("Warning: %s: the first timed run (%s) took over twice the median of the "
                   "others: caches were not warm yet; try more --warmup.\n",
                   r->name, bench_format_time(t, sizeof t, r->times[0]));
            count++;
        }
    }
    return count;
}

/* ---- Markdown ---- */

/* A table cell: '|' would end it. */
static void md_cell(FILE *f, const char *s)
{
    fputs("| ", f);
    for (; *s; s++)
        fputs(*s == '|' ? "\\|" : (char[]){*s, '\0'}, f);
    fputc(' ', f);
}

int bench_write_markdown(const char *path, const BenchResult *rs, int n, const BenchOpts *o)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "fuse-bench: error: cannot write %s\n", path);
        return 1;
    }
    fputs("| workload | compile | first | mean ± σ | median | min … max | runs | GFLOP/s |", f);
    fputs(o->baseline ? " OpenBLAS | ratio |" : "", f);
    fputs(o->memory ? " peak RSS |\n" : "\n", f);
    fputs("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", f);
    fputs(o->baseline ? " ---: | ---: |" : "", f);
    fputs(o->memory ? " ---: |\n" : "\n", f);
    for (int i = 0; i < n; i++) {
        RowCells c;
        cells_of(&rs[i], &c);
        md_cell(f, rs[i].name);
        if (!rs[i].ok) {
            fputs("| failed |\n", f);
            continue;
        }
        const char *cells[] = {c.compile, c.first, c.mean_sd, c.median, c.range, c.runs, c.gflops};
        for (size_t k = 0; k < sizeof cells / sizeof cells[0]; k++)
            md_cell(f, cells[k]);
        if (o->baseline) {
            md_cell(f, c.base);
            md_cell(f, c.ratio);
        }
        if (o->memory)
            md_cell(f, c.rss);
        fputs("|\n", f);
    }
    fprintf(f, "\n%d timed runs after %d warm-up runs, %d threads (0: every core)%s%s.\n",
            o->repeat, o->warmup, o->threads,
            o->baseline ? "; ratio: fuse-jit speed / OpenBLAS speed (medians)" : "",
            o->memory ? "; peak RSS: the workload's child process (ru_maxrss)" : "");
    return fclose(f) == 0 ? 0 : 1;
}

/* ---- SVG ---- */

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* The decades the chart spans: [*lo, *hi] in log10(ms), at least one. */
static void svg_range(const BenchResult *rs, int n, double *lo, double *hi)
{
    double mn = INFINITY, mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        double v[2] = {rs[i].ok ? rs[i].stats.median : NAN,
                       rs[i].ok && rs[i].has_base ? rs[i].base.median : NAN};
        for (int k = 0; k < 2; k++)
            if (v[k] > 0) {
                mn = fmin(mn, v[k]);
                mx = fmax(mx, v[k]);
            }
    }
    if (!isfinite(mn)) {
        mn = 1.0;
        mx = 10.0;
    }
    *lo = floor(log10(mn) - 0.3); /* the shortest bar still shows */
    *hi = ceil(log10(mx));
    if (*hi <= *lo)
        *hi = *lo + 1;
}

enum { SVG_W = 860, SVG_LEFT = 170, SVG_RIGHT = 90, SVG_TOP = 60, SVG_BAR = 14, SVG_GAP = 10 };

static void svg_bar(FILE *f, double ms, double lo, double hi, double y, const char *color)
{
    double span = SVG_W - SVG_LEFT - SVG_RIGHT;
    double len = fmax(2.0, (log10(ms) - lo) / (hi - lo) * span);
    char t[32];
    fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", SVG_LEFT,
            y, len, SVG_BAR, color);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">", SVG_LEFT + len + 4,
            y + SVG_BAR - 3);
    xml_text(f, bench_format_time(t, sizeof t, ms));
    fputs("</text>\n", f);
}

int bench_write_svg(const char *path, const BenchResult *rs, int n, const BenchOpts *o)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "fuse-bench: error: cannot write %s\n", path);
        return 1;
    }
    int bars = o->baseline ? 2 : 1;
    int group = bars * SVG_BAR + SVG_GAP;
    int height = SVG_TOP + n * group + 40;
    double lo, hi;
    svg_range(rs, n, &lo, &hi);
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
            SVG_W, height, SVG_W, height);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", SVG_W, height);
    fputs("<text x=\"10\" y=\"20\" font-size=\"14\">fuse-bench: median time per workload "
          "(log scale; shorter is faster)</text>\n",
          f);
    fprintf(f,
            "<rect x=\"%d\" y=\"30\" width=\"12\" height=\"12\" fill=\"#4e79a7\"/>"
            "<text x=\"%d\" y=\"40\" font-size=\"12\">fuse-jit</text>\n",
            SVG_LEFT, SVG_LEFT + 16);
    if (o->baseline)
        fprintf(f,
                "<rect x=\"%d\" y=\"30\" width=\"12\" height=\"12\" fill=\"#f28e2b\"/>"
                "<text x=\"%d\" y=\"40\" font-size=\"12\">OpenBLAS</text>\n",
                SVG_LEFT + 90, SVG_LEFT + 106);
    double span = SVG_W - SVG_LEFT - SVG_RIGHT;
    for (double d = lo; d <= hi + 1e-9; d += 1.0) {
        double x = SVG_LEFT + (d - lo) / (hi - lo) * span, ms = pow(10.0, d);
        char t[32];
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ccc\"/>\n", x,
                SVG_TOP - 6, x, height - 30);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">", x,
                height - 15);
        xml_text(f, bench_format_in(t, sizeof t, ms, bench_unit_for(ms), 0));
        fputs("</text>\n", f);
    }
    for (int i = 0; i < n; i++) {
        double y = SVG_TOP + i * group;
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">", SVG_LEFT - 8,
                y + SVG_BAR - 2);
        xml_text(f, rs[i].name);
        fputs("</text>\n", f);
        if (rs[i].ok && rs[i].stats.median > 0)
            svg_bar(f, rs[i].stats.median, lo, hi, y, "#4e79a7");
        if (rs[i].ok && rs[i].has_base && rs[i].base.median > 0)
            svg_bar(f, rs[i].base.median, lo, hi, y + SVG_BAR, "#f28e2b");
    }
    fputs("</svg>\n", f);
    return fclose(f) == 0 ? 0 : 1;
}

/* ---- JSON ---- */

/* A number, or null when it is not finite (JSON has no NaN). */
static json_t *json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *json_times(const double *t, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, json_num(t[i]));
    return a;
}

static void json_put_stats(json_t *o, const BenchStats *s, const double *t, int n)
{
    json_object_set_new(o, "runs", json_integer(s->n));
    json_object_set_new(o, "times_ms", json_times(t, n));
    json_object_set_new(o, "mean_ms", json_num(s->mean));
    json_object_set_new(o, "stddev_ms", json_num(s->stddev));
    json_object_set_new(o, "median_ms", json_num(s->median));
    json_object_set_new(o, "min_ms", json_num(s->min));
    json_object_set_new(o, "max_ms", json_num(s->max));
    json_object_set_new(o, "q1_ms", json_num(s->q1));
    json_object_set_new(o, "q3_ms", json_num(s->q3));
    json_object_set_new(o, "outliers", json_integer(s->n_outliers));
    json_object_set_new(o, "first_run_slow", json_boolean(s->first_slow));
}

static json_t *json_result(const BenchResult *r, const BenchOpts *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(r->name));
    json_object_set_new(j, "ok", json_boolean(r->ok));
    if (!r->ok)
        return j;
    json_object_set_new(j, "parse_ms", json_num(r->parse_ms));
    json_object_set_new(j, "compile_ms", json_num(r->compile_ms));
    json_object_set_new(j, "first_ms", json_num(r->first_ms));
    json_put_stats(j, &r->stats, r->times, r->n_times);
    json_object_set_new(j, "flops", r->flops > 0 && r->flops < 0x1p53 && r->flops == floor(r->flops)
                                        ? json_integer((json_int_t)r->flops) /* a count */
                                        : r->flops > 0 ? json_real(r->flops) : json_null());
    json_object_set_new(j, "gflops", json_num(gflops_of(r)));
    if (o->memory)
        json_object_set_new(j, "peak_rss_kib", json_integer(r->peak_rss_kib));
    if (r->has_base) {
        json_t *b = json_object();
        json_object_set_new(b, "name", json_string(o->baseline));
        json_put_stats(b, &r->base, r->base_times, r->n_base);
        if (o->memory)
            json_object_set_new(b, "peak_rss_kib", json_integer(r->base_rss_kib));
        json_object_set_new(j, "baseline", b);
        json_object_set_new(j, "ratio", json_num(ratio_of(r)));
    }
    return j;
}

int bench_write_json(const char *path, const BenchResult *rs, int n, const BenchOpts *o)
{
    json_t *root = json_object(), *results = json_array();
    json_object_set_new(root, "tool", json_string("fuse-bench"));
    json_object_set_new(root, "version", json_string(fuse_version_string()));
    json_object_set_new(root, "repeat", json_integer(o->repeat));
    json_object_set_new(root, "warmup", json_integer(o->warmup));
    json_object_set_new(root, "threads", json_integer(o->threads));
    json_object_set_new(root, "baseline", o->baseline ? json_string(o->baseline) : json_null());
    for (int i = 0; i < n; i++)
        json_array_append_new(results, json_result(&rs[i], o));
    json_object_set_new(root, "results", results);
    int rc = json_dump_file(root, path, JSON_INDENT(1) | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (rc != 0)
        fprintf(stderr, "fuse-bench: error: cannot write %s\n", path);
    return rc != 0;
}

/* ---- --compare OLD.json ---- */

/* The entry named `name` of the old results array, or NULL. */
static json_t *old_entry(json_t *results, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(results, i, e)
    {
        const char *s = json_string_value(json_object_get(e, "name"));
        if (s && strcmp(s, name) == 0)
            return e;
    }
    return NULL;
}

static void print_one_compare(const BenchResult *r, json_t *e)
{
    double old_med = json_number_value(json_object_get(e, "median_ms"));
    char a[32], b[32];
    bench_put_padded(stdout, r->name, W_NAME, false);
    if (!json_is_number(json_object_get(e, "median_ms")) || old_med <= 0 || !r->ok ||
        r->stats.median <= 0) {
        printf(" no time on one side\n");
        return;
    }
    printf(" %s → %s", bench_format_time(a, sizeof a, old_med),
           bench_format_time(b, sizeof b, r->stats.median));
    double q = old_med / r->stats.median;
    printf("  %.2fx %s", q >= 1.0 ? q : 1.0 / q, q >= 1.0 ? "faster" : "slower");
    /* both σ known: a change under their combined size is noise */
    json_t *old_sd = json_object_get(e, "stddev_ms"), *old_mean = json_object_get(e, "mean_ms");
    if (json_is_number(old_sd) && json_is_number(old_mean) && isfinite(r->stats.stddev)) {
        double sd = hypot(json_number_value(old_sd), r->stats.stddev);
        if (fabs(json_number_value(old_mean) - r->stats.mean) < sd)
            printf(" (within noise: the means differ by less than their combined σ)");
    }
    putchar('\n');
}

/* The old --json file's root, or NULL after reporting why it is unusable. */
static json_t *load_old(const char *old_json)
{
    json_error_t jerr;
    json_t *root = json_load_file(old_json, 0, &jerr);
    if (root && json_is_array(json_object_get(root, "results")))
        return root;
    fprintf(stderr, "fuse-bench: error: %s: %s\n", old_json,
            root ? "no \"results\" array (not a fuse-bench --json file)" : jerr.text);
    json_decref(root);
    return NULL;
}

int bench_check_compare(const char *old_json)
{
    json_t *root = load_old(old_json);
    json_decref(root);
    return root == NULL;
}

int bench_print_compare(const char *old_json, const BenchResult *rs, int n)
{
    json_t *root = load_old(old_json);
    if (!root)
        return 1;
    json_t *results = json_object_get(root, "results");
    printf("\nCompared with %s (medians; faster: this run is faster):\n", old_json);
    int missing = 0;
    for (int i = 0; i < n; i++) {
        json_t *e = old_entry(results, rs[i].name);
        if (e)
            print_one_compare(&rs[i], e);
        else
            missing++;
    }
    for (int i = 0, k = 0; i < n; i++)
        if (!old_entry(results, rs[i].name))
            printf("%s%s", k++ ? ", " : "not in the old run: ", rs[i].name);
    if (missing)
        putchar('\n');
    size_t j;
    json_t *e;
    int k = 0;
    json_array_foreach(results, j, e)
    {
        const char *s = json_string_value(json_object_get(e, "name"));
        bool found = false;
        for (int i = 0; s && i < n && !found; i++)
            found = strcmp(rs[i].name, s) == 0;
        if (s && !found)
            printf("%s%s", k++ ? ", " : "only in the old run: ", s);
    }
    if (k)
        putchar('\n');
    json_decref(root);
    return 0;
}
