/*
 * io.h: the file formats, one file each, reading and writing together: host
 * tensors and dtype conversion (tensor.c), .npy (npy.c) and large .npy through a
 * memory mapping (mmap.c), .npz (npz.c, npz_write.c), .json and .jsonl (json.c), .tsv/.csv
 * facts (facts.c), bags of words (text.c), top-k JSON lines (topk.c) and
 * .safetensors (safetensors.c). Nothing here knows about programs: the formats
 * see host tensors (fuse_tensor) only, never the IR.
 *
 * Errors: functions return fuse_status and set *err to a malloc'd message (caller
 * frees) that names the file involved.
 */
#ifndef FUSE_IO_H
#define FUSE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fusejit.h"
#include "support.h"

/* ---- tensor.c: aligned buffers and host tensors ---- */

#define IO_ALIGN 64

/* 64-byte aligned, zeroed memory for n bytes (n may be 0); NULL on OOM. Free with
 * io_free_aligned or plain free() (it is aligned_alloc memory). */
void *io_alloc_aligned(size_t n);
void io_free_aligned(void *p);

/* Number of elements of a shape (1 for rank 0); -1 if it overflows int64. */
int64_t io_shape_count(int rank, const int64_t *shape);

/* An IEEE binary16 value as the float it is exactly. */
float io_half_to_float(uint16_t h);
/* x rounded to the nearest binary16 (ties to even; NaN stays NaN). */
uint16_t io_float_to_half(float x);
/* bfloat16 bits as the float they are exactly, and x rounded to the nearest
 * bfloat16 (ties to even; NaN stays a quiet NaN). */
float io_bf16_to_float(uint16_t b);
uint16_t io_float_to_bf16(float x);
/* npy.c: whether this host stores numbers big-endian, and the bytes of each of
 * `count` elements of esize bytes reversed in place. */
bool io_host_is_big_endian(void);
void io_swap_bytes(void *data, size_t count, size_t esize);

/* Converts n elements of any dtype to float32 (bool/ints exactly as values). */
void io_convert_to_f32(fuse_dtype dt, const void *src, float *dst, int64_t n);
/* The same thresholded for a boolean tensor (SPEC §2.4): 1 where the value is > 0
 * in its own dtype, else 0 (NaN too). */
void io_convert_to_bool(fuse_dtype dt, const void *src, float *dst, int64_t n);
/* io_convert_to_bool when is_bool, else io_convert_to_f32: how a source or input
 * bound to a tensor is stored. */
void io_convert_source(fuse_dtype dt, const void *src, float *dst, int64_t n, bool is_bool);
/* The same into doubles (precision fp64): float64 and 32-bit integer sources keep
 * every digit. */
void io_convert_source_f64(fuse_dtype dt, const void *src, double *dst, int64_t n, bool is_bool);

/* Makes a host tensor of dtype `dt` holding a copy of n float32 values converted
 * to dt; data 64-byte aligned, free with free. Integers truncate toward zero and
 * saturate at their range (NaN gives 0); bool is "nonzero". */
fuse_status io_tensor_from_f32(fuse_dtype dt, int rank, const int64_t *shape,
                               const float *src, fuse_tensor *out);

/* Checks that t is a well-formed host tensor: valid dtype, rank 0..FUSE_MAX_RANK,
 * non-negative shape whose size in bytes fits size_t, data present unless empty.
 * Sets *nbytes (may be NULL) to its data size. FUSE_E_ARG, with a message naming
 * `what`, otherwise. */
/* A float32 copy of a FUSE_BF16 tensor (exact); out->data from io_alloc_aligned. */
fuse_status io_tensor_widen_bf16(const fuse_tensor *t, fuse_tensor *out);
fuse_status io_tensor_check(const fuse_tensor *t, const char *what, size_t *nbytes,
                            char **err);

/* ---- npy.c: NumPy .npy files ---- */

typedef struct NpyHeader {
    fuse_dtype dtype;
    bool is_big_endian;
    bool is_fortran;
    int rank;
    int64_t shape[FUSE_MAX_RANK];
    size_t data_offset; /* bytes from the start of the file to the data */
} NpyHeader;

/* Parses a .npy header held in memory (n bytes available from buf). Versions 1-3;
 * dtypes float32/64, int8..64, uint8..64, bool (either byte order). Errors name the
 * image ".npy header"; io_npy_parse_header_named names it `what` instead. */
