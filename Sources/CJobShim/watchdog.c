// The owner-death watchdog: kill-on-close that survives SIGKILL of the owner.
//
// A handle's deinit cannot run when its process is SIGKILLed, so a second
// process has to notice. The watchdog holds a pidfd of the owner; when the
// pidfd reports the owner's exit (or the owner's end of the command socket
// closes), it kills every job the owner still held and removes their cgroups.
//
// It is the owner's own executable exec'd again, which a constructor below
// turns into the watchdog before any other initialiser or main runs: forking
// instead would copy the page tables of a large, multithreaded Swift process
// and then fault in copies of every page either side writes (over a
// millisecond for jobsup). The owner does not wait for that exec: the child
// shares its memory until the exec (like vfork's) but runs beside it, and
// reports a failed exec through a close-on-exec pipe that the owner reads
// only when it first needs the watchdog (see jobshim_watchdog_confirm).
// Where the exec fails (no /proc, a seccomp filter) the watchdog is forked,
// and then runs in a forked child of a multithreaded process, where it may
// only make syscalls: that is why it is C and lives here.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"
#include "guardian.h"
#include "linux_compat.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WATCHDOG_MAX_JOBS 4096
#define WATCHDOG_PATH_MAX 4096
// How long the watchdog keeps trying to remove a killed job's cgroup.
#define WATCHDOG_REMOVE_ROUNDS 1200  // 60 s: a loaded machine can be slow to reap
#define WATCHDOG_ROUND_MS 50

typedef struct {
    int state;  // 0 free, 1 watched, 2 removing
    int rounds;
    char path[WATCHDOG_PATH_MAX];
    // A parent the library made on demand: removed too once it is empty.
    char parent[WATCHDOG_PATH_MAX];
} watched_job;

// Slots at and above this were never used: the loops stop here, so the
// table's 32 MiB of address space is only touched as far as it is needed
// (scanning all of it would fault in thousands of pages on every pass).
static int slots_used;

static int write_file(int dirfd, const char *name, const char *value) {
    int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, value, strlen(value));
    int saved = errno;
    close(fd);
    errno = saved;
    return n < 0 ? -1 : 0;
}

// Parses the decimal pids of cgroup.procs and SIGKILLs each one. Members of a
// frozen cgroup cannot exit or fork, so every pid read is still a member.
static int kill_listed(int dirfd) {
    int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
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
    close(fd);
    return killed;
}

int jobshim_kill_frozen_members(int dirfd, int rounds) {
    int total = 0;
    for (int round = 0; round < rounds; round++) {
        if (write_file(dirfd, "cgroup.freeze", "1") != 0) return -1;
        int killed = kill_listed(dirfd);
        // Always thaw: SIGKILL takes effect only once a task runs again.
        write_file(dirfd, "cgroup.freeze", "0");
        if (killed < 0) return -1;
        total += killed;
        if (killed == 0) break;
    }
    return total;
}

static void kill_job(const char *path) {
    int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) return;
    if (write_file(dirfd, "cgroup.kill", "1") != 0) jobshim_kill_frozen_members(dirfd, 10);
    close(dirfd);
}

