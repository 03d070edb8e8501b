// Guardian processes: forked helpers that outlive their owner for a moment
// to clean up after it — the owner-death watchdog (helper/watchdog.c) and
// the payload janitor (CJobShimPayload). Both hold a pidfd of the owner and
// one end of a SOCK_SEQPACKET socket. jobshim_guardian_open and
// jobshim_guardian_finish run in the owner; the "in the new process" steps
// run after fork in a child of a multithreaded process, so they make
// async-signal-safe calls only. Each returns 0, or -1 with errno.
#ifndef CJOBSHIM_GUARDIAN_H
#define CJOBSHIM_GUARDIAN_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

// The owner's pidfd and a socket pair for talking to a guardian; 0 or -1
// (errno set, nothing left open).
int jobshim_guardian_open(int *owner_pidfd, int sockets[2]);

// Forks the guardian: _Fork (no atfork handlers: the child runs no code that
// needs them) with every signal blocked around it, so that no handler of the
// owner's runs in the child before jobshim_guardian_settle. Returns as fork
// does; the parent's mask is restored.
pid_t jobshim_guardian_fork(void);

// In the new process: moves `sources[i]` to descriptor `first + i` (a
// source of -1 leaves that number closed) and closes every other
// descriptor, so that nothing of the owner's (pipes, files) is held open.
int jobshim_guardian_keep_descriptors(const int *sources, int count, int first);

// In the new process: out of the owner's session (a Ctrl-C or hangup meant
// for the owner's terminal must not take the guardian with it), caught
// signals back at their default and `ignored` ignored, none blocked, "/" as
// the directory, `name` as the thread name. Returns -1 if chdir fails.
int jobshim_guardian_settle(const int *ignored, size_t ignored_count, const char *name);

// In the owner, after the guardian was started as `pid` (or not: pid < 0,
// errno set): closes what only the guardian needs and returns 0 with its
// pidfd and the owner's socket end, or -1 with nothing left behind.
int jobshim_guardian_finish(pid_t pid, int owner_pidfd, const int sockets[2], pid_t *pid_out, int *pidfd_out, int *socket_out);

#ifdef __cplusplus
}
#endif

#endif
