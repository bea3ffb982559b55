/* error.h: mnnh status codes and the per-thread error message.
 *
 * Every library function that can fail returns an mnnh_status. The function
 * that detects the failure records a human-readable message naming the file,
 * dataset, option or sample at fault with mnnh_error_set(); callers print
 * mnnh_error_msg(). The library never calls exit(). */
#ifndef MNNH_ERROR_H
#define MNNH_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MNNH_OK = 0,
    MNNH_ERR_ARG,      /* invalid argument or hyperparameter (user error) */
    MNNH_ERR_IO,       /* file cannot be opened, read, written, renamed */
    MNNH_ERR_FORMAT,   /* file exists but its content is malformed */
    MNNH_ERR_NOMEM,    /* allocation failed */
    MNNH_ERR_NUMERIC,  /* NaN/Inf or a solver that did not converge */
    MNNH_ERR_BACKEND,  /* compute backend unavailable or failed */
    MNNH_ERR_INTERNAL  /* a bug: an invariant did not hold */
} mnnh_status;

/* Short name of a status, e.g. "bad argument". */
const char *mnnh_status_str(mnnh_status st);

/* Record a printf-style message for the current thread and return st, so that
 * `return mnnh_error_set(MNNH_ERR_ARG, "N=%d ...", N);` reads naturally. */
mnnh_status mnnh_error_set(mnnh_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current message with more context ("loading ckpt.h5: ..."). */
mnnh_status mnnh_error_prefix(mnnh_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Last message recorded on this thread ("" when none). */
const char *mnnh_error_msg(void);

/* Clear the message. */
void mnnh_error_clear(void);

/* Propagate a failing status from an mnnh call. */
#define MNNH_TRY(call)                                   \
    do {                                                 \
        mnnh_status mnnh_try_st_ = (call);               \
        if (mnnh_try_st_ != MNNH_OK) return mnnh_try_st_; \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
