// epoll without the packed struct, and signals delivered as eventfd counts.
//
// A signal handler may only make async-signal-safe calls, so the handlers
// here do one write(2) to an eventfd or pipe and nothing else; the work happens in
// the epoll loop that reads it.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int jobshim_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event event;
    memset(&event, 0, sizeof(event));
    event.events = events;
    event.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &event);
}

int jobshim_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int max, int timeout_ms) {
    struct epoll_event ready[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, ready, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        tokens[i] = ready[i].data.u64;
        events[i] = ready[i].events;
    }
    return n;
}

static atomic_int sigchld_fd = -1;

static void sigchld_handler(int sig) {
    (void)sig;
    int saved = errno;
    uint64_t one = 1;
    ssize_t ignored = write(atomic_load(&sigchld_fd), &one, sizeof(one));
    (void)ignored;
    errno = saved;
}

int jobshim_notify_sigchld(int efd) {
    atomic_store(&sigchld_fd, efd);
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = sigchld_handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGCHLD, &action, NULL);
}

// The pipe each forwarded signal is written to, as descriptor + 1 (0: none),
// so that notifiers for different signals do not take each other's over.
static atomic_int signal_pipes[_NSIG];

// For the synchronous signals: the action the notifier replaced, which a
// fault of this process's own goes back to (the Swift runtime's crash
// report, or the default core dump). Written when the handler is installed,
// before it can run for that signal.
static struct sigaction replaced_actions[_NSIG];

static int is_synchronous(int sig) {
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP || sig == SIGABRT ||
           sig == SIGSYS;
}

static void forwarded_handler(int sig, siginfo_t *info, void *context);

// A synchronous signal the kernel raised for a fault (si_code > 0) or that
// this process sent itself (abort) is a crash, not a signal to pass on: the
// replaced action takes over. A fault re-runs the faulting instruction on
// return and so reaches it; a signal sent to itself is raised again.
static int crash_goes_on(int sig, const siginfo_t *info) {
    if (!is_synchronous(sig)) return 0;
    if (info != NULL && info->si_code <= 0 && info->si_pid != getpid()) return 0;
    sigaction(sig, &replaced_actions[sig], NULL);
    if (info == NULL || info->si_code <= 0) raise(sig);
    return 1;
}

static void forwarded_handler(int sig, siginfo_t *info, void *context) {
    (void)context;
    if (crash_goes_on(sig, info)) return;
    // The kernel reports a write of this process's own to a closed pipe or
    // past RLIMIT_FSIZE as SI_USER from its own pid (SEND_SIG_NOINFO).
    if ((sig == SIGPIPE || sig == SIGXFSZ) && info != NULL && info->si_code == SI_USER &&
        info->si_pid == getpid()) return;
    int saved = errno;
    int fd = atomic_load(&signal_pipes[sig]) - 1;
    if (fd >= 0) {
        unsigned char number = (unsigned char)sig;
        ssize_t ignored = write(fd, &number, 1);
        (void)ignored;
    }
    errno = saved;
}

int jobshim_notify_signals(int pipe_fd, const int *signals, int count, int keep_ignored) {
    // Every number is checked before anything changes, so a refusal leaves
    // every signal delivered where it was.
    for (int i = 0; i < count; i++) {
        if (signals[i] <= 0 || signals[i] >= _NSIG || signals[i] == SIGKILL || signals[i] == SIGSTOP) {
            errno = EINVAL;
            return -1;
        }
    }
    for (int i = 0; i < count; i++) {
        atomic_store(&signal_pipes[signals[i]], pipe_fd + 1);
        struct sigaction action;
        memset(&action, 0, sizeof(action));
        action.sa_sigaction = forwarded_handler;
        action.sa_flags = SA_RESTART | SA_SIGINFO;
        sigemptyset(&action.sa_mask);
        struct sigaction previous;
        if (sigaction(signals[i], &action, &previous) != 0) return -1;
        if (is_synchronous(signals[i]) && previous.sa_sigaction != forwarded_handler) replaced_actions[signals[i]] = previous;
        // Put back, rather than ask first: one call for each signal, and a
        // second only for the rare one that was ignored.
        if (keep_ignored && !(previous.sa_flags & SA_SIGINFO) && previous.sa_handler == SIG_IGN) {
            if (sigaction(signals[i], &previous, NULL) != 0) return -1;
        }
    }
    return 0;
}

int jobshim_signal_is_ignored(int sig) {
    struct sigaction current;
    if (sigaction(sig, NULL, &current) != 0) return -1;
    return !(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN;
}

int jobshim_set_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
