/*
 * tensor.c: dtype facts, 64-byte aligned buffers and conversions between float32
 * and the other element types of host tensors.
 *
 * Aligned buffers come from aligned_alloc, so memory from io_alloc_aligned may be
 * released with either io_free_aligned or plain free(); the readers rely on this to
 * hand out tensor data that is both aligned for the kernels and free()-able by the
 * host, as runtime.h promises.
 *
 * float32 -> integer conversion truncates toward zero (as a C cast and NumPy's
 * astype do) but saturates at the type's range and maps NaN to 0, so no input value
 * reaches the undefined behaviour of an out-of-range cast. Bool is "nonzero".
 *
 * float16 is converted by hand with bit operations (C17 has no half type): every
 * half is exactly a float, and float -> half rounds to nearest even, overflows to
 * infinity and keeps NaN a NaN, as NumPy's astype(np.float16) does.
 */
#include "io.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct DtypeInfo {
    size_t size;      /* bytes per element */
    const char *name; /* NumPy spelling */
} DtypeInfo;

static const DtypeInfo dtype_info[] = {
    [FUSE_F32] = {4, "float32"}, [FUSE_F64] = {8, "float64"}, [FUSE_I8] = {1, "int8"},
    [FUSE_I16] = {2, "int16"},   [FUSE_I32] = {4, "int32"},   [FUSE_I64] = {8, "int64"},
    [FUSE_U8] = {1, "uint8"},    [FUSE_U16] = {2, "uint16"},  [FUSE_U32] = {4, "uint32"},
    [FUSE_U64] = {8, "uint64"},  [FUSE_BOOL] = {1, "bool"},    [FUSE_F16] = {2, "float16"},
    [FUSE_BF16] = {2, "bfloat16"},
};
static_assert(sizeof dtype_info / sizeof dtype_info[0] == FUSE_DTYPE_COUNT,
              "dtype_info must cover every fuse_dtype");

static int dtype_valid(fuse_dtype dt)
{
    return (int)dt >= 0 && dt < FUSE_DTYPE_COUNT;
}

FUSE_API size_t fuse_dtype_size(fuse_dtype dtype)
{
    return dtype_valid(dtype) ? dtype_info[dtype].size : 0;
}

FUSE_API const char *fuse_dtype_name(fuse_dtype dtype)
{
    return dtype_valid(dtype) ? dtype_info[dtype].name : "invalid dtype";
}

/* Whether the n bytes at p (64-byte aligned, n a multiple of 64) are all 0. */
static bool is_all_zero(const unsigned char *p, size_t n)
{
    const uint64_t *w = (const uint64_t *)(const void *)p;
    uint64_t any = 0;
    for (size_t i = 0; i < n / sizeof *w; i++)
        any |= w[i];
    return any == 0;
}

/* Below this, a buffer is simply memset. */
#define IO_LAZY_ZERO_MIN ((size_t)1 << 20)
#define IO_ZERO_PAGE 4096

/* Zeroes a large block page by page, writing only the pages that are not zero
 * already. Memory fresh from the system (a large block is mmap'd) reads as
 * zeros without taking pages of its own: reading maps the kernel's shared zero
 * page, writing would fault in a private page. So a buffer that a run fills
 * later, or never uses, costs no resident memory until then. */
static void zero_by_reading(unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t to_page = IO_ZERO_PAGE - (size_t)((uintptr_t)(p + i) % IO_ZERO_PAGE);
        size_t len = n - i < to_page ? n - i : to_page;
        if (!is_all_zero(p + i, len))
            memset(p + i, 0, len);
        i += len;
    }
}

/* As zero_by_reading, without touching the whole pages inside the block: the
 * kernel drops them (malloc's memory is private and anonymous, so they read as
 * zeros afterwards and take no memory until written). Reading each page first
 * costs a fault per page before the write's own fault, about 10 ms per 64 MiB
 * buffer. */
