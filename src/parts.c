/* parts.c: the static longest-processing-time schedule of parts.h. */
#include "mnnh/parts.h"

double mnnh_parts_assign(int n, const double *cost, int threads, int *owner) {
    enum { MAX_T = 64 };
    double load[MAX_T] = {0}, total = 0;
    if (threads > MAX_T) threads = MAX_T;
    if (threads < 1) threads = 1;
    for (int i = 0; i < n; i++) owner[i] = -1;
    for (int done = 0; done < n; done++) {
        int next = -1; /* the costliest unassigned task */
        for (int i = 0; i < n; i++)
            if (owner[i] < 0 && (next < 0 || cost[i] > cost[next])) next = i;
        int t = 0;
        for (int k = 1; k < threads; k++)
            if (load[k] < load[t]) t = k;
        owner[next] = t;
        load[t] += cost[next];
        total += cost[next];
    }
    double most = 0;
    for (int t = 0; t < threads; t++)
        if (load[t] > most) most = load[t];
    return total > 0 ? most * threads / total : 1.0;
}
