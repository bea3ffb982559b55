/* error.c: status names and the thread-local error message buffer. */
#include "mnnh/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MNNH_ERRMSG_LEN 1024
static _Thread_local char errmsg[MNNH_ERRMSG_LEN];

const char *mnnh_status_str(mnnh_status st) {
    switch (st) {
    case MNNH_OK: return "ok";
    case MNNH_ERR_ARG: return "bad argument";
    case MNNH_ERR_IO: return "I/O error";
    case MNNH_ERR_FORMAT: return "malformed file";
    case MNNH_ERR_NOMEM: return "out of memory";
    case MNNH_ERR_NUMERIC: return "numerical failure";
    case MNNH_ERR_BACKEND: return "backend failure";
    case MNNH_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

mnnh_status mnnh_error_set(mnnh_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    return st;
}

mnnh_status mnnh_error_prefix(mnnh_status st, const char *fmt, ...) {
    char old[MNNH_ERRMSG_LEN], pre[MNNH_ERRMSG_LEN];
    memcpy(old, errmsg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    if (old[0])
        snprintf(errmsg, sizeof errmsg, "%.400s: %.600s", pre, old);
    else
        snprintf(errmsg, sizeof errmsg, "%s", pre);
    return st;
}

const char *mnnh_error_msg(void) { return errmsg; }

void mnnh_error_clear(void) { errmsg[0] = '\0'; }