// Removes the cgroups below `path`, deepest first (payloads may have made
// their own). getdents64 rather than opendir: no allocation here.
static void remove_children(const char *path, int depth) {
    if (depth > 32) return;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    char buffer[4096];
    long n;
    while ((n = syscall(SYS_getdents64, fd, buffer, sizeof(buffer))) > 0) {
        for (long offset = 0; offset < n;) {
            struct linux_dirent64 {
                uint64_t d_ino;
                int64_t d_off;
                unsigned short d_reclen;
                unsigned char d_type;
                char d_name[];
            } *entry = (void *)(buffer + offset);
            offset += entry->d_reclen;
            if (entry->d_type != DT_DIR || strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            char child[WATCHDOG_PATH_MAX];
            size_t len = strlen(path), name_len = strlen(entry->d_name);
            if (len + 1 + name_len + 1 > sizeof(child)) continue;
            memcpy(child, path, len);
            child[len] = '/';
            memcpy(child + len + 1, entry->d_name, name_len + 1);
            remove_children(child, depth + 1);
            rmdir(child);
        }
    }
    close(fd);
}

// 1 once the job's cgroup is gone. Fails while processes remain; the
// caller retries after killing again.
static int try_remove(const char *path, const char *parent) {
    remove_children(path, 0);
    if (rmdir(path) != 0 && errno != ENOENT) return 0;
    // Another job may still be in the parent: then this rmdir fails, as it should.
    if (parent[0] == '/') rmdir(parent);
    return 1;
}

static watched_job *find(watched_job *jobs, const char *path) {
    for (int i = 0; i < slots_used; i++) {
        if (jobs[i].state != 0 && strcmp(jobs[i].path, path) == 0) return &jobs[i];
    }
    return NULL;
}

static watched_job *add(watched_job *jobs, const char *path, const char *parent, int state) {
    watched_job *job = find(jobs, path);
    for (int i = 0; job == NULL && i < slots_used; i++) {
        if (jobs[i].state == 0) job = &jobs[i];
    }
    if (job == NULL && slots_used < WATCHDOG_MAX_JOBS) job = &jobs[slots_used++];
    if (job == NULL) return NULL;
    job->state = state;
    job->rounds = 0;
    strcpy(job->path, path);
    strcpy(job->parent, parent);
    return job;
}

// Applies one command record; returns 0, or -1 when the owner's end is gone.
static int handle_command(watched_job *jobs, int socket_fd) {
    char record[2 * WATCHDOG_PATH_MAX + 2];
    ssize_t n;
    do {
        n = recv(socket_fd, record, sizeof(record) - 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return (n < 0 && errno == EAGAIN) ? 0 : -1;
    // op, path, NUL, then optionally the on-demand parent.
    record[n] = '\0';
    const char *path = record + 1;
    size_t path_len = strnlen(path, (size_t)n - 1);
    const char *parent = (1 + path_len + 1 < (size_t)n) ? path + path_len + 1 : "";
    if (record[0] == 'X') path = "/";
    if (path[0] != '/') return 0;
    if (record[0] == 'W') {
        add(jobs, path, parent, 1);
    } else if (record[0] == 'U') {
        watched_job *job = find(jobs, path);
        if (job) job->state = 0;
    } else if (record[0] == 'X') {
        // The owner is about to exit with nothing left to watch.
        for (int i = 0; i < slots_used; i++) {
            if (jobs[i].state != 0) return 0;
        }
        _exit(0);
    } else if (record[0] == 'R') {
        kill_job(path);
        if (!try_remove(path, parent)) add(jobs, path, parent, 2);
        else {
            watched_job *job = find(jobs, path);
            if (job) job->state = 0;
        }
    }
    return 0;
}

// One pass over jobs being removed; returns how many remain.
static int advance_removals(watched_job *jobs) {
    int remaining = 0;
    for (int i = 0; i < slots_used; i++) {
        if (jobs[i].state != 2) continue;
        if (try_remove(jobs[i].path, jobs[i].parent) || ++jobs[i].rounds > WATCHDOG_REMOVE_ROUNDS) {
            jobs[i].state = 0;
        } else {
            // A member may have been forked between kill and now.
            kill_job(jobs[i].path);
            remaining++;
        }
    }
    return remaining;
}

__attribute__((noreturn)) static void watchdog_main(int owner_pidfd, int socket_fd) {
    watched_job *jobs = mmap(NULL, sizeof(watched_job) * WATCHDOG_MAX_JOBS, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (jobs == MAP_FAILED) _exit(1);

    int owner_gone = 0;
    for (;;) {
        int removing = advance_removals(jobs);
        if (owner_gone) {
            if (removing == 0) _exit(0);
            poll(NULL, 0, WATCHDOG_ROUND_MS);
            continue;
        }
        struct pollfd fds[2] = {{owner_pidfd, POLLIN, 0}, {socket_fd, POLLIN, 0}};
        int ready = poll(fds, 2, removing ? WATCHDOG_ROUND_MS : -1);
        if (ready < 0 && errno != EINTR) _exit(1);
        if (ready <= 0) continue;
        // POLLNVAL too: a descriptor that is not open can never report the
        // owner's end, so it counts as the owner gone (never a busy loop).
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
            if (handle_command(jobs, socket_fd) != 0) owner_gone = 1;
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) owner_gone = 1;
        if (!owner_gone) continue;

        // The owner is gone: apply whatever it sent last, then kill all.
        int flags = fcntl(socket_fd, F_GETFL);
        fcntl(socket_fd, F_SETFL, flags | O_NONBLOCK);
        while (handle_command(jobs, socket_fd) == 0) {
            char peek;
            if (recv(socket_fd, &peek, 1, MSG_PEEK) <= 0) break;
        }
        for (int i = 0; i < slots_used; i++) {
            if (jobs[i].state == 0) continue;
            kill_job(jobs[i].path);
            jobs[i].state = 2;
            jobs[i].rounds = 0;
        }
    }
}

// The exec'd watchdog is recognised by this argv[0] and environment, with
// the owner's pidfd as descriptor 3 and its socket end as 4.
#define WATCHDOG_ARGV0 "jobobjects-watchdog"
#define WATCHDOG_ENV "JOBOBJECTS_WATCHDOG=3,4"

// Signals a terminal or the owner's process group may send that must not
// end the watchdog before it has done its work.
static const int watchdog_ignored[] = {SIGINT, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE, SIGUSR1, SIGUSR2};

// In the new process, exec'd or forked, with the owner's pidfd as 3 and the
// socket as 4.
__attribute__((noreturn)) static void watchdog_enter(void) {
    if (guardian_settle(watchdog_ignored, sizeof(watchdog_ignored) / sizeof(watchdog_ignored[0]), "jobobjects-wd") != 0) _exit(1);
    watchdog_main(3, 4);
}

// Runs before main (and before other constructors, by its priority) in
// every executable that links the library; does nothing unless this process
// is an exec'd watchdog.
__attribute__((constructor(101))) static void watchdog_exec_entry(int argc, char **argv, char **envp) {
    if (argc != 1 || argv == NULL || argv[0] == NULL || strcmp(argv[0], WATCHDOG_ARGV0) != 0) return;
    if (envp == NULL || envp[0] == NULL || strcmp(envp[0], WATCHDOG_ENV) != 0 || envp[1] != NULL) return;
    watchdog_enter();
}

// The child of clone(CLONE_VM) without CLONE_VFORK shares the owner's memory
// and the calling thread's TLS until its exec, and runs while the owner goes
// on. It may therefore only make raw syscalls: glibc's wrappers store errno
// in that thread's TLS on failure, under the feet of the thread itself.
#if defined(__x86_64__)
static inline long child_syscall(long number, long a, long b, long c) {
    long result;
    __asm__ volatile("syscall" : "=a"(result) : "a"(number), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return result;
}
#define WATCHDOG_ASYNC_EXEC 1
#elif defined(__aarch64__)
static inline long child_syscall(long number, long a, long b, long c) {
    register long x8 __asm__("x8") = number;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
#define WATCHDOG_ASYNC_EXEC 1
#endif

// What the clone child of one start reads, and its stack: the owner's stack
// frame is gone by the time the child runs. Freed once the child has exec'd
// or is reaped (jobshim_watchdog_confirm).
struct jobshim_watchdog_exec {
    pid_t pid;
    int moved;           // its affinity excludes the owner's CPU until confirmed
    cpu_set_t affinity;  // the owner's, given back then
    int report;      // the owner's end of the exec report pipe
    int sources[3];  // owner pidfd, socket, the pipe's other end: become 3, 4, 5
    char *argv[2];
    char *envp[2];
    char image[WATCHDOG_PATH_MAX];
    char stack[16384] __attribute__((aligned(16)));
};

#ifdef WATCHDOG_ASYNC_EXEC
// Moves the descriptors into place, marks the report pipe close-on-exec and
// closes the rest, then execs; on failure writes errno to the pipe and exits.
static int exec_child_main(void *argument) {
    const jobshim_watchdog_exec *start = argument;
    long report_fd = start->sources[2];
    long high[3];
    long failure = 0;
    for (int i = 0; i < 3 && failure == 0; i++) {
        high[i] = child_syscall(SYS_fcntl, start->sources[i], F_DUPFD, 3 + 16);
        if (high[i] < 0) failure = high[i];
    }
    // Up high, the pipe survives the moves below whatever numbers it had.
    if (failure == 0) report_fd = high[2];
    for (int i = 0; i < 3 && failure == 0; i++) {
        long rc = child_syscall(SYS_dup3, high[i], 3 + i, 0);
        if (rc < 0) failure = rc;
    }
    if (failure == 0) {
        report_fd = 5;
        child_syscall(SYS_fcntl, 5, F_SETFD, FD_CLOEXEC);
        if (child_syscall(SYS_close_range, 6, ~0U, 0) != 0) {
            for (long fd = 6; fd < 1024; fd++) child_syscall(SYS_close, fd, 0, 0);
        }
        failure = child_syscall(SYS_execve, (long)start->image, (long)start->argv, (long)start->envp);
    }
    int error = (int)-failure;
    child_syscall(SYS_write, report_fd, (long)&error, sizeof(error));
    child_syscall(SYS_exit_group, 127, 0, 0);
    return 127;
}

// Keeps the new child off the calling thread's CPU, so that its exec runs
// beside the owner: left to the scheduler, the child was queued behind the
// owner on its CPU until the owner blocked, and jobsup then waited ~130 us
// for the exec before its payload's spawn. Returns whether it was moved.
static int move_off_this_cpu(pid_t pid, cpu_set_t *affinity) {
    if (sched_getaffinity(0, sizeof(*affinity), affinity) != 0 || CPU_COUNT(affinity) < 2) return 0;
    int here = sched_getcpu();
    if (here < 0 || !CPU_ISSET(here, affinity)) return 0;
    cpu_set_t elsewhere = *affinity;
    CPU_CLR(here, &elsewhere);
    return sched_setaffinity(pid, sizeof(elsewhere), &elsewhere) == 0;
}

// Starts the exec of the watchdog and returns its pid without waiting for
// it, with *pending what jobshim_watchdog_confirm needs; -1 when the child
// could not be made (nothing is left running then).
static pid_t watchdog_exec_async(const char *image, int owner_pidfd, int socket_fd, jobshim_watchdog_exec **pending) {
    if (strlen(image) >= WATCHDOG_PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    jobshim_watchdog_exec *start = malloc(sizeof(*start));
    if (start == NULL) return -1;
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        free(start);
        return -1;
    }
    start->report = pipe_fds[0];
    start->sources[0] = owner_pidfd;
    start->sources[1] = socket_fd;
    start->sources[2] = pipe_fds[1];
    start->argv[0] = WATCHDOG_ARGV0;
    start->argv[1] = NULL;
    start->envp[0] = WATCHDOG_ENV;
    start->envp[1] = NULL;
    strcpy(start->image, image);
    // No handler of ours may run in the child; it unblocks all in watchdog_enter.
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid_t pid = clone(exec_child_main, start->stack + sizeof(start->stack), CLONE_VM | SIGCHLD, start);
    int saved_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    close(pipe_fds[1]);
    if (pid < 0) {
        close(pipe_fds[0]);
        free(start);
        errno = saved_errno;
        return -1;
    }
    start->pid = pid;
    start->moved = move_off_this_cpu(pid, &start->affinity);
    *pending = start;
    return pid;
}
#endif

#ifndef WATCHDOG_ASYNC_EXEC
// vfork + exec, for where the clone child cannot be written without libc:
// returns its pid once the exec happened, or -1 when it failed.
static pid_t watchdog_exec_sync(const char *image, int owner_pidfd, int socket_fd) {
    char *argv[] = {WATCHDOG_ARGV0, NULL};
    char *envp[] = {WATCHDOG_ENV, NULL};
    // Written by the vfork child (it shares our memory) when exec fails.
    volatile int exec_failed = 0;
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid_t pid = vfork();
    if (pid == 0) {
        int keep[] = {owner_pidfd, socket_fd};
        if (guardian_keep_descriptors(keep, 2, 3) == 0) {
            syscall(SYS_execve, image, argv, envp);
        }
        exec_failed = 1;
        _exit(127);
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (pid < 0) return -1;
    if (exec_failed) {
        siginfo_t info;
        waitid(P_PID, (id_t)pid, &info, WEXITED);
        return -1;
    }
    return pid;
}

#endif

// fork, for when the exec is not possible.
static pid_t watchdog_fork(int owner_pidfd, int socket_fd) {
    pid_t pid = fork();
    if (pid == 0) {
        int keep[] = {owner_pidfd, socket_fd};
        if (guardian_keep_descriptors(keep, 2, 3) != 0) _exit(1);
        watchdog_enter();
    }
    return pid;
}

int jobshim_watchdog_start(const char *image, pid_t *pid_out, int *pidfd_out, int *socket_out,
                           jobshim_watchdog_exec **pending) {
    int owner_pidfd, sockets[2];
    if (guardian_open(&owner_pidfd, sockets) != 0) return -1;
    *pending = NULL;
#ifdef WATCHDOG_ASYNC_EXEC
    pid_t pid = watchdog_exec_async(image, owner_pidfd, sockets[1], pending);
#else
    pid_t pid = watchdog_exec_sync(image, owner_pidfd, sockets[1]);
#endif
    if (pid < 0) pid = watchdog_fork(owner_pidfd, sockets[1]);
    int rc = guardian_finish(pid, owner_pidfd, sockets, pid_out, pidfd_out, socket_out);
    if (rc != 0) {
        // guardian_finish reaped the child: nothing uses the block any more.
        jobshim_watchdog_discard(*pending);
        *pending = NULL;
    }
    return rc;
}

int jobshim_watchdog_start_forked(pid_t *pid_out, int *pidfd_out, int *socket_out) {
    int owner_pidfd, sockets[2];
    if (guardian_open(&owner_pidfd, sockets) != 0) return -1;
    pid_t pid = watchdog_fork(owner_pidfd, sockets[1]);
    return guardian_finish(pid, owner_pidfd, sockets, pid_out, pidfd_out, socket_out);
}

void jobshim_watchdog_discard(jobshim_watchdog_exec *pending) {
    if (pending == NULL) return;
    close(pending->report);
    free(pending);
}

int jobshim_watchdog_confirm(int pidfd, jobshim_watchdog_exec *pending) {
    if (pending == NULL) return 0;
    int error = 0;
    ssize_t n;
    do {
        n = read(pending->report, &error, sizeof(error));
    } while (n < 0 && errno == EINTR);
    close(pending->report);
    // End of file: the pipe closed at the exec. Otherwise the exec failed and
    // the child has exited or is about to: reap it before its memory goes.
    if (n != 0) {
        siginfo_t info;
        while (waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED) != 0 && errno == EINTR) {}
    } else if (pending->moved) {
        // Exec'd (not reaped: this is the owner's child, and the caller has
        // not waited for it, so the pid is still its): it may run anywhere
        // the owner may again.
        sched_setaffinity(pending->pid, sizeof(pending->affinity), &pending->affinity);
    }
    free(pending);
    if (n == 0) return 0;
    errno = n == (ssize_t)sizeof(error) && error > 0 ? error : EIO;
    return -1;
}
