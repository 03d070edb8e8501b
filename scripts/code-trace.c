// code-trace LO HI OUT -- PROGRAM ARGS...: runs PROGRAM one instruction at a
// time (ptrace single-step) and writes to OUT every distinct instruction
// address in [LO, HI) (hex), in the order they first ran. It follows the
// children PROGRAM starts until they exec, since until then they run
// PROGRAM's code: jobsup's watchdog and the vfork child of its spawn.
//
// A helper of scripts/order-jobsup-text, which needs every function a run
// executes, however briefly; a sampling profiler misses the short ones.
// Slow on purpose: ~500,000 steps (~10 s) for `jobsup run -- /bin/true`.
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t program_counter(pid_t pid) {
    struct user_regs_struct regs;
    struct iovec io = {&regs, sizeof(regs)};
    if (ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, &io) != 0) return 0;
#if defined(__x86_64__)
    return regs.rip;
#elif defined(__aarch64__)
    return regs.pc;
#else
#error "code-trace: add this architecture's program counter"
#endif
}

int main(int argc, char **argv) {
    if (argc < 6 || strcmp(argv[4], "--") != 0) {
        fprintf(stderr, "usage: code-trace LO HI OUT -- PROGRAM ARGS...\n");
        return 2;
    }
    uint64_t lo = strtoull(argv[1], NULL, 16), hi = strtoull(argv[2], NULL, 16);
    FILE *out = fopen(argv[3], "w");
    uint8_t *seen = hi > lo ? calloc(hi - lo, 1) : NULL;
    if (!out || !seen) {
        fprintf(stderr, "code-trace: %s\n", !out ? strerror(errno) : "bad address range");
        return 2;
    }
    pid_t program = fork();
    if (program == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        execv(argv[5], argv + 5);
        _exit(127);
    }
    int status;
    waitpid(program, &status, 0);
    ptrace(PTRACE_SETOPTIONS, program, 0, PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                                              PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL);
    ptrace(PTRACE_CONT, program, 0, 0);  // runs freely up to its exec

    int started = 0;  // PROGRAM has exec'd: step from here on
    int outcome = -1;  // PROGRAM's exit code (or 128 + its signal)
    long steps = 0, traced = 1;
    while (traced > 0) {
        pid_t pid = waitpid(-1, &status, __WALL);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (pid == program) outcome = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            traced--;
            continue;
        }
        if (!WIFSTOPPED(status)) continue;
        int signal = WSTOPSIG(status), event = status >> 16, pass = 0;
        if (signal == SIGTRAP && event == PTRACE_EVENT_EXEC) {
            if (pid != program || started) {
                // A child exec'd its own program: no longer PROGRAM's code.
                ptrace(PTRACE_DETACH, pid, 0, 0);
                traced--;
                continue;
            }
            started = 1;
        } else if (signal == SIGTRAP && (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK ||
                                         event == PTRACE_EVENT_VFORK)) {
            traced++;  // the child reports its first stop (SIGSTOP) on its own
        } else if (signal != SIGTRAP && !(signal == SIGSTOP && event == 0)) {
            pass = signal;  // a real signal (SIGCHLD, ...): deliver it
        }
        if (!started) {
            ptrace(PTRACE_CONT, pid, 0, pass);
            continue;
        }
        uint64_t pc = program_counter(pid);
        if (pc >= lo && pc < hi && !seen[pc - lo]) {
            seen[pc - lo] = 1;
            fprintf(out, "%llx\n", (unsigned long long)pc);
        }
        steps++;
        ptrace(PTRACE_SINGLESTEP, pid, 0, pass);
    }
    fclose(out);
    // A trace of a run that failed is not one of what a run executes.
    if (!started || outcome != 0) {
        fprintf(stderr, "code-trace: %s %s (status %d)\n", argv[5], started ? "failed" : "did not start", outcome);
        return 1;
    }
    fprintf(stderr, "code-trace: %ld steps\n", steps);
    return 0;
}