fuse_status io_npy_parse_header(const void *buf, size_t n, NpyHeader *h, char **err);
fuse_status io_npy_parse_header_named(const void *buf, size_t n, const char *what,
                                      NpyHeader *h, char **err);

/* A byte stream to decode from: reads up to n bytes into dst and returns how many
 * were read (fewer than n only at the end of the stream), or -1 on a read error. */
typedef int64_t (*IoReadFn)(void *ctx, void *dst, size_t n);

/* Decodes one .npy image from a stream (a file, an .npz member) straight into a
 * C-ordered host tensor; `size` is the stream's total length in bytes when known
 * (UINT64_MAX if not), which lets a truncated image be rejected before its data is
 * allocated. out->data is malloc'd; caller frees. */
fuse_status io_npy_read_stream(IoReadFn read, void *ctx, uint64_t size, const char *what,
                               fuse_tensor *out, char **err);
/* The same for an image of exactly `size` bytes (an archive member): a header whose
 * data would end before or after `size` is refused before anything is allocated.
 * It reads no byte past the image's end. */
fuse_status io_npy_read_exact(IoReadFn read, void *ctx, uint64_t size, const char *what,
                              fuse_tensor *out, char **err);

/* Reads a whole .npy file into a C-ordered host tensor of its own dtype (Fortran
 * order is transposed into C order). out->data is malloc'd; caller frees. */
fuse_status io_npy_read(const char *path, fuse_tensor *out, char **err);

/* Reads only the header of a .npy file, checking that the file is long enough
 * for the data it announces (FUSE_E_IO "truncated" naming it otherwise), so that
 * nothing is sized from a header the file cannot back. */
fuse_status io_npy_probe(const char *path, NpyHeader *h, char **err);

/* Same, from memory (as found inside an .npz member). `what` names it in errors. */
fuse_status io_npy_read_mem(const void *buf, size_t n, const char *what, fuse_tensor *out,
                            char **err);

/* The version 1.0 .npy header of t (its dtype, rank and shape; bfloat16 is
 * described as the float32 it is written as) into buf, which has room for
 * IO_NPY_HEADER_MAX bytes; returns its length, a multiple of 64. */
#define IO_NPY_HEADER_MAX 640
size_t io_npy_header(const fuse_tensor *t, uint8_t *buf);

/* Serialises a tensor as a version 1.0 .npy image; *buf malloc'd, *n its size. */
fuse_status io_npy_encode(const fuse_tensor *t, void **buf, size_t *n, char **err);

/* Writes a .npy file atomically (temporary file in the same directory, then
 * rename). */
fuse_status io_npy_write(const char *path, const fuse_tensor *t, char **err);

/* ---- .npz archives (ZIP of .npy members): written by npz_write.c with minizip,
 * read by npz.c with libzip (loaded on first use) ---- */

/* Writes an .npz atomically with one member "<names[i]>.npy" per tensor, stored
 * (uncompressed, as numpy.savez); missing parent directories are created. n == 0
 * writes an empty archive. A failure leaves the target as it was and no
 * temporary behind. */
fuse_status io_npz_write(const char *path, const char *const *names,
                         const fuse_tensor *tensors, int n, char **err);
/* io_npz_write with the members deflated when deflate is set (as
 * numpy.savez_compressed). */
fuse_status io_npz_write_as(const char *path, const char *const *names,
                            const fuse_tensor *tensors, int n, bool deflate, char **err);
/* The bytes io_npz_write writes; *buf malloc'd, *len its size. path (may be
 * NULL) names errors. */
fuse_status io_npz_encode(const char *path, const char *const *names,
                          const fuse_tensor *tensors, int n, void **buf, size_t *len,
                          char **err);
/* The bytes io_npz_write_as writes. */
fuse_status io_npz_encode_as(const char *path, const char *const *names,
                             const fuse_tensor *tensors, int n, bool deflate, void **buf,
                             size_t *len, char **err);

/* A file of tensors written forward, piece by piece, into a temporary beside
 * path that io_out_commit puts in place (io_out_abort removes it; both free
 * o): an .npy of one tensor, or an .npz of a member "<name>.npy" per tensor,
 * stored or deflated. io_out_begin starts a tensor (its dtype, rank and
 * shape from meta; its data pointer is not read), io_out_data appends its
 * data in C order, in pieces of whole elements, io_out_end ends it once all
 * its bytes came. Written by minizip as io_npz_write writes (the same
 * members), without the archive in memory. */
