// Spawning a child into a job: the code between clone and execve.
//
// The child shares the parent's memory (CLONE_VM) and the parent thread is
// suspended until the child execs or exits (CLONE_VFORK), so spawning costs
// the same from a 20 MB and a 2 GB parent. Because memory is shared, the
// child may only make async-signal-safe calls: no malloc, no locks, and no
// glibc wrapper that talks to other threads. In particular setuid/setgid/
// setgroups go through syscall(2) directly: glibc's wrappers broadcast the
// change to every thread of the *parent* (the "setxid" protocol), which
// would be a disaster from here. Errors travel to the parent as
// {stage, errno}: written into the parent's memory on the vfork paths (the
// parent resumes only once the child has exec'd or exited, as glibc's
// posix_spawn does), through a close-on-exec pipe from a forked child. The
// parent reaps a child that failed.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"
#include "linux_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef _NSIG
#define _NSIG 65
#endif

typedef struct {
    int stage;  // 0: none
    int error;
} child_failure;

// Shared between parent and child. On the vfork paths the child reads it in
// place (shared memory); on the fork path it reads its own copy.
typedef struct {
    const jobshim_spawn_config *config;
    sigset_t parent_mask;
    // Where a failure goes: the parent's `failure` on the vfork paths
    // (error_pipe -1), the pipe's write end on the fork path (report NULL).
    child_failure *report;
    int error_pipe;
    child_failure failure;
    int join;  // 1: write "0" to cgroup.procs first
    // 1: the kernel already set every caught signal to SIG_DFL
    // (CLONE_CLEAR_SIGHAND), so the child need not ask about all 64.
    int dispositions_cleared;
} child_context;

__attribute__((noreturn)) static void child_fail(const child_context *ctx, int stage) {
    child_failure failure = {stage, errno};
    if (ctx->report != NULL) {
        *ctx->report = failure;
    } else {
        ssize_t ignored = write(ctx->error_pipe, &failure, sizeof(failure));
        (void)ignored;
    }
    _exit(127);
}

// Signal handlers installed by the parent must not run in the child, whose
// stack and state they do not know: every caught signal goes back to its
// default. Ignored signals stay ignored, as execve would keep them.
void jobshim_reset_signal_dispositions(void) {
    for (int sig = 1; sig < _NSIG; sig++) {
        struct sigaction current;
        if (sigaction(sig, NULL, &current) != 0) continue;  // glibc-internal signals
        if (current.sa_handler == SIG_IGN || current.sa_handler == SIG_DFL) continue;
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
    }
}

