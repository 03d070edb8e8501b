// floor-cgroup-kill: the kernel's floor for tearing a job down: write
// cgroup.kill, wait for cgroup.events "populated 0" (poll POLLPRI), rmdir.
// With --wait-children it waits for its children's exits instead (what a
// supervisor that knows its members can do: the kernel notifies
// cgroup.events at most every 10 ms, an exit at once), then rmdir.
//
// Usage: floor-cgroup-kill [--wait-children] PARENT PROCS ITERATIONS [PROGRAM ARG]
//   PARENT      the cgroup under which jobs live (e.g. /sys/fs/cgroup/unified/jobobjects)
//   PROCS       sleeping processes in the job when it is torn down
//   ITERATIONS  teardowns to time, each of a fresh PARENT/floor-cgroup-kill-PID
//   PROGRAM ARG what the members run (default /bin/sleep 3600)
// Prints the nanoseconds of each teardown, one per line, on stdout: from
// the write to cgroup.kill until rmdir succeeded. Filling the job and reaping
// the killed children afterwards are not timed.
#ifndef _GNU_SOURCE  // SwiftPM defines it; cc does not
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
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
    fprintf(stderr, "floor-cgroup-kill: %s %s: %s\n", what, path ? path : "", strerror(errno));
    exit(1);
}

// 1 when cgroup.events says "populated 0". Reading also re-arms POLLPRI.
static int is_empty(int events_fd) {
    char buf[256];
    ssize_t n = pread(events_fd, buf, sizeof(buf) - 1, 0);
    if (n < 0) die("read", "cgroup.events");
    buf[n] = 0;
    return strstr(buf, "populated 0") != NULL;
}

static int wait_children;

static unsigned long long teardown(const char *cgroup, long procs, char **child_argv) {
    if (mkdir(cgroup, 0755) != 0) die("create", cgroup);
    int cgroup_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd < 0) die("open", cgroup);
    int kill_fd = openat(cgroup_fd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
    if (kill_fd < 0) die("open cgroup.kill in", cgroup);
    int events_fd = openat(cgroup_fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
    if (events_fd < 0) die("open cgroup.events in", cgroup);

    // Every child holds the write end until it execs (close-on-exec), so EOF
    // on the read end means all of them are running the payload.
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) die("pipe", NULL);
    for (long i = 0; i < procs; i++) {
        long pid = floor_clone3_into(cgroup_fd, NULL);
        if (pid == 0) {
            execve(child_argv[0], child_argv, environ);
            _exit(127);
        }
        if (pid < 0) die("clone3 into", cgroup);
    }
    close(ready[1]);
    char byte;
    while (read(ready[0], &byte, 1) < 0 && errno == EINTR) {}
    close(ready[0]);

    unsigned long long t0 = floor_now_ns();
    if (write(kill_fd, "1", 1) != 1) die("write cgroup.kill in", cgroup);
    for (long i = 0; wait_children && i < procs; i++) {
        while (wait(NULL) < 0 && errno == EINTR) {}
    }
    while (!is_empty(events_fd)) {
        struct pollfd p = {events_fd, POLLPRI, 0};
        int rc = poll(&p, 1, 30000);
        if (rc == 0) { errno = ETIMEDOUT; die("wait for populated 0 in", cgroup); }
        if (rc < 0 && errno != EINTR) die("poll cgroup.events in", cgroup);
    }
    // rmdir can fail with EBUSY for a moment after the last process left.
    while (rmdir(cgroup) != 0) {
        if (errno != EBUSY) die("remove", cgroup);
        sched_yield();
    }
    unsigned long long elapsed = floor_now_ns() - t0;

    close(kill_fd);
    close(events_fd);
    close(cgroup_fd);
    for (long i = 0; !wait_children && i < procs; i++) {
        while (wait(NULL) < 0 && errno == EINTR) {}
    }
    return elapsed;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--wait-children") == 0) {
        wait_children = 1;
        argv++;
        argc--;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: floor-cgroup-kill [--wait-children] PARENT PROCS ITERATIONS [PROGRAM ARG]\n");
        return 2;
    }
    const char *parent = argv[1];
    long procs = strtol(argv[2], NULL, 10);
    long iterations = strtol(argv[3], NULL, 10);
    char *child_argv[] = {argc > 4 ? argv[4] : "/bin/sleep", argc > 5 ? argv[5] : "3600", NULL};
    if (procs < 0) procs = 0;
    if (iterations <= 0) iterations = 1;

    int made_parent = mkdir(parent, 0755) == 0;
    if (!made_parent && errno != EEXIST) die("create", parent);
    char cgroup[4096];
    snprintf(cgroup, sizeof(cgroup), "%s/floor-cgroup-kill-%d", parent, (int)getpid());
    for (long i = 0; i < iterations; i++) printf("%llu\n", teardown(cgroup, procs, child_argv));
    if (made_parent) rmdir(parent);
    return 0;
}