typedef struct IoOut IoOut;
fuse_status io_out_open(const char *path, bool deflate, IoOut **o, char **err);
fuse_status io_out_begin(IoOut *o, const char *name, const fuse_tensor *meta, char **err);
fuse_status io_out_data(IoOut *o, const void *p, size_t n, char **err);
fuse_status io_out_end(IoOut *o, char **err);
fuse_status io_out_commit(IoOut *o, char **err);
void io_out_abort(IoOut *o);

/* Reads one member of an .npz: `member` names it (without ".npy"); NULL picks
 * "arr_0", else the only member. `fallback` (may be NULL) is tried when neither
 * applies (the tensor's name). A name N matches member "N.npy", else "N". Stored
 * and deflated members; a bad CRC is an error. out->data malloc'd. */
fuse_status io_npz_read(const char *path, const char *member, const char *fallback,
                        fuse_tensor *out, char **err);

/* ---- json.c: .json and .jsonl tensors (through jansson) ---- */

/* Writes nested lists of numbers (booleans as true/false when dtype is bool). */
fuse_status io_json_write(const char *path, const fuse_tensor *t, char **err);

/* Writes the fuse.tensor JSON-lines schema: a header line then {"value": [...]}. */
fuse_status io_jsonl_write(const char *path, const fuse_tensor *t, char **err);

/* The text either writer would produce (jsonl: the two-line schema), ending in
 * '\n'; *text malloc'd and NUL-terminated, *len its length. Non-finite floats are
 * written as the strings "NaN", "Infinity" and "-Infinity" (JSON has no such
 * numbers), which the readers take back; float32 prints with 9 significant digits,
 * float64 with 17, so values read back exactly. */
fuse_status io_json_encode(const fuse_tensor *t, bool jsonl, char **text, size_t *len,
                           char **err);

/* ---- facts.c, text.c, topk.c, json.c, safetensors.c: the other formats ---- */

/* The readers of this section return host float32 tensors in C order whose data
 * comes from io_alloc_aligned (release with free). A missing or malformed file is
 * FUSE_E_IO with a message naming the file (and its line where it has lines); an
 * allocation failure is FUSE_E_NOMEM; a tensor of more than IO_MAX_READ_ELEMS
 * elements is refused with FUSE_E_IO. On failure *out is left zeroed. */
#define IO_MAX_READ_ELEMS ((int64_t)1 << 31)

/* Reads a .tsv/.csv facts file into a 0/1 relation. One fact per line: `rank`
 * non-negative integer coordinates separated by tabs or commas (either, in either
 * kind of file; a run of separators counts as one); blanks around a field, CRLF
 * line ends, blank lines and lines starting with '#' are allowed; anything else
 * (a header line, a sign other than '+', a decimal point) is an error naming
 * file:line. The size of each axis is the largest coordinate + 1: a lower bound
 * that the caller pads. `rank` is the expected number of columns, or -1 to take it
 * from the first fact; a file without facts then has no rank and is an error,
 * while with rank >= 0 it gives an empty relation of shape (0, ..., 0). */
fuse_status io_facts_read_rank(const char *path, int rank, fuse_tensor *out, char **err);
fuse_status io_facts_read(const char *path, fuse_tensor *out, char **err); /* rank -1 */

/* Writes the coordinates of t's nonzero cells (NaN counts as nonzero) in row-major
 * order, one per line ending in '\n', separated by ',' when the path ends in ".csv"
 * (any case) and by a tab otherwise. No cell → an empty file. Rank 0 has no
 * coordinates: FUSE_E_ARG. Any dtype. Atomic; creates missing parent dirs. */
fuse_status io_facts_write(const char *path, const fuse_tensor *t, char **err);
/* The text io_facts_write writes (path picks the separator and names errors);
 * *text malloc'd, *len its length. */
fuse_status io_facts_encode(const char *path, const fuse_tensor *t, char **text, size_t *len,
                            char **err);

/* The vocabulary sidecar of a bag-of-words file: the path with its last extension
 * replaced by ".vocab.json" ("d/a.b.txt" → "d/a.b.vocab.json"; no extension:
 * appended). malloc'd; NULL on OOM. */
char *io_bow_vocab_path(const char *path);

/* Where a bag of words' vocabulary sidecar is saved: at rel beneath the
 * directory root (the output root; written with sup_write_file_beneath). */
typedef struct IoVocabPlace {
    const char *root;
    const char *rel;  /* io_bow_saved_vocab_path of the source's path */
    bool save;        /* write it there when needed; false: only read it */
} IoVocabPlace;

