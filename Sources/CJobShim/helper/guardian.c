// The steps the owner-death watchdog and the payload janitor share; see
// CJobShimGuardian.h. The "in the new process" ones run after fork in a child of a
// multithreaded process, so they make syscalls only.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShimGuardian.h"
#include "CJobShim.h"
#include "dispositions.h"
#include "linux_compat.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int jobshim_guardian_open(int *owner_pidfd, int sockets[2]) {
    *owner_pidfd = jobshim_pidfd_open(getpid(), 0);
    if (*owner_pidfd < 0) return -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sockets) != 0) {
        int saved = errno;
        close(*owner_pidfd);
        errno = saved;
        return -1;
    }
    return 0;
}

pid_t jobshim_guardian_fork(void) {
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid_t pid = _Fork();
    if (pid != 0) {
        int saved_errno = errno;
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        errno = saved_errno;
    }
    return pid;
}

int jobshim_guardian_keep_descriptors(const int *sources, int count, int first) {
    // Up out of the way first, so that no source is overwritten by another's dup2.
    int high[8];
    if (count > 8) return -1;
    for (int i = 0; i < count; i++) {
        high[i] = sources[i] < 0 ? -1 : fcntl(sources[i], F_DUPFD, first + 16);
        if (sources[i] >= 0 && high[i] < 0) return -1;
    }
    for (int i = 0; i < count; i++) {
        if (high[i] < 0) close(first + i);
        else if (dup2(high[i], first + i) < 0) return -1;
    }
    // Below `first` too: a guardian holding the owner's standard streams
    // would keep a pipe the owner writes to open after the owner is gone.
    unsigned ranges[2][2] = {{0, (unsigned)first - 1}, {(unsigned)(first + count), ~0U}};
    for (int i = 0; i < 2; i++) {
        if (ranges[i][0] > ranges[i][1] || syscall(SYS_close_range, ranges[i][0], ranges[i][1], 0) == 0) continue;
        for (unsigned fd = ranges[i][0]; fd <= ranges[i][1] && fd < 1024; fd++) close((int)fd);
    }
    return 0;
}

int jobshim_guardian_settle(const int *ignored, size_t ignored_count, const char *name) {
    setsid();
    jobshim_reset_signal_dispositions();
    for (size_t i = 0; i < ignored_count; i++) signal(ignored[i], SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (chdir("/") != 0) return -1;
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
    return 0;
}

int jobshim_guardian_finish(pid_t pid, int owner_pidfd, const int sockets[2], pid_t *pid_out, int *pidfd_out, int *socket_out) {
    int saved = errno;
    close(owner_pidfd);
    close(sockets[1]);
    if (pid < 0) {
        close(sockets[0]);
        errno = saved;
        return -1;
    }
    int pidfd = jobshim_pidfd_open(pid, 0);
    if (pidfd < 0) {
        saved = errno;
        close(sockets[0]);
        kill(pid, SIGKILL);
        siginfo_t info;
        waitid(P_PID, (id_t)pid, &info, WEXITED);
        errno = saved;
        return -1;
    }
    *pid_out = pid;
    *pidfd_out = pidfd;
    *socket_out = sockets[0];
    return 0;
}
