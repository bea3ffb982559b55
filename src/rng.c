/* rng.c: Philox4x32-10 streams from Random123 (librandom123-dev). */
#include "mnnh/rng.h"

#include <Random123/philox.h>
#include <math.h>

void mnnh_rng_init(mnnh_rng *rng, uint64_t seed, uint64_t stream) {
    rng->seed = seed;
    rng->stream = stream;
    rng->counter = 0;
    rng->used = 4;
}

static void rng_refill(mnnh_rng *rng) {
    philox4x32_key_t key = {{(uint32_t)rng->seed, (uint32_t)(rng->seed >> 32)}};
    philox4x32_ctr_t ctr = {{(uint32_t)rng->counter, (uint32_t)(rng->counter >> 32),
                             (uint32_t)rng->stream, (uint32_t)(rng->stream >> 32)}};
    philox4x32_ctr_t out = philox4x32(ctr, key);
    for (int i = 0; i < 4; i++) rng->buf[i] = out.v[i];
    rng->counter++;
    rng->used = 0;
}

uint32_t mnnh_rng_u32(mnnh_rng *rng) {
    if (rng->used >= 4) rng_refill(rng);
    return rng->buf[rng->used++];
}

double mnnh_rng_uniform(mnnh_rng *rng) {
    uint64_t hi = mnnh_rng_u32(rng) >> 5; /* 27 bits */
    uint64_t lo = mnnh_rng_u32(rng) >> 6; /* 26 bits */
    return (double)(hi * 67108864u + lo) * (1.0 / 9007199254740992.0);
}

double mnnh_rng_range(mnnh_rng *rng, double lo, double hi) {
    return lo + (hi - lo) * mnnh_rng_uniform(rng);
}

double mnnh_rng_normal(mnnh_rng *rng) {
    /* One Box-Muller draw per call (the sine partner is dropped) keeps the
     * state a pure counter, which makes checkpointing it trivial. */
    double u1 = mnnh_rng_uniform(rng), u2 = mnnh_rng_uniform(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t mnnh_rng_below(mnnh_rng *rng, uint64_t n) {
    if (n <= 1) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
        uint64_t x = ((uint64_t)mnnh_rng_u32(rng) << 32) | mnnh_rng_u32(rng);
        if (x < limit) return x % n;
    }
}

void mnnh_rng_shuffle(mnnh_rng *rng, int64_t *idx, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)mnnh_rng_below(rng, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
