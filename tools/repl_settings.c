/*
 * repl_settings.c: the settings `:set` knows, as data: every key, and the values
 * of those that take one of a list. `:set` checks against these lists (repl.c)
 * and Tab completes from them (repl_complete.c), so the two cannot disagree. The
 * order of each list is that of the matching enum of fusejit.h.
 */
#include "repl.h"

const char *const REPL_MODES[3] = {"single", "fixpoint", "demand"};
const char *const REPL_STRATEGIES[2] = {"synchronous", "semi_naive"};
const char *const REPL_PROJECTIONS[2] = {"exact", "monte_carlo"};
const char *const REPL_PRECISIONS[4] = {"fp32", "fp64", "bf16", "fp16"};
const char *const REPL_DEVICES[3] = {"auto", "cpu", "cuda"};
const char *const REPL_SWITCHES[2] = {"off", "on"};
const char *const REPL_SYNTAXES[2] = {"legacy", "v2"};

#define LIST(a) a, sizeof a / sizeof a[0]

const ReplSetting REPL_SETTINGS[] = {
    {"mode", LIST(REPL_MODES), "single, fixpoint or demand"},
    {"strategy", LIST(REPL_STRATEGIES), "synchronous or semi_naive"},
    {"projection", LIST(REPL_PROJECTIONS), "exact or monte_carlo"},
    {"precision", LIST(REPL_PRECISIONS), "fp32, fp64, bf16 or fp16"},
    {"device", LIST(REPL_DEVICES), "auto, cpu or cuda"},
    {"threads", NULL, 0, "a count >= 0"},
    {"seed", NULL, 0, "an integer >= 0"},
    {"samples", NULL, 0, "a count >= 0"},
    {"max_iters", NULL, 0, "a count >= 0"},
    {"tol", NULL, 0, "a number >= 0"},
    {"sinks", LIST(REPL_SWITCHES), "on or off"},
    {"cache", LIST(REPL_SWITCHES), "on or off"},
    {"max_memory", NULL, 0, "a size such as 4G (0 or none: no cap)"},
    {"parser", LIST(REPL_SYNTAXES), "legacy or v2"},
    {"param", NULL, 0, "NAME=NUMBER"},
    {"weights", NULL, 0, "a weights manifest FILE.json, or none"},
};

const size_t REPL_N_SETTINGS = sizeof REPL_SETTINGS / sizeof REPL_SETTINGS[0];
