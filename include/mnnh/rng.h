/* rng.h: counter-based random numbers (Random123 Philox4x32-10).
 *
 * A stream is identified by (seed, stream id); draw k of a stream depends only
 * on (seed, stream, k), never on the number of ranks or threads, so sample i of
 * a dataset is keyed by stream = i, and an epoch's shuffle by (epoch, rank).
 * The whole state is four integers, so it can be checkpointed and restored. */
#ifndef MNNH_RNG_H
#define MNNH_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t seed;    /* Philox key */
    uint64_t stream;  /* high half of the counter */
    uint64_t counter; /* number of 4-word blocks consumed */
    uint32_t buf[4];
    int used;         /* words of buf already returned (4 = empty) */
} mnnh_rng;

void mnnh_rng_init(mnnh_rng *rng, uint64_t seed, uint64_t stream);
uint32_t mnnh_rng_u32(mnnh_rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double mnnh_rng_uniform(mnnh_rng *rng);
/* Uniform in [lo, hi). */
double mnnh_rng_range(mnnh_rng *rng, double lo, double hi);
/* Standard normal (Box-Muller, both values used in turn). */
double mnnh_rng_normal(mnnh_rng *rng);
/* Uniform integer in [0, n), unbiased. */
uint64_t mnnh_rng_below(mnnh_rng *rng, uint64_t n);
/* In-place Fisher-Yates shuffle of idx[0..n). */
void mnnh_rng_shuffle(mnnh_rng *rng, int64_t *idx, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
