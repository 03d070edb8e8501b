// Syscalls the benchmark harness needs and Swift cannot call itself
// (variadic syscall(2)) or that libc lacks (pidfd_open, waitid(P_PIDFD)).
// Only the raw baselines use these; the measured library goes through its
// own public API.
#ifndef CBENCHSUPPORT_H
#define CBENCHSUPPORT_H

#include <sys/types.h>

/// pidfd_open(2); -1 and errno on failure.
int bench_pidfd_open(pid_t pid);

/// Blocks in poll(2) until the pidfd is readable (the process exited), then
/// reaps it with waitid(P_PIDFD). Returns the exit code, 128+signal, or -1.
int bench_pidfd_wait(int pidfd);

/// posix_spawn(3) of `path` with `argv` and this process's environment;
/// stdin/stdout/stderr become `in`/`out`/`err` when >= 0. Returns the pid,
/// or -1 with errno set.
pid_t bench_posix_spawn(const char *path, char *const argv[], int in, int out, int err);

/// waitpid(2) for `pid`, retrying EINTR. Returns the exit code, 128+signal, or -1.
int bench_waitpid(pid_t pid);

/// pipe2(fds, O_CLOEXEC) (glibc declares pipe2 only with _GNU_SOURCE).
int bench_pipe_cloexec(int fds[2]);

/// memfd_create(name, MFD_CLOEXEC) of `size` bytes; -1 and errno on failure.
int bench_memfd(const char *name, long size);

/// Resident set size of this process in bytes (/proc/self/statm).
long long bench_resident_bytes(void);

#endif