// Makes child fd i a copy of sources[i] (i < count) and marks every other
// descriptor close-on-exec, so the payload inherits exactly what was asked.
static int arrange_descriptors(const child_context *ctx, int *error_pipe) {
    const jobshim_spawn_config *c = ctx->config;
    int count = c->fd_count;
    int sources[JOBSHIM_MAX_FDS];
    for (int i = 0; i < count; i++) sources[i] = c->fd_sources[i];

    // The error pipe (if any) and any source that a dup2 below would
    // overwrite move above the target range first.
    if (*error_pipe >= 0 && *error_pipe < count) {
        int moved = fcntl(*error_pipe, F_DUPFD_CLOEXEC, count);
        if (moved < 0) return -1;
        *error_pipe = moved;
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
static int child_main(void *arg) {
    child_context *ctx = arg;
    const jobshim_spawn_config *c = ctx->config;
    int error_pipe = ctx->error_pipe;
    child_context local = *ctx;  // child_fail reads the (possibly moved) pipe from here
    local.error_pipe = error_pipe;

    // Join the job first, before anything else can happen to this process.
    if (ctx->join && c->cgroup_procs_fd >= 0) {
        if (write(c->cgroup_procs_fd, "0", 1) != 1) child_fail(&local, JOBSHIM_STAGE_CGROUP_JOIN);
    }

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

    if (c->session == 2 && setsid() < 0) child_fail(&local, JOBSHIM_STAGE_SESSION);
    if (c->session == 1 && setpgid(0, 0) < 0) child_fail(&local, JOBSHIM_STAGE_SESSION);

    // Storage, while still privileged. The namespace is the child's own: it
    // dies with the last process of the job, and its mounts with it.
    if (c->new_mount_namespace) {
        if (unshare(CLONE_NEWNS) != 0) child_fail(&local, JOBSHIM_STAGE_MOUNT_NAMESPACE);
        if (c->root_propagation && mount(NULL, "/", NULL, c->root_propagation, NULL) != 0)
            child_fail(&local, JOBSHIM_STAGE_MOUNT_PROPAGATION);
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
    if (arrange_descriptors(ctx, &local.error_pipe) != 0) child_fail(&local, JOBSHIM_STAGE_FDS);

    // Last, so the filter applies to the payload and not to this setup.
    if (c->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(&local, JOBSHIM_STAGE_NO_NEW_PRIVS);
    if (c->seccomp_program) {
        struct sock_fprog program = {(unsigned short)c->seccomp_program_count, (struct sock_filter *)c->seccomp_program};
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) != 0) child_fail(&local, JOBSHIM_STAGE_SECCOMP);
    }

    execve(c->path, c->argv, c->envp);
    child_fail(&local, JOBSHIM_STAGE_EXEC);
}

// clone3 with the child on its own stack. glibc has no public clone3
// wrapper, and a raw syscall returning on a new stack cannot continue in C,
// so the child's first instructions are written out: call fn(arg), then exit.
// fn and arg ride in registers the syscall preserves (r8/r9, x2/x3).
static long clone3_on_stack(struct jobshim_clone_args *args, int (*fn)(void *), void *arg) {
#if defined(__x86_64__)
    long ret;
    register void *r8 __asm__("r8") = (void *)fn;
    register void *r9 __asm__("r9") = arg;
    __asm__ volatile(
        "syscall\n\t"
        "test %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        "xor %%ebp, %%ebp\n\t"
        "mov %%r9, %%rdi\n\t"
        "call *%%r8\n\t"
        "mov %%eax, %%edi\n\t"
        "mov $60, %%eax\n\t"  // SYS_exit
        "syscall\n\t"
        "hlt\n\t"
        "1:\n\t"
        : "=a"(ret)
        : "0"((long)SYS_clone3), "D"(args), "S"(sizeof(*args)), "r"(r8), "r"(r9)
        : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = SYS_clone3;
    register long x0 __asm__("x0") = (long)args;
    register long x1 __asm__("x1") = (long)sizeof(*args);
    register void *x2 __asm__("x2") = (void *)fn;
    register void *x3 __asm__("x3") = arg;
    __asm__ volatile(
        "svc #0\n\t"
        "cbnz x0, 1f\n\t"
        "mov x29, xzr\n\t"
        "mov x0, x3\n\t"
        "blr x2\n\t"
        "mov x8, #93\n\t"  // SYS_exit
        "svc #0\n\t"
        "1:\n\t"
        : "+r"(x0)
        : "r"(x8), "r"(x1), "r"(x2), "r"(x3)
        : "memory", "cc");
    return x0;
#else
    (void)args; (void)fn; (void)arg;
    return -ENOSYS;
#endif
}

// Room for the child between clone and exec: it calls a few syscalls and
// sigaction, nothing deep. It lives in the parent's frame, which is idle
// while the vfork child runs.
#define CHILD_STACK_SIZE (32 * 1024)

int jobshim_spawn(const jobshim_spawn_config *config, int path, jobshim_spawn_result *result) {
    result->pid = -1;
    result->pidfd = -1;
    result->stage = 0;
    result->error = 0;
    if (config->fd_count < 0 || config->fd_count > JOBSHIM_MAX_FDS) {
        result->stage = JOBSHIM_STAGE_FDS;
        result->error = EINVAL;
        return -1;
    }
    if (config->mount_count < 0 || config->mount_count > JOBSHIM_MAX_MOUNTS) {
        result->stage = JOBSHIM_STAGE_MOUNT;
        result->error = EINVAL;
        return -1;
    }
    if (config->seccomp_program && (config->seccomp_program_count == 0 || config->seccomp_program_count > BPF_MAXINSNS)) {
        result->stage = JOBSHIM_STAGE_SECCOMP;
        result->error = EINVAL;
        return -1;
    }

    // Only a forked child needs a pipe to report through.
    int forks = path != JOBSHIM_PATH_CLONE3_INTO_CGROUP && path != JOBSHIM_PATH_CLONE_JOIN;
    int pipe_fds[2] = {-1, -1};
    if (forks && pipe2(pipe_fds, O_CLOEXEC) != 0) {
        result->stage = JOBSHIM_STAGE_PIPE;
        result->error = errno;
        return -1;
    }

    child_context ctx;
    ctx.config = config;
    ctx.failure = (child_failure){0, 0};
    ctx.report = forks ? NULL : &ctx.failure;
    ctx.error_pipe = pipe_fds[1];
    ctx.join = (path != JOBSHIM_PATH_CLONE3_INTO_CGROUP);
    ctx.dispositions_cleared = (path == JOBSHIM_PATH_CLONE3_INTO_CGROUP);

    // Block every signal so no parent handler runs in the child before it
    // resets dispositions; the parent's mask comes back right after clone.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &ctx.parent_mask);

    _Alignas(16) char stack[CHILD_STACK_SIZE];
    int pidfd = -1;
    long pid;
    if (path == JOBSHIM_PATH_CLONE3_INTO_CGROUP) {
        struct jobshim_clone_args args;
        memset(&args, 0, sizeof(args));
        // CLONE_CLEAR_SIGHAND (Linux 5.5; this path needs 5.7) does in the
        // kernel, at once, what jobshim_reset_signal_dispositions does with
        // two sigaction calls per signal: ~70 system calls fewer between
        // clone and exec, while the parent waits.
        args.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_CLEAR_SIGHAND;
        args.pidfd = (uint64_t)(uintptr_t)&pidfd;
        args.exit_signal = SIGCHLD;
        args.stack = (uint64_t)(uintptr_t)stack;
        args.stack_size = sizeof(stack);
        if (config->cgroup_fd >= 0) {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = (uint64_t)config->cgroup_fd;
        }
        pid = clone3_on_stack(&args, child_main, &ctx);
        if (pid < 0) {
            errno = (int)-pid;
            pid = -1;
        }
    } else if (path == JOBSHIM_PATH_CLONE_JOIN) {
        pid = clone(child_main, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &ctx, &pidfd);
    } else {
        pid = fork();
        if (pid == 0) child_main(&ctx);
        if (pid > 0) {
            pidfd = jobshim_pidfd_open((pid_t)pid, 0);
            if (pidfd < 0) {
                // Without a pidfd the child cannot be handled safely: end it.
                int saved = errno;
                kill((pid_t)pid, SIGKILL);
                siginfo_t info;
                waitid(P_PID, (id_t)pid, &info, WEXITED);
                errno = saved;
                pid = -1;
            }
        }
    }
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &ctx.parent_mask, NULL);
    if (forks) close(pipe_fds[1]);

    if (pid < 0) {
        if (forks) close(pipe_fds[0]);
        result->stage = JOBSHIM_STAGE_CLONE;
        result->error = clone_errno;
        return -1;
    }

    // A vfork child has exec'd or exited by now: its report is in place.
    // A forked one: EOF once it exec'd (the pipe was close-on-exec), a
    // record if it failed.
    child_failure failure = ctx.failure;
    if (forks) {
        ssize_t n;
        do {
            n = read(pipe_fds[0], &failure, sizeof(failure));
        } while (n < 0 && errno == EINTR);
        close(pipe_fds[0]);
        if (n != (ssize_t)sizeof(failure)) failure = (child_failure){0, 0};
    }
    if (failure.stage != 0) {
        siginfo_t info;
        while (waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED) != 0 && errno == EINTR) {}
        close(pidfd);
        result->stage = failure.stage;
        result->error = failure.error;
        return -1;
    }
    result->pid = (pid_t)pid;
    result->pidfd = pidfd;
    return 0;
}
