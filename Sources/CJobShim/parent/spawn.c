// Spawning a child into a job: the parent's side. Execution context: the
// calling thread of the parent process.
//
// The child is created with CLONE_VM|CLONE_VFORK where it can be (the
// parent thread is suspended until the child execs or exits, so spawning
// costs the same from a 20 MB and a 2 GB parent) and runs
// child/spawn_child.c. Errors travel to the parent as {stage, errno}:
// written into the parent's memory on the vfork paths (the parent resumes
// only once the child has exec'd or exited, as glibc's posix_spawn does),
// through a close-on-exec pipe from a forked child. The parent reaps a
// child that failed.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"
#include "linux_compat.h"
#include "spawn_child.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// clone3 with the child on its own stack. glibc has no public clone3
// wrapper, and a raw syscall returning on a new stack cannot continue in C,
// so the child's first instructions are written out: call fn(arg), then exit.
// fn and arg ride in registers the syscall preserves (r8/r9, x2/x3).
#if defined(__x86_64__) || defined(__aarch64__)
#define CLONE3_ON_STACK_COMPILED 1
#else
#define CLONE3_ON_STACK_COMPILED 0
#endif

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

int jobshim_spawn_path_compiled(int path) {
    switch (path) {
    case JOBSHIM_PATH_CLONE3_INTO_CGROUP: return CLONE3_ON_STACK_COMPILED;
    case JOBSHIM_PATH_CLONE_JOIN:
    case JOBSHIM_PATH_FORK_JOIN:
    case JOBSHIM_PATH_FORK_INTO_CGROUP: return 1;
    default: return 0;
    }
}

int jobshim_spawn(const jobshim_spawn_config *config, int path, jobshim_spawn_result *result) {
    result->pid = -1;
    result->pidfd = -1;
    result->stage = 0;
    result->error = 0;
    if (!jobshim_spawn_path_compiled(path)) {
        result->stage = JOBSHIM_STAGE_CLONE;
        result->error = ENOSYS;
        return -1;
    }
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
    int forks = path == JOBSHIM_PATH_FORK_JOIN || path == JOBSHIM_PATH_FORK_INTO_CGROUP;
    int born_inside = path == JOBSHIM_PATH_CLONE3_INTO_CGROUP || path == JOBSHIM_PATH_FORK_INTO_CGROUP;
    if (config->has_start_gate && !forks) {
        result->stage = JOBSHIM_STAGE_CLONE;
        result->error = EINVAL;
        return -1;
    }
    if (config->seccomp_program && (config->seccomp_program_count == 0 || config->seccomp_program_count > BPF_MAXINSNS)) {
        result->stage = JOBSHIM_STAGE_SECCOMP;
        result->error = EINVAL;
        return -1;
    }

    // Only a forked child needs a pipe to report through.
    int pipe_fds[2] = {-1, -1};
    if (forks && pipe2(pipe_fds, O_CLOEXEC) != 0) {
        result->stage = JOBSHIM_STAGE_PIPE;
        result->error = errno;
        return -1;
    }

    spawn_child_context ctx;
    ctx.config = config;
    ctx.failure = (spawn_child_failure){0, 0};
    ctx.report = forks ? NULL : &ctx.failure;
    ctx.error_pipe = pipe_fds[1];
    ctx.join = !born_inside;
    ctx.dispositions_cleared = born_inside;

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
        pid = clone3_on_stack(&args, spawn_child_main, &ctx);
        if (pid < 0) {
            errno = (int)-pid;
            pid = -1;
        }
    } else if (path == JOBSHIM_PATH_FORK_INTO_CGROUP) {
        // A fork through clone3: no stack of its own (the child returns on
        // its copy of this one), so no per-architecture code. Born in the
        // job, it skips the write to cgroup.procs, which takes the kernel's
        // cgroup-wide migration lock and waits out an RCU grace period.
        struct jobshim_clone_args args;
        memset(&args, 0, sizeof(args));
        args.flags = CLONE_PIDFD | CLONE_CLEAR_SIGHAND;
        args.pidfd = (uint64_t)(uintptr_t)&pidfd;
        args.exit_signal = SIGCHLD;
        if (config->cgroup_fd >= 0) {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = (uint64_t)config->cgroup_fd;
        }
        pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid == 0) spawn_child_main(&ctx);
    } else if (path == JOBSHIM_PATH_CLONE_JOIN) {
        pid = clone(spawn_child_main, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &ctx, &pidfd);
    } else {
        pid = fork();
        if (pid == 0) spawn_child_main(&ctx);
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
    // record if it failed or waits at its start gate.
    spawn_child_failure failure = ctx.failure;
    if (forks) {
        ssize_t n;
        do {
            n = read(pipe_fds[0], &failure, sizeof(failure));
        } while (n < 0 && errno == EINTR);
        close(pipe_fds[0]);
        if (n != (ssize_t)sizeof(failure)) failure = (spawn_child_failure){0, 0};
    }
    if (failure.stage != 0 && failure.stage != JOBSHIM_STAGE_GATED) {
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
