/* signals.h: preemption requests (SIGUSR1, SIGTERM).
 *
 * The handler only sets a flag (async-signal-safe). The training loop reads
 * it at every step and sends it through the step's gradient allreduce, so all
 * ranks see the stop at the same step boundary even when only one rank got
 * the signal; rank 0 then checkpoints and every rank exits with
 * MNNH_EXIT_PREEMPTED (75), which the Slurm scripts turn into a requeue. */
#ifndef MNNH_SIGNALS_H
#define MNNH_SIGNALS_H

#include "mnnh/error.h"

/* Install the handlers for SIGUSR1 and SIGTERM (and clear the flag). */
mnnh_status mnnh_signals_install(void);
/* Restore the previous handlers. */
void mnnh_signals_restore(void);
/* The number of the first signal received since install, 0 if none. */
int mnnh_signals_pending(void);
/* Test hook: behave as if sig had been received. */
void mnnh_signals_raise(int sig);

#endif
