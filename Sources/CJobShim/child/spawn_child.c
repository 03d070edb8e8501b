// The spawned child, from its first instruction to execve. Execution
// context: a vfork child (CLONE_VM|CLONE_VFORK) on the clone paths, a
// forked one on the fork path.
//
// The child shares the parent's memory and the parent thread is suspended
// until the child execs or exits, so the child may only make
// async-signal-safe calls: no malloc, no locks, and no glibc wrapper that
// talks to other threads. In particular setuid/setgid/setgroups go through
// syscall(2) directly: glibc's wrappers broadcast the change to every thread
// of the *parent* (the "setxid" protocol), which would be a disaster from
// here. A failure is reported as {stage, errno} (spawn_child_fail) and the
// child exits 127.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "spawn_child.h"
#include "dispositions.h"
#include "linux_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef _NSIG
#define _NSIG 65
#endif

__attribute__((noreturn)) static void child_fail(const spawn_child_context *ctx, int stage) {
    spawn_child_failure failure = {stage, errno};
    if (ctx->report != NULL) {
        *ctx->report = failure;
    } else {
        ssize_t ignored = write(ctx->error_pipe, &failure, sizeof(failure));
        (void)ignored;
    }
    _exit(127);
}

// Makes child fd i a copy of sources[i] (i < count) and marks every other
// descriptor close-on-exec, so the payload inherits exactly what was asked.
// The error pipe and the start gate, still needed until exec, move out of
// the way of the dup2s.
static int arrange_descriptors(const spawn_child_context *ctx, int *error_pipe, int *gate) {
    const jobshim_spawn_config *c = ctx->config;
    int count = c->fd_count;
    int sources[JOBSHIM_MAX_FDS];
    for (int i = 0; i < count; i++) sources[i] = c->fd_sources[i];

    // The error pipe, the gate and any source that a dup2 below would
    // overwrite move above the target range first.
    int *kept[2] = {error_pipe, gate};
    for (int k = 0; k < 2; k++) {
        if (*kept[k] < 0 || *kept[k] >= count) continue;
        int moved = fcntl(*kept[k], F_DUPFD_CLOEXEC, count);
        if (moved < 0) return -1;
        *kept[k] = moved;
    }
    for (int i = 0; i < count; i++) {
        if (sources[i] >= 0 && sources[i] < count && sources[i] != i) {
            int moved = fcntl(sources[i], F_DUPFD_CLOEXEC, count);
            if (moved < 0) return -1;
            sources[i] = moved;
        }
    }
    for (int i = 0; i < count; i++) {
        if (sources[i] < 0) continue;
        if (sources[i] == i) {
            int flags = fcntl(i, F_GETFD);
            if (flags < 0 || fcntl(i, F_SETFD, flags & ~FD_CLOEXEC) < 0) return -1;
        } else if (dup2(sources[i], i) < 0) {
            return -1;
        }
    }
    int first = count > 3 ? count : 3;
    if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
    // Before Linux 5.11: mark each descriptor up to the soft limit.
    struct rlimit nofile;
    long limit = 65536;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (rlim_t)limit) limit = (long)nofile.rlim_cur;
    for (long fd = first; fd < limit; fd++) {
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
    }
    return 0;
}

// Keeps exactly `keep` in the bounding set; called while still privileged.
static int drop_bounding_set(uint64_t keep) {
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        if (keep & (1ULL << cap)) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return -1;
    }
    return 0;
}

// After the uid switch: permitted = effective = inheritable = keep, and keep
// raised into the ambient set so it survives execve for a non-root user.
static int apply_capabilities(uint64_t keep) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    data[0].permitted = data[0].effective = data[0].inheritable = (uint32_t)keep;
    data[1].permitted = data[1].effective = data[1].inheritable = (uint32_t)(keep >> 32);
    if (syscall(SYS_capset, &header, data) != 0) return -1;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return -1;
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        if (!(keep & (1ULL << cap))) continue;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) return -1;
    }
    return 0;
}