/* The sidecar's path under the output root for a source path as the program
 * wrote it: the same relative path when it has no ".." component, else (an
 * absolute path, or one with "..") its file name alone. malloc'd; NULL on OOM. */
char *io_bow_saved_vocab_path(const char *source);

/* Reads a .txt/.md bag of words: UTF-8 text (a leading BOM is skipped) split on
 * runs of Unicode whitespace into tokens → a (tokens × vocabulary) 0/1 matrix whose
 * row p has a 1 in the column of token p. Text that is not UTF-8 is an error
 * naming file:line. The vocabulary comes from the sidecar at place->root/
 * place->rel when place is given and that file exists, else from the one beside
 * the text (io_bow_vocab_path), else it starts empty (formats: {"version": 1,
 * "items": [{"token": T, "index": I}, ...]}, a plain {"T": I} object, or a
 * ["T", ...] list); its size is the largest index + 1. Unknown tokens get the
 * next indices in order of first occurrence. With place->save, the vocabulary is
 * then written in the items format at place->rel beneath place->root when no
 * sidecar was found or it gained a token; a failure to write is a warning in
 * *warn (malloc'd) when warn != NULL (the result stands), else an error. Nothing
 * else writes. A corrupt sidecar is an error, never overwritten. Both sizes are
 * lower bounds. io_bow_read is io_bow_read_ex with no place: it reads the sidecar
 * beside the text and writes nothing. */
fuse_status io_bow_read_ex(const char *path, const IoVocabPlace *place, fuse_tensor *out,
                           char **warn, char **err);
fuse_status io_bow_read(const char *path, fuse_tensor *out, char **err);

/* The fuse.topk JSON-lines text for t: the line {"schema":"fuse.topk","version":1},
 * then per row (rows run over all leading axes in C order; rank 1 is one row, rank
 * 0 one row of one entry) {"topk":[{"index":i,"value":v},...]} with the
 * min(k, row length) largest entries of the last axis: value descending, ties to
 * the lower index, NaN last. Values are JSON reals (1.0), printed with the fewest
 * digits that read back to the same float32; non-finite values print as null.
 * Any dtype (converted to float32). k < 0 is FUSE_E_ARG. *text malloc'd. */
fuse_status io_topk_encode(const fuse_tensor *t, int64_t k, char **text, size_t *len,
                           char **err);

/* io_topk_encode written atomically to path (parent directories created). */
fuse_status io_topk_write(const char *path, const fuse_tensor *t, int64_t k, char **err);

/* Reads a .json tensor: rectangular nested lists of numbers and booleans (true is
 * 1) and the strings "NaN", "Infinity" and "-Infinity" (the writers' spelling of
 * the non-finite values); null is an error giving its file:line:col. A bare number
 * is rank 0, [] is shape (0). */
fuse_status io_json_read(const char *path, fuse_tensor *out, char **err);

/* Parses n bytes of JSON (jansson's json_t) with positioned errors: `where` and
 * the text's first line number name it ("a.jsonl:3:7: invalid JSON: ..."). */
struct json_t;
fuse_status io_json_parse(const char *where, long first_line, const char *s, size_t n,
                          struct json_t **out, char **err);

/* Reads the fuse.tensor JSON-lines schema (as io_jsonl_write writes it): a header
 * line {"schema": "fuse.tensor", "version": 1, "shape": [...]} ("version" may be
 * left out) then one line {"value": nested} of exactly that shape, leaves as for
 * io_json_read. A "shape" with more elements than the value line has bytes for is
 * refused before allocating. Blank lines are skipped; a fuse.topk file is refused. */
fuse_status io_jsonl_read(const char *path, fuse_tensor *out, char **err);

/* Reads one tensor of a .safetensors file: the member called `name` if there is
 * one, else the only member (name may be NULL). Dtypes F64 F32 F16 BF16 I64 I32
 * I16 I8 U64 U32 U16 U8 BOOL, converted to float32. The header (at most 100 MB)
 * and the data offsets are checked against the file size; only the selected
 * tensor's bytes are read. */
fuse_status io_safetensors_read(const char *path, const char *name, fuse_tensor *out,
                                char **err);
/* The same, but F64, F16 and BF16 entries keep their dtype (FUSE_F64, FUSE_F16,
 * FUSE_BF16), so a source bound under precision fp64, fp16 or bf16 loses no
 * digit to float32 (runtime/sources.c). */
