// floor-clone3: the kernel's floor for "spawn a process into a job and wait
// for it": raw clone3(CLONE_INTO_CGROUP | CLONE_PIDFD), execve in the child,
// waitid(P_PIDFD) in the parent. No library, no allocation, no threads.
//
// Usage: floor-clone3 PARENT ITERATIONS [PROGRAM]
//   PARENT      the cgroup under which jobs live (e.g. /sys/fs/cgroup/unified/jobobjects)
//   ITERATIONS  spawn+wait cycles to time
//   PROGRAM     what to run (default /bin/true), with no arguments
// Prints the nanoseconds of each cycle, one per line, on stdout.
//
// Children are born in PARENT/floor-clone3-PID, which this program creates
// and removes. clone3 is used with fork semantics (no CLONE_VM): from a
// process this small that is the cheapest correct way in plain C, since a
// raw CLONE_VM|CLONE_VFORK child would need its own stack (see CJobShim).
#ifndef _GNU_SOURCE  // SwiftPM defines it; cc does not
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../include/floor.h"

extern char **environ;

static void die(const char *what, const char *path) {
    fprintf(stderr, "floor-clone3: %s %s: %s\n", what, path ? path : "", strerror(errno));
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: floor-clone3 PARENT ITERATIONS [PROGRAM]\n");
        return 2;
    }
    const char *parent = argv[1];
    long iterations = strtol(argv[2], NULL, 10);
    char *program = argc > 3 ? argv[3] : "/bin/true";
    char *child_argv[] = {program, NULL};
    if (iterations <= 0) iterations = 1;

    int made_parent = mkdir(parent, 0755) == 0;
    if (!made_parent && errno != EEXIST) die("create", parent);
    char cgroup[4096];
    snprintf(cgroup, sizeof(cgroup), "%s/floor-clone3-%d", parent, (int)getpid());
    if (mkdir(cgroup, 0755) != 0) die("create", cgroup);
    int cgroup_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd < 0) die("open", cgroup);

    unsigned long long *samples = calloc((size_t)iterations, sizeof(*samples));
    if (!samples) die("allocate", NULL);
    int failed = 0;
    for (long i = 0; i < iterations && !failed; i++) {
        int pidfd = -1;
        unsigned long long t0 = floor_now_ns();
        long pid = floor_clone3_into(cgroup_fd, &pidfd);
        if (pid == 0) {
            execve(program, child_argv, environ);
            _exit(127);
        }
        if (pid < 0) { perror("floor-clone3: clone3"); failed = 1; break; }
        siginfo_t info;
        while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED) != 0) {
            if (errno != EINTR) { perror("floor-clone3: waitid"); failed = 1; break; }
        }
        samples[i] = floor_now_ns() - t0;
        close(pidfd);
        if (info.si_code != CLD_EXITED || info.si_status != 0) {
            fprintf(stderr, "floor-clone3: %s did not exit 0\n", program);
            failed = 1;
        }
    }
    close(cgroup_fd);
    if (floor_remove_cgroup(cgroup) != 0) die("remove", cgroup);
    if (made_parent) rmdir(parent);
    if (failed) return 1;
    for (long i = 0; i < iterations; i++) printf("%llu\n", samples[i]);
    return 0;
}
