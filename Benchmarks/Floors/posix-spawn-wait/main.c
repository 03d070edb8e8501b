// floor-posix-spawn: the floor for "spawn a process and wait for it" with
// the call most programs use: posix_spawn(3) + waitpid(2).
//
// Usage: floor-posix-spawn PARENT ITERATIONS [PROGRAM]
//   PARENT      the cgroup under which jobs live (e.g. /sys/fs/cgroup/unified/jobobjects)
//   ITERATIONS  spawn+wait cycles to time
//   PROGRAM     what to run (default /bin/true), with no arguments
// Prints the nanoseconds of each cycle, one per line, on stdout.
//
// posix_spawn cannot place a child in a cgroup, so the measuring process is
// itself born in a cgroup of its own (PARENT/floor-posix-spawn-PID): every
// child it spawns starts there, as a job's members do. The cgroup is removed
// before exit. glibc's posix_spawn uses clone(CLONE_VM|CLONE_VFORK), so this
// is also a vfork-semantics floor.
#ifndef _GNU_SOURCE  // SwiftPM defines it; cc does not
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../include/floor.h"

extern char **environ;

static void die(const char *what, const char *path) {
    fprintf(stderr, "floor-posix-spawn: %s %s: %s\n", what, path ? path : "", strerror(errno));
    exit(1);
}

// rmdir can fail with EBUSY for a moment after the last process left.
int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: floor-posix-spawn PARENT ITERATIONS [PROGRAM]\n");
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
    snprintf(cgroup, sizeof(cgroup), "%s/floor-posix-spawn-%d", parent, (int)getpid());
    if (mkdir(cgroup, 0755) != 0) die("create", cgroup);

    unsigned long long *samples = calloc((size_t)iterations, sizeof(*samples));
    if (!samples) die("allocate", NULL);

    pid_t measurer = fork();
    if (measurer < 0) die("fork", NULL);
    if (measurer == 0) {
        char procs[4200];
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", cgroup);
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) die("join", procs);
        close(fd);
        for (long i = 0; i < iterations; i++) {
            pid_t pid;
            int status;
            unsigned long long t0 = floor_now_ns();
            int rc = posix_spawn(&pid, program, NULL, NULL, child_argv, environ);
            if (rc != 0) { errno = rc; die("posix_spawn", program); }
            while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR) die("waitpid", NULL);
            }
            samples[i] = floor_now_ns() - t0;
        }
        for (long i = 0; i < iterations; i++) printf("%llu\n", samples[i]);
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    while (waitpid(measurer, &status, 0) < 0 && errno == EINTR) {}
    if (floor_remove_cgroup(cgroup) != 0) die("remove", cgroup);
    if (made_parent) rmdir(parent);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