static void zero_lazily(unsigned char *p, size_t n)
{
    uintptr_t begin = ((uintptr_t)p + IO_ZERO_PAGE - 1) & ~(uintptr_t)(IO_ZERO_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + n) & ~(uintptr_t)(IO_ZERO_PAGE - 1);
    if (end <= begin || madvise((void *)begin, end - begin, MADV_DONTNEED) != 0) {
        zero_by_reading(p, n);
        return;
    }
    memset(p, 0, begin - (uintptr_t)p);
    memset((void *)end, 0, (uintptr_t)p + n - end);
}

void *io_alloc_aligned(size_t n)
{
    if (n > SIZE_MAX - IO_ALIGN)
        return NULL;
    /* aligned_alloc wants a multiple of the alignment; 0 bytes still get a block. */
    size_t rounded = n == 0 ? IO_ALIGN : (n + IO_ALIGN - 1) / IO_ALIGN * IO_ALIGN;
    void *p = aligned_alloc(IO_ALIGN, rounded);
    if (p && rounded >= IO_LAZY_ZERO_MIN)
        zero_lazily(p, rounded);
    else if (p)
        memset(p, 0, rounded);
    return p;
}

void io_free_aligned(void *p)
{
    free(p);
}

int64_t io_shape_count(int rank, const int64_t *shape)
{
    if (rank < 0 || rank > FUSE_MAX_RANK || (rank > 0 && !shape))
        return -1;
    int64_t count = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return -1;
        if (shape[i] > 0 && count > INT64_MAX / shape[i])
            return -1;
        count *= shape[i];
    }
    return count;
}

/* IEEE binary16 bits as a float (exact). A half is 1 sign, 5 exponent (bias 15)
 * and 10 mantissa bits; a float has 8 exponent bits (bias 127) and 23. */
float io_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | mant << 13; /* inf, or NaN with its payload */
    } else if (exp != 0) {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    } else if (mant == 0) {
        bits = sign; /* +-0 */
    } else {
        /* Subnormal, mant * 2^-24: shift the leading 1 up to the implicit bit,
         * lowering the exponent once per shift. */
        int e = 1;
        while (!(mant & 0x400)) {
            mant <<= 1;
            e--;
        }
        bits = sign | (uint32_t)(e + 127 - 15) << 23 | (mant & 0x3FF) << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* sig >> shift rounded to nearest, ties to even (1 <= shift < 32). */
static uint32_t shift_round_even(uint32_t sig, int shift)
{
    uint32_t q = sig >> shift, rem = sig & ((UINT32_C(1) << shift) - 1);
    uint32_t half = UINT32_C(1) << (shift - 1);
    return q + (rem > half || (rem == half && (q & 1)));
}

/* float x as IEEE binary16 bits, rounded to nearest even. Too large (after
 * rounding) is infinity, too small is a subnormal or +-0, NaN stays a quiet NaN
 * with the top of its payload. */
uint16_t io_float_to_half(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    int exp = (int)((bits >> 23) & 0xFF);
    uint32_t mant = bits & 0x7FFFFF;
    if (exp == 0xFF)
        return sign | 0x7C00 | (mant ? 0x200 | mant >> 13 : 0);
    int e = exp - 127 + 15; /* the half's biased exponent */
    if (e >= 0x1F)
        return sign | 0x7C00;
    if (e > 0) {
        /* A carry out of the mantissa bumps the exponent, up to infinity (0x7C00). */
        return sign | (uint16_t)(((uint32_t)e << 10) + shift_round_even(mant, 13));
    }
    if (e < -10)
        return sign; /* below half the smallest subnormal, 2^-25: rounds to 0 */
    /* Subnormal: the 24-bit significand in units of 2^-24; rounding up to 0x400
     * gives the smallest normal, which is the right encoding. */
    return sign | (uint16_t)shift_round_even(mant | 0x800000, 14 - e);
}

float io_bf16_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t io_float_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if (isnan(x))
        return (uint16_t)((u >> 16) | 0x40); /* stays a NaN, quiet */
    return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16); /* nearest, ties to even */
}

