// floor-job-supervisor: the kernel's floor for what `jobsup run -- CMD` does
// as a whole process, for the whole-process set beside tini: become a child
// subreaper, block the signals a supervisor forwards, create the job's
// cgroup, clone3(CLONE_INTO_CGROUP) CMD into it, wait for it, kill what is
// left (cgroup.kill), remove the cgroup and exit with CMD's status.
// No owner-death watchdog, no forwarding loop, no accounting: the least any
// job supervisor must do.
//
// Usage: floor-job-supervisor PARENT CMD [ARGS...]
//   PARENT  an existing cgroup under which the job (PARENT/floor-PID) is made
#ifndef _GNU_SOURCE  // SwiftPM defines it; cc does not
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../include/floor.h"

extern char **environ;

static int fail(const char *what, const char *path) {
    fprintf(stderr, "floor-job-supervisor: %s %s: %s\n", what, path, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: floor-job-supervisor PARENT CMD [ARGS...]\n");
        return 2;
    }
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    sigset_t forwarded, old;
    sigemptyset(&forwarded);
    int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) sigaddset(&forwarded, signals[i]);
    sigprocmask(SIG_BLOCK, &forwarded, &old);

    char job[4096];
    snprintf(job, sizeof(job), "%s/floor-%d", argv[1], (int)getpid());
    if (mkdir(job, 0755) != 0) return fail("create", job);
    int job_fd = open(job, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (job_fd < 0) return fail("open", job);

    int pidfd = -1;
    long pid = floor_clone3_into(job_fd, &pidfd);
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    if (pid < 0) return fail("clone3 into", job);
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED) != 0 && errno == EINTR) {}

    int kill_fd = openat(job_fd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
    if (kill_fd >= 0) {
        if (write(kill_fd, "1", 1) != 1) fail("kill", job);
        close(kill_fd);
    }
    close(job_fd);
    if (floor_remove_cgroup(job) != 0) return fail("remove", job);
    return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}