// The child, in the order design.md gives. Never returns.
int spawn_child_main(void *arg) {
    spawn_child_context *ctx = arg;
    const jobshim_spawn_config *c = ctx->config;
    int error_pipe = ctx->error_pipe;
    spawn_child_context local = *ctx;  // child_fail reads the (possibly moved) pipe from here
    local.error_pipe = error_pipe;

    // Join the job first, before anything else can happen to this process.
    if (ctx->join && c->cgroup_procs_fd >= 0) {
        if (write(c->cgroup_procs_fd, "0", 1) != 1) child_fail(&local, JOBSHIM_STAGE_CGROUP_JOIN);
    }
    // Now that the child is in the job, make the job its cgroup root. (A
    // CLONE_NEWCGROUP in clone3's flags would root the namespace at the
    // parent's cgroup: the kernel copies namespaces before it moves the child.)
    if (c->new_cgroup_namespace && unshare(CLONE_NEWCGROUP) != 0) child_fail(&local, JOBSHIM_STAGE_CGROUP_NAMESPACE);

    if (!ctx->dispositions_cleared) jobshim_reset_signal_dispositions();
    if (c->reset_signal_mask) {
        sigset_t mask;
        sigemptyset(&mask);
        for (int sig = 1; sig < _NSIG && sig <= 64; sig++) {
            if (c->blocked_signals & (UINT64_C(1) << (sig - 1))) sigaddset(&mask, sig);
        }
        sigprocmask(SIG_SETMASK, &mask, NULL);
    } else {
        sigprocmask(SIG_SETMASK, &ctx->parent_mask, NULL);
    }

    if (c->session >= 2 && setsid() < 0) child_fail(&local, JOBSHIM_STAGE_SESSION);
    // The terminal is what standard input will be; any descriptor of it makes
    // it the new session's controlling terminal, so this needs no dup2 yet.
    if (c->session == 3) {
        int terminal = c->fd_count > 0 && c->fd_sources[0] >= 0 ? c->fd_sources[0] : 0;
        if (ioctl(terminal, TIOCSCTTY, 0) != 0) child_fail(&local, JOBSHIM_STAGE_CONTROLLING_TERMINAL);
    }
    if (c->session == 1 && setpgid(0, 0) < 0) child_fail(&local, JOBSHIM_STAGE_SESSION);

    // Storage, while still privileged. The namespace is the child's own: it
    // dies with the last process of the job, and its mounts with it.
    if (c->new_mount_namespace) {
        if (unshare(CLONE_NEWNS) != 0) child_fail(&local, JOBSHIM_STAGE_MOUNT_NAMESPACE);
        if (c->root_propagation && mount(NULL, "/", NULL, c->root_propagation, NULL) != 0)
            child_fail(&local, JOBSHIM_STAGE_MOUNT_PROPAGATION);
    } else if (c->join_mount_namespace && setns(c->mount_namespace_fd, CLONE_NEWNS) != 0) {
        child_fail(&local, JOBSHIM_STAGE_MOUNT_NAMESPACE);
    }
    for (int i = 0; i < c->mount_count; i++) {
        int step = 1;
        if (jobshim_apply_mount(&c->mounts[i], &step) != 0)
            child_fail(&local, (step == 1 ? JOBSHIM_STAGE_MOUNT : JOBSHIM_STAGE_MOUNT_READ_ONLY) + i);
    }

    for (int i = 0; i < c->rlimit_count; i++) {
        struct rlimit limit = {(rlim_t)c->rlimits[i].soft, (rlim_t)c->rlimits[i].hard};
        if (setrlimit((__rlimit_resource_t)c->rlimits[i].resource, &limit) != 0) child_fail(&local, JOBSHIM_STAGE_RLIMIT);
    }

    if (c->set_caps) {
        if (drop_bounding_set(c->cap_keep) != 0) child_fail(&local, JOBSHIM_STAGE_CAPS_BOUNDING);
        // Keep permitted capabilities across the uid switch below.
        if (c->uid >= 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) child_fail(&local, JOBSHIM_STAGE_CAPS);
    }
    if (c->set_groups && syscall(SYS_setgroups, (size_t)c->group_count, c->groups) != 0)
        child_fail(&local, JOBSHIM_STAGE_GROUPS);
    if (c->gid >= 0 && syscall(SYS_setresgid, (gid_t)c->gid, (gid_t)c->gid, (gid_t)c->gid) != 0)
        child_fail(&local, JOBSHIM_STAGE_GID);
    if (c->uid >= 0 && syscall(SYS_setresuid, (uid_t)c->uid, (uid_t)c->uid, (uid_t)c->uid) != 0)
        child_fail(&local, JOBSHIM_STAGE_UID);
    if (c->set_caps && apply_capabilities(c->cap_keep) != 0) child_fail(&local, JOBSHIM_STAGE_CAPS);

    // The working directory is entered as the payload's user, so it gets that
    // user's permission checks.
    if (c->cwd && chdir(c->cwd) != 0) child_fail(&local, JOBSHIM_STAGE_CHDIR);

    // Standard descriptors before the gate, so that a process held there
    // already holds only its own: the creator's output pipe (an engine
    // reading create's output to its end) is not kept open by it.
    int gate = c->has_start_gate ? c->start_gate_fd : -1;
    if (arrange_descriptors(ctx, &local.error_pipe, &gate) != 0) child_fail(&local, JOBSHIM_STAGE_FDS);

    // The start gate: everything that can fail for a reason the caller must
    // hear is done, so report that, stop reporting (the caller has returned)
    // and wait for the byte that lets the payload run.
    if (c->has_start_gate) {
        spawn_child_failure gated = {JOBSHIM_STAGE_GATED, 0};
        ssize_t ignored = write(local.error_pipe, &gated, sizeof(gated));
        (void)ignored;
        close(local.error_pipe);
        local.error_pipe = -1;
        char byte;
        ssize_t n;
        do {
            n = read(gate, &byte, 1);
        } while (n < 0 && errno == EINTR);
        if (n != 1) _exit(127);
        close(gate);
    }

    // Last, so the filter applies to the payload and not to this setup.
    if (c->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(&local, JOBSHIM_STAGE_NO_NEW_PRIVS);
    if (c->seccomp_program) {
        struct sock_fprog program = {(unsigned short)c->seccomp_program_count, (struct sock_filter *)c->seccomp_program};
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) != 0) child_fail(&local, JOBSHIM_STAGE_SECCOMP);
    }

    execve(c->path, c->argv, c->envp);
    child_fail(&local, JOBSHIM_STAGE_EXEC);
}