/* Element i of src (dtype dt) as float; integers above 2^24 round to nearest. */
static inline float elem_as_f32(fuse_dtype dt, const void *src, int64_t i)
{
    switch (dt) {
    case FUSE_F32: return ((const float *)src)[i];
    case FUSE_F64: return (float)((const double *)src)[i];
    case FUSE_I8: return ((const int8_t *)src)[i];
    case FUSE_I16: return ((const int16_t *)src)[i];
    case FUSE_I32: return (float)((const int32_t *)src)[i];
    case FUSE_I64: return (float)((const int64_t *)src)[i];
    case FUSE_U8: return ((const uint8_t *)src)[i];
    case FUSE_U16: return ((const uint16_t *)src)[i];
    case FUSE_U32: return (float)((const uint32_t *)src)[i];
    case FUSE_U64: return (float)((const uint64_t *)src)[i];
    case FUSE_BOOL: return ((const uint8_t *)src)[i] ? 1.0f : 0.0f;
    case FUSE_F16: return io_half_to_float(((const uint16_t *)src)[i]);
    case FUSE_BF16: return io_bf16_to_float(((const uint16_t *)src)[i]);
    default: return 0.0f;
    }
}

void io_convert_to_f32(fuse_dtype dt, const void *src, float *dst, int64_t n)
{
    /* The switch inside is loop-invariant; the optimiser unswitches it. */
    for (int64_t i = 0; i < n; i++)
        dst[i] = elem_as_f32(dt, src, i);
}

/* Element i of src > 0, in src's own type: a float64 of 1e-50 is true although
 * it rounds to 0 in float32. NaN is false. */
static inline bool elem_is_positive(fuse_dtype dt, const void *src, int64_t i)
{
    if (dt == FUSE_F64)
        return ((const double *)src)[i] > 0.0;
    return elem_as_f32(dt, src, i) > 0.0f;
}

void io_convert_to_bool(fuse_dtype dt, const void *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = elem_is_positive(dt, src, i) ? 1.0f : 0.0f;
}

void io_convert_source(fuse_dtype dt, const void *src, float *dst, int64_t n, bool is_bool)
{
    if (is_bool)
        io_convert_to_bool(dt, src, dst, n);
    else
        io_convert_to_f32(dt, src, dst, n);
}

/* Element i of src (dtype dt) as double: exact for every dtype but the 64-bit
 * integers above 2^53 (nearest). */
static inline double elem_as_f64(fuse_dtype dt, const void *src, int64_t i)
{
    switch (dt) {
    case FUSE_F64: return ((const double *)src)[i];
    case FUSE_I32: return ((const int32_t *)src)[i];
    case FUSE_I64: return (double)((const int64_t *)src)[i];
    case FUSE_U32: return ((const uint32_t *)src)[i];
    case FUSE_U64: return (double)((const uint64_t *)src)[i];
    default: return elem_as_f32(dt, src, i); /* exact in float */
    }
}

void io_convert_source_f64(fuse_dtype dt, const void *src, double *dst, int64_t n, bool is_bool)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = is_bool ? (elem_is_positive(dt, src, i) ? 1.0 : 0.0) : elem_as_f64(dt, src, i);
}

/* x truncated toward zero into a signed `bits`-bit range, saturating; NaN is 0.
 * The bounds +-2^(bits-1) are exact in double, so the comparisons are exact. */
static int64_t to_signed(float x, int bits)
{
    double lim = ldexp(1.0, bits - 1);
    double t = trunc((double)x);
    if (isnan(t))
        return 0;
    if (t < -lim)
        return (int64_t)-lim;
    if (t >= lim)
        return (int64_t)((UINT64_C(1) << (bits - 1)) - 1);
    return (int64_t)t;
}

/* Same for an unsigned `bits`-bit range. */
static uint64_t to_unsigned(float x, int bits)
{
    double t = trunc((double)x);
    if (isnan(t) || t <= 0.0)
        return 0;
    if (t >= ldexp(1.0, bits))
        return bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    return (uint64_t)t;
}

