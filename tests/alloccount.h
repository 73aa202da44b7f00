/*
 * alloccount.h - an allocation counter for the tests that link with
 * -Wl,--wrap=malloc,--wrap=calloc,... (see tests/CMakeLists.txt): while
 * `counting` is set, every allocation adds one to n_allocs. Include it in
 * exactly one file of a test program.
 */
#ifndef ONR_TESTS_ALLOCCOUNT_H
#define ONR_TESTS_ALLOCCOUNT_H

#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);

static int counting;
static long n_allocs;

void *__wrap_malloc(size_t n)
{
    if (counting) n_allocs++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m)
{
    if (counting) n_allocs++;
    return __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n)
{
    if (counting) n_allocs++;
    return __real_realloc(p, n);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    if (counting) n_allocs++;
    return __real_posix_memalign(p, a, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n)
{
    if (counting) n_allocs++;
    return __real_aligned_alloc(a, n);
}

#endif
