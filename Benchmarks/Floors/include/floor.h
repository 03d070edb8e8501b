// What the C floors share: raw clone3 (glibc has no wrapper), the clock they
// time with, and removing the cgroup they made. Header-only, included as
// "../include/floor.h" by each floor's main.c (every floor is one file built
// on its own, by SwiftPM or by cc).
#ifndef FLOOR_H
#define FLOOR_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

// struct clone_args as of Linux 5.7 (CLONE_ARGS_SIZE_VER2).
struct floor_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
_Static_assert(sizeof(struct floor_clone_args) == 88, "clone_args v2 is 88 bytes");

// clone3 with fork semantics into the cgroup open as `cgroup_fd`: 0 in the
// child, its pid in the parent, -1 on failure. With `pidfd`, also a pidfd.
static inline long floor_clone3_into(int cgroup_fd, int *pidfd) {
    struct floor_clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = CLONE_INTO_CGROUP | (pidfd ? CLONE_PIDFD : 0);
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    args.exit_signal = SIGCHLD;
    args.cgroup = (uint64_t)cgroup_fd;
    return syscall(SYS_clone3, &args, sizeof(args));
}

static inline unsigned long long floor_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

// rmdir fails with EBUSY until the last member is gone: retry for up to 0.2 s.
static inline int floor_remove_cgroup(const char *path) {
    for (int attempt = 0; attempt < 2000; attempt++) {
        if (rmdir(path) == 0 || errno == ENOENT) return 0;
        if (errno != EBUSY) return -1;
        struct timespec pause = {0, 100000};
        nanosleep(&pause, NULL);
    }
    return -1;
}

#endif
