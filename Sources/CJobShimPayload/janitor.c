// The payload janitor, which releases a payload's storage and identity when
// its owner dies before it could, and the parent's mount helpers.
//
// Execution context of the janitor: a forked child of a multithreaded Swift
// process (see CJobShimGuardian.h), so it makes async-signal-safe calls
// only; everything it needs is prepared before the fork.
#ifndef _GNU_SOURCE
#error "CJobShimPayload must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"
#include "CJobShimGuardian.h"
#include "CJobShimPayload.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

int jobshim_umount(const char *target, int flags) {
    return umount2(target, flags);
}

int jobshim_lock_exclusive_nonblocking(int fd) {
    return flock(fd, LOCK_EX | LOCK_NB);
}

// MARK: - The janitor

// How long the janitor waits for the job to become empty: rounds of
// JANITOR_ROUND_MS, re-killing every JANITOR_REKILL_ROUNDS (a process may
// have been forked between a kill and the next read).
#define JANITOR_ROUNDS 1200
#define JANITOR_ROUND_MS 100
#define JANITOR_REKILL_ROUNDS 10

enum { JANITOR_OWNER_FD = 3, JANITOR_SOCKET_FD, JANITOR_CGROUP_FD, JANITOR_KEEP_FD };

// 1 when cgroup.events says "populated 0", or the cgroup is gone.
static int janitor_job_is_empty(int events_fd) {
    char buffer[256];
    ssize_t n = pread(events_fd, buffer, sizeof(buffer) - 1, 0);
    if (n < 0) return 1;  // ENODEV: the cgroup was removed, so it is empty
    buffer[n] = '\0';
    const char *key = strstr(buffer, "populated ");
    return key == NULL || key[10] == '0';
}

__attribute__((noreturn)) static void janitor_release(const jobshim_janitor_config *c) {
    jobshim_kill_cgroup(JANITOR_CGROUP_FD);
    int events_fd = openat(JANITOR_CGROUP_FD, "cgroup.events", O_RDONLY | O_CLOEXEC);
    for (int round = 0; events_fd >= 0 && round < JANITOR_ROUNDS; round++) {
        if (janitor_job_is_empty(events_fd)) break;
        // cgroup.events raises POLLPRI on every change; the timeout only
        // bounds the wait between re-kills.
        struct pollfd entry = {events_fd, POLLPRI, 0};
        poll(&entry, 1, JANITOR_ROUND_MS);
        if (round % JANITOR_REKILL_ROUNDS == JANITOR_REKILL_ROUNDS - 1) jobshim_kill_cgroup(JANITOR_CGROUP_FD);
    }
    for (int i = c->unmount_count - 1; i >= 0; i--) {
        umount2(c->unmount[i], MNT_DETACH);
    }
    for (int i = 0; i < c->remove_count; i++) {
        if (unlink(c->remove[i]) != 0 && (errno == EISDIR || errno == EPERM)) rmdir(c->remove[i]);
    }
    _exit(0);
}

__attribute__((noreturn)) static void janitor_main(const jobshim_janitor_config *c) {
    for (;;) {
        struct pollfd fds[2] = {{JANITOR_OWNER_FD, POLLIN, 0}, {JANITOR_SOCKET_FD, POLLIN, 0}};
        int ready = poll(fds, 2, -1);
        if (ready < 0 && errno != EINTR) janitor_release(c);
        if (ready <= 0) continue;
        // A 'D' already sent wins over the owner's exit that followed it.
        char op = 0;
        ssize_t n = recv(JANITOR_SOCKET_FD, &op, 1, MSG_DONTWAIT);
        if (n == 1 && op == 'D') _exit(0);
        if (n == 0 || (fds[0].revents & POLLIN)) janitor_release(c);
        if (n < 0 && errno != EAGAIN && errno != EINTR) janitor_release(c);
    }
}

// Like the watchdog's, and SIGTERM too: the janitor must outlive a
// `kill -TERM` of the owner's whole process group.
static const int janitor_ignored[] = {SIGINT, SIGHUP, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE, SIGUSR1, SIGUSR2};

int jobshim_janitor_start(const jobshim_janitor_config *config, pid_t *pid_out, int *pidfd_out, int *socket_out) {
    int owner_pidfd, sockets[2];
    if (jobshim_guardian_open(&owner_pidfd, sockets) != 0) return -1;
    pid_t pid = jobshim_guardian_fork();
    if (pid == 0) {
        int keep[] = {owner_pidfd, sockets[1], config->cgroup_fd, config->keep_fd};
        if (jobshim_guardian_keep_descriptors(keep, 4, JANITOR_OWNER_FD) != 0) _exit(1);
        if (jobshim_guardian_settle(janitor_ignored, sizeof(janitor_ignored) / sizeof(janitor_ignored[0]), "jobobjects-jan") != 0) _exit(1);
        janitor_main(config);
    }
    return jobshim_guardian_finish(pid, owner_pidfd, sockets, pid_out, pidfd_out, socket_out);
}