fuse_status io_safetensors_read_native(const char *path, const char *name, fuse_tensor *out,
                                       char **err);

/* ---- mmap.c: large .npy sources through a memory mapping ---- */

/* Bytes from which a source .npy is mapped: $FUSE_JIT_MMAP_MIN_BYTES, else 16 MiB. */
uint64_t io_mmap_min_bytes(void);
/* When path is a regular file of at least io_mmap_min_bytes() bytes holding a
 * little-endian, C-ordered .npy of `rank` axes with sizes `shape`, converts its data
 * from a read-only mapping into dst (float32; thresholded to 0/1 when is_bool, as
 * io_convert_source) and sets *is_mapped. Otherwise
 * *is_mapped is false and nothing is read (the caller reads the file as usual). A
 * malformed header or data shorter than the header promises is FUSE_E_IO naming
 * the file (checked before the data is touched). A file truncated while it is
 * being converted is FUSE_E_IO "truncated while being read" naming it, never a
 * SIGBUS; dst then holds garbage that must not be used. */
fuse_status io_npy_read_mapped(const char *path, int rank, const int64_t *shape, float *dst,
                               bool is_bool, bool *is_mapped, char **err);
/* io_npy_read_mapped converting only rows [lo, hi) of axis 0 (0 <= lo <= hi <=
 * shape[0]) into the same places of dst: an MPI rank's block (dist.h). The
 * header and the file's size are checked as for the whole. */
fuse_status io_npy_read_mapped_rows(const char *path, int rank, const int64_t *shape,
                                    int64_t lo, int64_t hi, float *dst, bool is_bool,
                                    bool *is_mapped, char **err);
/* The same from a read-only mapping the caller made of the whole open file fd
 * (`size` bytes, as fstat said when mapping; fd reports the size at the end). */
fuse_status io_npy_convert_mapping(const void *map, uint64_t size, int fd, const char *path,
                                   int rank, const int64_t *shape, float *dst, bool is_bool,
                                   bool *is_mapped, char **err);

/* The SIGBUS guard of mapped reads. io_mmap_guard registers the mapping at
 * [addr, addr + len) while it is read (installing, once, a SIGBUS handler that
 * chains to the previous one): a page past the end of a file truncated meanwhile
 * then reads as zeros instead of killing the process. Returns a slot, or -1 when
 * no guard can be had (read the file without a mapping then). io_mmap_unguard
 * releases the slot, before the mapping is unmapped, and returns whether any page
 * was lost, i.e. whether what was read must be thrown away. */
int io_mmap_guard(const void *addr, size_t len);
bool io_mmap_unguard(int slot);
/* Whether a page of guarded slot's mapping was lost so far (it stays guarded). */
bool io_mmap_is_faulted(int slot);

/* A source .npy used in place: its data read straight from a read-only mapping
 * of the file, kept (and guarded) until io_npy_unmap. The page cache holds the
 * only copy, which processes reading the same file share (MPI ranks). */
typedef struct IoMapped {
    void *map;   /* the mapping (NULL: none) */
    size_t size; /* its bytes */
    int slot;    /* its SIGBUS guard */
} IoMapped;
/* When path is a regular file of at least io_mmap_min_bytes() bytes holding a
 * little-endian, C-ordered float32 .npy of `rank` axes with sizes `shape`, its
 * data 64-byte aligned in the file (NumPy aligns it so), and, when is_bool,
 * only 0 and 1 (what thresholding would give: nothing to convert): maps it,
 * sets *data to its first element and *is_mapped. Otherwise *is_mapped is
 * false and nothing is kept (read the file as usual). Errors as
 * io_npy_read_mapped (a file shorter than its header says, truncated while the
 * values are checked). */
fuse_status io_npy_map_in_place(const char *path, int rank, const int64_t *shape, bool is_bool,
                                IoMapped *m, const float **data, bool *is_mapped, char **err);
/* The same checking only elements [lo, hi) for 0 and 1 (MPI ranks check a
 * share each, then agree: runtime/dist_exec.c). */
fuse_status io_npy_map_in_place_part(const char *path, int rank, const int64_t *shape,
                                     bool is_bool, int64_t lo, int64_t hi, IoMapped *m,
                                     const float **data, bool *is_mapped, char **err);
/* False when a page of m was lost to the file's truncation since it was mapped
 * (it read as zeros: whatever used it must be thrown away). */
bool io_npy_mapped_intact(const IoMapped *m);
void io_npy_unmap(IoMapped *m);

#endif /* FUSE_IO_H */
