/* signals.c: a flag set by SIGUSR1/SIGTERM, read at step boundaries. */
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t pending_sig;
static struct sigaction old_usr1, old_term;
static int installed;

static void on_signal(int sig) {
    if (!pending_sig) pending_sig = sig;
}

mnnh_status mnnh_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* MPI and HDF5 calls continue through the signal */
    pending_sig = 0;
    if (sigaction(SIGUSR1, &sa, &old_usr1) != 0 || sigaction(SIGTERM, &sa, &old_term) != 0)
        return mnnh_error_set(MNNH_ERR_INTERNAL, "sigaction: %s", strerror(errno));
    installed = 1;
    return MNNH_OK;
}

void mnnh_signals_restore(void) {
    if (!installed) return;
    sigaction(SIGUSR1, &old_usr1, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    installed = 0;
}

int mnnh_signals_pending(void) { return (int)pending_sig; }

void mnnh_signals_raise(int sig) { on_signal(sig); }
