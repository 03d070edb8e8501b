// Payload storage: the mount calls the spawned child and the parent share,
// and the payload janitor that releases a payload's storage and identity
// when its owner dies before it could.
//
// jobshim_apply_mount runs in the child between clone and execve (shared
// memory, parent suspended), so it is async-signal-safe: raw syscalls only.
// The janitor runs in a forked child of a multithreaded Swift process, so it
// may only make syscalls too; everything it needs is prepared before fork.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"
#include "CJobShimPayload.h"
#include "guardian.h"
#include "linux_compat.h"

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

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif

// struct mount_attr as of Linux 5.12 (MOUNT_ATTR_SIZE_VER0); glibc before
// 2.36 lacks it, and glibc's and the kernel's headers cannot both be included.
struct jobshim_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};
_Static_assert(sizeof(struct jobshim_mount_attr) == 32, "mount_attr must match MOUNT_ATTR_SIZE_VER0");

unsigned long jobshim_ms_bind(void) { return MS_BIND; }
unsigned long jobshim_ms_rec(void) { return MS_REC; }
unsigned long jobshim_ms_slave(void) { return MS_SLAVE; }
unsigned long jobshim_ms_private(void) { return MS_PRIVATE; }

int jobshim_apply_mount(const jobshim_mount *m, int *step) {
    *step = 1;
    if (mount(m->source, m->target, m->fstype, m->flags, m->data) != 0) return -1;
    if (!m->read_only) return 0;
    *step = 2;
    // mount_setattr makes a recursive bind read-only as a whole; a remount
    // reaches only the top mount, which is what kernels before 5.12 can do.
    struct jobshim_mount_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.attr_set = MOUNT_ATTR_RDONLY;
    unsigned int flags = (m->flags & MS_REC) ? AT_RECURSIVE : 0;
    if (syscall(SYS_mount_setattr, AT_FDCWD, m->target, flags, &attr, sizeof(attr)) == 0) return 0;
    if (errno != ENOSYS) return -1;
    return mount(NULL, m->target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | m->keep_flags, NULL);
}

int jobshim_umount(const char *target, int flags) {
    return umount2(target, flags);
}

int jobshim_mount_flags_of(const char *path, unsigned long *flags) {
    struct statvfs info;
    if (statvfs(path, &info) != 0) return -1;
    // A bind remount must repeat the locked flags of the mount it copies,
    // or the kernel refuses it (EPERM) in a user namespace.
    unsigned long keep = 0;
    if (info.f_flag & ST_NOSUID) keep |= MS_NOSUID;
    if (info.f_flag & ST_NODEV) keep |= MS_NODEV;
    if (info.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
    if (info.f_flag & ST_NOATIME) keep |= MS_NOATIME;
    if (info.f_flag & ST_NODIRATIME) keep |= MS_NODIRATIME;
    if (info.f_flag & ST_RELATIME) keep |= MS_RELATIME;
    *flags = keep;
    return 0;
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

static void janitor_kill(int cgroup_fd) {
    int fd = openat(cgroup_fd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = write(fd, "1", 1);
        close(fd);
        if (n == 1) return;
    }
    jobshim_kill_frozen_members(cgroup_fd, 10);
}

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
    janitor_kill(JANITOR_CGROUP_FD);
    int events_fd = openat(JANITOR_CGROUP_FD, "cgroup.events", O_RDONLY | O_CLOEXEC);
    for (int round = 0; events_fd >= 0 && round < JANITOR_ROUNDS; round++) {
        if (janitor_job_is_empty(events_fd)) break;
        // cgroup.events raises POLLPRI on every change; the timeout only
        // bounds the wait between re-kills.
        struct pollfd entry = {events_fd, POLLPRI, 0};
        poll(&entry, 1, JANITOR_ROUND_MS);
        if (round % JANITOR_REKILL_ROUNDS == JANITOR_REKILL_ROUNDS - 1) janitor_kill(JANITOR_CGROUP_FD);
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
    if (guardian_open(&owner_pidfd, sockets) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int keep[] = {owner_pidfd, sockets[1], config->cgroup_fd, config->keep_fd};
        if (guardian_keep_descriptors(keep, 4, JANITOR_OWNER_FD) != 0) _exit(1);
        if (guardian_settle(janitor_ignored, sizeof(janitor_ignored) / sizeof(janitor_ignored[0]), "jobobjects-jan") != 0) _exit(1);
        janitor_main(config);
    }
    return guardian_finish(pid, owner_pidfd, sockets, pid_out, pidfd_out, socket_out);
}
