/*
 * names.c - hashing names, and a name -> index table.
 *
 * Every lookup by a name a model chooses (values, functions, graph inputs,
 * unknown ops) goes through a hash table, so loading stays linear in the
 * model's size. The hash is SipHash-1-3 under a 128-bit key drawn from the
 * kernel's random source when the process starts: a model cannot be crafted
 * to make its names collide (the unseeded FNV-1a before let a 3 MB file of
 * chosen names take tens of seconds to load under linear probing).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "ir/ir.h"

static uint64_t hash_key[2];

/* The key is drawn once, before main (or when the library is loaded). */
__attribute__((constructor)) static void hash_seed(void)
{
    if (getrandom(hash_key, sizeof hash_key, GRND_NONBLOCK) == (ssize_t)sizeof hash_key) return;
    /* no entropy yet (early boot) or no getrandom: the time and the address
     * space layout still keep a file from being crafted in advance */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    hash_key[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec;
    hash_key[1] = (uint64_t)(uintptr_t)&ts ^ ((uint64_t)getpid() << 32) ^
                  (uint64_t)(uintptr_t)&hash_key;
}

void onr_hash_fix_key(uint64_t k0, uint64_t k1)
{
    hash_key[0] = k0;
    hash_key[1] = k1;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                           \
    do {                                                                                   \
        v0 += v1, v1 = ROTL(v1, 13), v1 ^= v0, v0 = ROTL(v0, 32);                          \
        v2 += v3, v3 = ROTL(v3, 16), v3 ^= v2;                                             \
        v0 += v3, v3 = ROTL(v3, 21), v3 ^= v0;                                             \
        v2 += v1, v1 = ROTL(v1, 17), v1 ^= v2, v2 = ROTL(v2, 32);                          \
    } while (0)

uint64_t onr_hash_bytes(const void *p, size_t len)
{
    const uint8_t *in = p;
    uint64_t k0 = hash_key[0], k1 = hash_key[1];
    uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
    uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
    const uint8_t *end = in + (len & ~(size_t)7);
    for (; in != end; in += 8) {
        uint64_t m;
        memcpy(&m, in, 8);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++) b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t onr_hash_str(const char *s) { return onr_hash_bytes(s, strlen(s)); }

int onr_names_find(const onr_names *m, const char *name)
{
    if (!m->cap) return -1;
    for (size_t i = onr_hash_str(name) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        int s = m->slots[i];
        if (!s) return -1;
        if (strcmp(m->key(m->ctx, s - 1), name) == 0) return s - 1;
    }
}

int onr_names_put(onr_names *m, int id)
{
    if ((m->used + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        int *ns = calloc(ncap, sizeof *ns);
        if (!ns) return -1;
        for (size_t i = 0; i < m->cap; i++) {
            int s = m->slots[i];
            if (!s) continue;
            size_t j = onr_hash_str(m->key(m->ctx, s - 1)) & (ncap - 1);
            while (ns[j]) j = (j + 1) & (ncap - 1);
            ns[j] = s;
        }
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    size_t j = onr_hash_str(m->key(m->ctx, id)) & (m->cap - 1);
    while (m->slots[j]) j = (j + 1) & (m->cap - 1);
    m->slots[j] = id + 1;
    m->used++;
    return 0;
}

void onr_names_free(onr_names *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->used = 0;
}
