// The kernel's process events connector (netlink, CN_IDX_PROC): fork and
// exit of every process on the machine, for counting a job's descendants.
// Needs CAP_NET_ADMIN (root); callers treat failure as "not available".
#ifndef CJOBSHIM_PROC_EVENTS_H
#define CJOBSHIM_PROC_EVENTS_H

#include <sys/types.h>

enum {
    JOBSHIM_PROC_FORK = 1,
    JOBSHIM_PROC_EXIT = 2,
};

typedef struct {
    int what;         // JOBSHIM_PROC_*
    pid_t pid;        // fork: the child's thread id; exit: the exiting thread
    pid_t tgid;       // the process (thread group) it belongs to
    pid_t parent_tgid;  // fork: the parent process
    int exit_code;    // exit: a wait status, as waitpid reports it
} jobshim_proc_event;

/// Opens a non-blocking, close-on-exec connector socket with a receive
/// buffer of `buffer_bytes` and subscribes to process events. Returns the
/// descriptor or -1 with errno.
int jobshim_proc_events_open(int buffer_bytes);

/// Reads pending messages, storing up to `max` fork/exit events. Returns
/// how many (0 when nothing is pending) or -1 with errno. Sets `*lost` to 1
/// when the kernel dropped events since the last read because the socket
/// was full (ENOBUFS); the events read after it are stored all the same.
int jobshim_proc_events_read(int fd, jobshim_proc_event *events, int max, int *lost);

#endif
