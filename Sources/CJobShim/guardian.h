// Guardian processes: helpers that outlive their owner for a moment to clean
// up after it — the owner-death watchdog (watchdog.c) and the payload janitor
// (mounts.c). Both hold a pidfd of the owner and one end of a SOCK_SEQPACKET
// socket; guardian_open and guardian_finish are the owner's steps they
// share. The "in the new process" steps are the forked janitor's: the
// watchdog shares its owner's memory and may call no libc function, so it
// has its own (watchdog.c). Internal to CJobShim.
#ifndef JOBSHIM_GUARDIAN_H
#define JOBSHIM_GUARDIAN_H

#include <stddef.h>
#include <sys/types.h>

// The owner's pidfd and a socket pair for talking to a guardian; 0 or -1
// (errno set, nothing left open).
int guardian_open(int *owner_pidfd, int sockets[2]);

// In the new process: moves `sources[i]` to descriptor `first + i` (a
// source of -1 leaves that number closed) and closes every other
// descriptor, so that nothing of the owner's (pipes, files) is held open.
int guardian_keep_descriptors(const int *sources, int count, int first);

// In the new process: out of the owner's session (a Ctrl-C or hangup meant
// for the owner's terminal must not take the guardian with it), caught
// signals back at their default and `ignored` ignored, none blocked, "/" as
// the directory, `name` as the thread name. Returns -1 if chdir fails.
int guardian_settle(const int *ignored, size_t ignored_count, const char *name);

// In the owner, after the guardian was started as `pid` (or not: pid < 0,
// errno set): closes what only the guardian needs and returns 0 with its
// pidfd and the owner's socket end, or -1 with nothing left behind.
int guardian_finish(pid_t pid, int owner_pidfd, const int sockets[2], pid_t *pid_out, int *pidfd_out, int *socket_out);

#endif
