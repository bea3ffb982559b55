#ifndef MNNH_PARTS_H
#define MNNH_PARTS_H
/* parts.h: a static schedule of independent tasks over threads. The model's
 * levels and its adjacent part are independent until their outputs are
 * summed, so a host backend can run them side by side, one thread each,
 * instead of splitting every (small) op between the threads. The schedule is
 * fixed (the same thread runs the same parts every step), so each thread's
 * scratch reaches its size in the first step and results are reproducible. */

#ifdef __cplusplus
extern "C" {
#endif

/* Longest processing time first: tasks in decreasing cost (ties: lower
 * index first), each to the least loaded thread (ties: lower thread).
 * owner[i] receives the thread of task i. Returns the imbalance: the
 * largest thread load over the mean load, >= 1 (1 = perfect). */
double mnnh_parts_assign(int n, const double *cost, int threads, int *owner);

#ifdef __cplusplus
}
#endif
#endif
