// Thin wrappers over syscalls that glibc does not wrap, or wraps only as
// variadic functions (syscall, prctl) that Swift cannot call.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"
#include "linux_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

int jobshim_effective_capabilities(uint64_t *mask) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0) return -1;
    *mask = (uint64_t)data[1].effective << 32 | data[0].effective;
    return 0;
}

int jobshim_pipe2(int fds[2], int flags) {
    return pipe2(fds, flags);
}

int jobshim_pidfd_open(pid_t pid, unsigned int flags) {
    return (int)syscall(SYS_pidfd_open, pid, flags);
}

int jobshim_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int jobshim_waitid_pidfd(int pidfd, siginfo_t *info, int options) {
    return waitid((idtype_t)P_PIDFD, (id_t)pidfd, info, options);
}

int jobshim_waitid_pid(pid_t pid, siginfo_t *info, int options) {
    return waitid(P_PID, (id_t)pid, info, options);
}

// Whether a child has exited and waits to be reaped; reaps nothing.
int jobshim_has_exited_child(void) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return 0;  // ECHILD: no child at all
    return info.si_pid != 0;
}

int jobshim_set_child_subreaper(int on) {
    return prctl(PR_SET_CHILD_SUBREAPER, (unsigned long)(on ? 1 : 0), 0, 0, 0);
}

int jobshim_set_parent_death_signal(int sig) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0, 0, 0);
}

int jobshim_is_child_subreaper(void) {
    int value = 0;
    if (prctl(PR_GET_CHILD_SUBREAPER, (unsigned long)&value, 0, 0, 0) != 0) return -1;
    return value;
}

pid_t jobshim_siginfo_pid(const siginfo_t *info) { return info->si_pid; }
int jobshim_siginfo_status(const siginfo_t *info) { return info->si_status; }
int jobshim_siginfo_code(const siginfo_t *info) { return info->si_code; }

// clone3(NULL, 0) fails without creating anything: ENOSYS when the syscall is
// missing or filtered, EINVAL (size too small) when it exists.
int jobshim_probe_clone3(void) {
    long rc = syscall(SYS_clone3, NULL, 0);
    return (rc == -1 && errno == ENOSYS) ? 0 : 1;
}

// Whether the running kernel is release major.minor or newer.
static int kernel_at_least(int major, int minor) {
    struct utsname name;
    int have_major = 0, have_minor = 0;
    if (uname(&name) != 0 || sscanf(name.release, "%d.%d", &have_major, &have_minor) != 2) return 0;
    return have_major > major || (have_major == major && have_minor >= minor);
}

// Linux 5.7 added CLONE_INTO_CGROUP, so a newer kernel is not probed (the
// probe still enters copy_process, ~40 us on a process's start-up path).
// Older kernels may carry it as a backport and are probed: a request naming
// a descriptor that cannot be open fails with EBADF on kernels that know the
// flag (checked before any task is made runnable) and with EINVAL or E2BIG
// on kernels that do not. CLONE_VM keeps the failed attempt cheap: without
// it the kernel copies the whole address space (every page table of a large
// process) before it looks at the descriptor. CLONE_VFORK keeps the caller
// suspended should a child ever run.
int jobshim_probe_clone_into_cgroup(void) {
    if (kernel_at_least(5, 7)) return 1;
    struct jobshim_clone_args args = {0};
    args.flags = CLONE_INTO_CGROUP | CLONE_VM | CLONE_VFORK;
    args.exit_signal = SIGCHLD;
    args.cgroup = INT_MAX;
    long rc = syscall(SYS_clone3, &args, sizeof(args));
    if (rc == 0) _exit(127);  // cannot happen; never run parent code twice
    if (rc > 0) {             // ditto: reap rather than leak
        siginfo_t info;
        waitid(P_PID, (id_t)rc, &info, WEXITED);
        return 1;
    }
    return errno == EBADF ? 1 : 0;
}

// waitid(P_PIDFD, INT_MAX) is EBADF where P_PIDFD is known (no such
// descriptor), EINVAL where not. (-1 would be EINVAL on every kernel.)
int jobshim_probe_waitid_pidfd(void) {
    siginfo_t info;
    int rc = waitid((idtype_t)P_PIDFD, (id_t)INT_MAX, &info, WEXITED | WNOHANG);
    return (rc == -1 && errno == EBADF) ? 1 : 0;
}

int jobshim_file_system(const char *path, int64_t *magic, int64_t *flags) {
    struct statfs info;
    if (statfs(path, &info) != 0) return -1;
    *magic = (int64_t)info.f_type;
    *flags = (int64_t)info.f_flags;
    return 0;
}

int jobshim_use_one_malloc_arena(void) {
    return mallopt(M_ARENA_MAX, 1);
}
