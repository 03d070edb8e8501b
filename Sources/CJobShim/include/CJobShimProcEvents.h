// The kernel's process events connector (netlink, CN_IDX_PROC): fork and
// exit of every process on the machine, for counting a job's descendants.
// Needs CAP_NET_ADMIN (root); callers treat failure as "not available".
#ifndef CJOBSHIM_PROC_EVENTS_H
#define CJOBSHIM_PROC_EVENTS_H

#include <stdint.h>
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
/// buffer of `buffer_bytes` and subscribes to process events. Without
/// `report_overruns`, a full socket does not fail the next read with
/// ENOBUFS (tests use it to see the sequence check alone). Returns the
/// descriptor or -1 with errno.
int jobshim_proc_events_open(int buffer_bytes, int report_overruns);

/// Reads pending messages, storing up to `max` fork/exit events. Returns
/// how many (0 when nothing is pending) or -1 with errno. Sets `*lost` to 1
/// when the kernel dropped events before them; the events read after a
/// loss are stored all the same.
///
/// Two signs of a loss: ENOBUFS (this socket was full), and a gap in the
/// numbers the kernel gives each CPU's events in order (a message it could
/// not allocate, which nothing else reports). `next_sequence` has `cpus`
/// entries, zeroed before the first read: the number expected next from
/// each CPU, with bit 32 set once one was seen.
int jobshim_proc_events_read(int fd, jobshim_proc_event *events, int max, uint64_t *next_sequence, int cpus, int *lost);

#endif
