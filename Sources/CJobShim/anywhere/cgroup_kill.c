// Killing a cgroup's members where cgroup.kill (Linux 5.14) is missing.
// Execution context: any — the parent, the watchdog and the payload
// janitor call it; it makes only async-signal-safe calls (open, read,
// write, kill, close) and allocates nothing.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

// 0, or -1 with errno.
static int write_control(int dirfd, const char *name, const char *value) {
    JOBSHIM_AUTO_CLOSE int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    return write(fd, value, strlen(value)) < 0 ? -1 : 0;
}

// Parses the decimal pids of cgroup.procs and SIGKILLs each one; the number
// killed, or -1 with errno. Members of a frozen cgroup cannot exit or fork,
// so every pid read is still a member.
static int kill_listed(int dirfd) {
    JOBSHIM_AUTO_CLOSE int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buffer[4096];
    int killed = 0;
    long pid = 0;
    int in_number = 0;
    ssize_t n;
    while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            char ch = buffer[i];
            if (ch >= '0' && ch <= '9') {
                pid = pid * 10 + (ch - '0');
                in_number = 1;
            } else if (in_number) {
                if (kill((pid_t)pid, SIGKILL) == 0) killed++;
                pid = 0;
                in_number = 0;
            }
        }
    }
    if (in_number && kill((pid_t)pid, SIGKILL) == 0) killed++;
    return killed;
}

int jobshim_kill_frozen_members(int dirfd, int rounds) {
    int total = 0;
    for (int round = 0; round < rounds; round++) {
        if (write_control(dirfd, "cgroup.freeze", "1") != 0) return -1;
        int killed = kill_listed(dirfd);
        int saved = errno;
        // Always thaw: SIGKILL takes effect only once a task runs again.
        write_control(dirfd, "cgroup.freeze", "0");
        errno = saved;
        if (killed < 0) return -1;
        total += killed;
        if (killed == 0) break;
    }
    return total;
}

int jobshim_kill_cgroup(int dirfd) {
    if (write_control(dirfd, "cgroup.kill", "1") == 0) return 0;
    return jobshim_kill_frozen_members(dirfd, 10) < 0 ? -1 : 0;
}
