// Cleanup attributes for C that acquires resources: a descriptor declared
// JOBSHIM_AUTO_CLOSE is closed when it goes out of scope, on every return
// path, with errno kept (as crun's cleanup_close). Async-signal-safe.
#ifndef CJOBSHIM_CLEANUP_H
#define CJOBSHIM_CLEANUP_H

#include <errno.h>
#include <unistd.h>

static inline void jobshim_close_on_scope_exit(int *fd) {
    if (*fd < 0) return;
    int saved = errno;
    close(*fd);
    errno = saved;
}

#define JOBSHIM_AUTO_CLOSE __attribute__((cleanup(jobshim_close_on_scope_exit)))

#endif