/* Stores float x as element i of dst in dtype dt. */
static void store_from_f32(fuse_dtype dt, void *dst, int64_t i, float x)
{
    switch (dt) {
    case FUSE_F32: ((float *)dst)[i] = x; break;
    case FUSE_F64: ((double *)dst)[i] = x; break;
    case FUSE_I8: ((int8_t *)dst)[i] = (int8_t)to_signed(x, 8); break;
    case FUSE_I16: ((int16_t *)dst)[i] = (int16_t)to_signed(x, 16); break;
    case FUSE_I32: ((int32_t *)dst)[i] = (int32_t)to_signed(x, 32); break;
    case FUSE_I64: ((int64_t *)dst)[i] = to_signed(x, 64); break;
    case FUSE_U8: ((uint8_t *)dst)[i] = (uint8_t)to_unsigned(x, 8); break;
    case FUSE_U16: ((uint16_t *)dst)[i] = (uint16_t)to_unsigned(x, 16); break;
    case FUSE_U32: ((uint32_t *)dst)[i] = (uint32_t)to_unsigned(x, 32); break;
    case FUSE_U64: ((uint64_t *)dst)[i] = to_unsigned(x, 64); break;
    case FUSE_BOOL: ((uint8_t *)dst)[i] = x != 0.0f; break;
    case FUSE_F16: ((uint16_t *)dst)[i] = io_float_to_half(x); break;
    case FUSE_BF16: ((uint16_t *)dst)[i] = io_float_to_bf16(x); break;
    default: break;
    }
}

fuse_status io_tensor_from_f32(fuse_dtype dt, int rank, const int64_t *shape,
                               const float *src, fuse_tensor *out)
{
    if (!out || !dtype_valid(dt))
        return FUSE_E_ARG;
    int64_t count = io_shape_count(rank, shape);
    if (count < 0 || (count > 0 && !src))
        return FUSE_E_ARG;
    size_t esize = dtype_info[dt].size;
    if ((uint64_t)count > SIZE_MAX / esize)
        return FUSE_E_NOMEM;
    void *data = io_alloc_aligned((size_t)count * esize);
    if (!data)
        return FUSE_E_NOMEM;
    if (dt == FUSE_F32 && count > 0)
        memcpy(data, src, (size_t)count * esize); /* every export takes this path */
    else
        for (int64_t i = 0; i < count; i++)
            store_from_f32(dt, data, i, src[i]);
    memset(out, 0, sizeof *out);
    out->dtype = dt;
    out->rank = rank;
    for (int i = 0; i < rank; i++)
        out->shape[i] = shape[i];
    out->data = data;
    return FUSE_OK;
}

fuse_status io_tensor_widen_bf16(const fuse_tensor *t, fuse_tensor *out)
{
    int64_t count = io_shape_count(t->rank, t->shape);
    float *f = io_alloc_aligned(sizeof *f * (size_t)(count > 0 ? count : 1));
    if (!f)
        return FUSE_E_NOMEM;
    io_convert_to_f32(FUSE_BF16, t->data, f, count);
    *out = *t;
    out->dtype = FUSE_F32;
    out->data = f;
    return FUSE_OK;
}

fuse_status io_tensor_check(const fuse_tensor *t, const char *what, size_t *nbytes,
                            char **err)
{
    const char *why = NULL;
    int64_t count = -1;
    if (!t)
        why = "no tensor given";
    else if (!dtype_valid(t->dtype))
        why = "invalid dtype";
    else if (t->rank < 0 || t->rank > FUSE_MAX_RANK)
        why = "rank out of range";
    else if ((count = io_shape_count(t->rank, t->shape)) < 0)
        why = "negative or overflowing shape";
    else if ((uint64_t)count > SIZE_MAX / dtype_info[t->dtype].size)
        why = "tensor too large";
    else if (count > 0 && !t->data)
        why = "no data";
    if (why) {
        if (err)
            *err = sup_strprintf("%s: invalid tensor: %s", what ? what : "(tensor)", why);
        return FUSE_E_ARG;
    }
    if (nbytes)
        *nbytes = (size_t)count * dtype_info[t->dtype].size;
    return FUSE_OK;
}
