/*
 * buildid.c: the GNU build ID of the binary or shared library that holds this
 * code. It enters the cache key so that any rebuild of fuse-jit (a changed kernel
 * generator, say) never loads machine code cached by another build, even when the
 * version number did not change. The linker writes the ID (-Wl,--build-id).
 */
#include <elf.h>
#include <link.h>
#include <string.h>

#include "runtime.h"

typedef struct Search {
    const void *addr;       /* an address inside the module we look for */
    unsigned char *out;
    size_t cap, n;
} Search;

/* Copies the NT_GNU_BUILD_ID descriptor of one PT_NOTE segment, if it has one. */
static size_t note_build_id(const unsigned char *p, size_t size, unsigned char *out, size_t cap)
{
    size_t off = 0;
    while (off + sizeof(ElfW(Nhdr)) <= size) {
        const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(p + off);
        size_t name = (nh->n_namesz + 3) & ~(size_t)3, desc = (nh->n_descsz + 3) & ~(size_t)3;
        size_t body = off + sizeof *nh;
        if (body + name + desc > size)
            return 0;
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
            memcmp(p + body, "GNU", 4) == 0) {
            size_t n = nh->n_descsz < cap ? nh->n_descsz : cap;
            memcpy(out, p + body + name, n);
            return n;
        }
        off = body + name + desc;
    }
    return 0;
}

static bool module_contains(const struct dl_phdr_info *info, const void *addr)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (uintptr_t)addr >= lo && (uintptr_t)addr < lo + ph->p_memsz)
            return true;
    }
    return false;
}

static int visit(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    Search *s = data;
    if (!module_contains(info, s->addr))
        return 0;
    for (int i = 0; i < info->dlpi_phnum && !s->n; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_NOTE)
            s->n = note_build_id((const unsigned char *)(info->dlpi_addr + ph->p_vaddr),
                                 ph->p_memsz, s->out, s->cap);
    }
    return 1;
}

size_t rt_build_id(unsigned char *out, size_t cap)
{
    Search s = {.out = out, .cap = cap};
    /* The address of this very function locates the module that contains it. */
    size_t (*self)(unsigned char *, size_t) = rt_build_id;
    memcpy(&s.addr, &self, sizeof s.addr);
    dl_iterate_phdr(visit, &s);
    return s.n;
}
