// The owner-death watchdog: kill-on-close that survives SIGKILL of the owner.
//
// A handle's deinit cannot run when its process is SIGKILLed, so a second
// process has to notice. The watchdog holds a pidfd of the owner; when the
// pidfd reports the owner's exit (or the owner's end of the command socket
// closes), it kills every job the owner still held and removes their cgroups.
//
// It is a child made by clone(CLONE_VM): a process of its own (pid,
// descriptors, signal mask, working directory) that shares the owner's
// memory, so nothing is copied and nothing exec'd, and it starts in tens of
// microseconds. An exec'd image (what it used to be) cost ~0.5 ms of CPU per
// start on a VM, most of it libc's start-up (CPUID queries, each a VM exit);
// a fork copies the page tables of a large process and then faults in a copy
// of every page either side writes. Sharing memory sets the rules here:
// - all its state is in one mapping the owner makes per watchdog (stack,
//   job table) and unmaps once it has reaped it: no static variables, as two
//   watchdogs of one owner would share them;
// - it calls no libc function: it runs on the owner thread's TLS, where
//   libc's wrappers would store errno, and a first call through a lazily
//   bound PLT slot would run the dynamic linker on that thread's behalf. It
//   makes raw syscalls and has string helpers of its own;
// - it keeps every signal blocked, as the owner blocked them around the
//   clone: no handler of the owner's ever runs in it, and only SIGKILL ends it.
// Sharing memory has two costs: the kernel's OOM killer, when it picks the
// owner, kills every process that shares the owner's memory, the watchdog
// too (so does a core dump of the owner before Linux 5.16); and the memory
// of a killed owner is freed only once its watchdog has finished. So a watchdog that has watched a job for a second execs into an
// image of its own (the owner's executable, turned into the watchdog by a
// constructor below before any other initialiser or main runs), taking its
// state along: it copies the state into a memfd just before the exec and
// maps that after it. Short-lived owners such as `jobsup run -- /bin/true`
// never pay for an exec (nor for the memfd: their watchdog's memory is
// private and anonymous, the cheapest to fault in and to free); long-lived
// ones pay once, and their jobs are then guarded by a process that shares
// nothing with them. Where the exec fails (no /proc, a seccomp filter) it
// goes on as it was.
// The owner keeps a reaped watchdog's mapping for its next watchdog
// (jobshim_watchdog_start takes it back): a supervisor that stops its
// watchdog just before it exits leaves the unmapping to the exit, which
// frees the whole address space at once, rather than pay for an munmap
// (and a TLB shootdown of the CPU the watchdog ran on) on its way out.
// Where no raw syscall is written below, the watchdog is forked instead.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"
#include "guardian.h"
#include "linux_compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WATCHDOG_MAX_JOBS 4096
#define WATCHDOG_PATH_MAX 4096
// How long the watchdog keeps trying to remove a killed job's cgroup.
#define WATCHDOG_REMOVE_ROUNDS 1200  // 60 s: a loaded machine can be slow to reap
#define WATCHDOG_ROUND_MS 50
// remove_children recurses up to 32 levels of ~8 KiB each.
#define WATCHDOG_STACK_SIZE (1024 * 1024)
#define WATCHDOG_GUARD_SIZE 4096
// How long a watchdog watches jobs in the owner's memory before it execs
// (counted from the first job it watches).
#define WATCHDOG_OWN_IMAGE_AFTER_NS 1000000000L

// The exec'd watchdog is recognised by this argv[0] and environment, with
// the owner's pidfd as descriptor 3, its socket end as 4 and the memfd
// holding its state as 5.
#define WATCHDOG_ARGV0 "jobobjects-watchdog"
#define WATCHDOG_ENV "JOBOBJECTS_WATCHDOG=3,4,5"
#define WATCHDOG_MAGIC 0x6a6f6277  // what an exec'd watchdog checks it mapped

#if defined(__x86_64__)
#define WATCHDOG_SHARES_MEMORY 1
static inline long sys6(long number, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
}
#elif defined(__aarch64__)
#define WATCHDOG_SHARES_MEMORY 1
static inline long sys6(long number, long a, long b, long c, long d, long e, long f) {
    register long x8 __asm__("x8") = number;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
    return x0;
}
#else
// A forked watchdog has TLS of its own: libc's wrapper is safe there.
static inline long sys6(long number, long a, long b, long c, long d, long e, long f) {
    long result = syscall(number, a, b, c, d, e, f);
    return result == -1 ? -errno : result;
}
#endif

// Raw syscalls: the result, or -errno.
#define sys1(n, a) sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

// The string functions the watchdog needs; no_builtin keeps the compiler
// from turning their loops back into libc calls.
#if __has_attribute(no_builtin)
#define WATCHDOG_OWN_CODE __attribute__((no_builtin))
#else
#define WATCHDOG_OWN_CODE
#endif

WATCHDOG_OWN_CODE static size_t text_length(const char *text, size_t limit) {
    size_t length = 0;
    while (length < limit && text[length] != '\0') length++;
    return length;
}

WATCHDOG_OWN_CODE static int same_text(const char *a, const char *b) {
    while (*a != '\0' && *a == *b) a++, b++;
    return *a == *b;
}

WATCHDOG_OWN_CODE static void copy_bytes(char *to, const char *from, size_t count) {
    for (size_t i = 0; i < count; i++) to[i] = from[i];
}

typedef struct {
    int state;  // 0 free, 1 watched, 2 removing
    int rounds;
    char path[WATCHDOG_PATH_MAX];
    // A parent the library made on demand: removed too once it is empty.
    char parent[WATCHDOG_PATH_MAX];
} watched_job;

// One watchdog's state, at the top of its mapping (above its stack).
typedef struct {
    uint32_t magic;
    int owner_pidfd;
    int socket_fd;
    int may_exec;  // whether an exec of /proc/self/exe reaches watchdog_exec_entry
    int own_image;  // 1 once exec'd into its own image, -1 if that failed
    long own_image_at;  // CLOCK_MONOTONIC ns: a second after the first watch; 0 before
    // Slots at and above this were never used: the loops stop here, so the
    // table's 32 MiB of address space is only touched as far as it is needed
    // (scanning all of it would fault in thousands of pages on every pass).
    int slots_used;
    watched_job jobs[WATCHDOG_MAX_JOBS];
} watchdog;

static size_t mapping_size(void) {
    return WATCHDOG_GUARD_SIZE + WATCHDOG_STACK_SIZE + sizeof(watchdog);
}

static int open_at(int dirfd, const char *name, int flags) {
    return (int)sys4(SYS_openat, dirfd, name, flags | O_CLOEXEC, 0);
}

// 0 or -errno.
static int write_file(int dirfd, const char *name, const char *value) {
    int fd = open_at(dirfd, name, O_WRONLY);
    if (fd < 0) return fd;
    long n = sys3(SYS_write, fd, value, text_length(value, SIZE_MAX));
    sys1(SYS_close, fd);
    return n < 0 ? (int)n : 0;
}

// Parses the decimal pids of cgroup.procs and SIGKILLs each one; the number
// killed or -errno. Members of a frozen cgroup cannot exit or fork, so every
// pid read is still a member.
static int kill_listed(int dirfd) {
    int fd = open_at(dirfd, "cgroup.procs", O_RDONLY);
    if (fd < 0) return fd;
    char buffer[4096];
    int killed = 0;
    long pid = 0;
    int in_number = 0;
    long n;
    while ((n = sys3(SYS_read, fd, buffer, sizeof(buffer))) > 0) {
        for (long i = 0; i < n; i++) {
            char ch = buffer[i];
            if (ch >= '0' && ch <= '9') {
                pid = pid * 10 + (ch - '0');
                in_number = 1;
            } else if (in_number) {
                if (sys2(SYS_kill, pid, SIGKILL) == 0) killed++;
                pid = 0;
                in_number = 0;
            }
        }
    }
    if (in_number && sys2(SYS_kill, pid, SIGKILL) == 0) killed++;
    sys1(SYS_close, fd);
    return killed;
}

// The total killed or -errno.
static int kill_frozen_members(int dirfd, int rounds) {
    int total = 0;
    for (int round = 0; round < rounds; round++) {
        int rc = write_file(dirfd, "cgroup.freeze", "1");
        if (rc != 0) return rc;
        int killed = kill_listed(dirfd);
        // Always thaw: SIGKILL takes effect only once a task runs again.
        write_file(dirfd, "cgroup.freeze", "0");
        if (killed < 0) return killed;
        total += killed;
        if (killed == 0) break;
    }
    return total;
}

int jobshim_kill_frozen_members(int dirfd, int rounds) {
    int rc = kill_frozen_members(dirfd, rounds);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return rc;
}

static void kill_job(const char *path) {
    int dirfd = open_at(AT_FDCWD, path, O_RDONLY | O_DIRECTORY);
    if (dirfd < 0) return;
    if (write_file(dirfd, "cgroup.kill", "1") != 0) kill_frozen_members(dirfd, 10);
    sys1(SYS_close, dirfd);
}

static long remove_directory(const char *path) {
    return sys3(SYS_unlinkat, AT_FDCWD, path, AT_REMOVEDIR);
}

// Removes the cgroups below `path`, deepest first (payloads may have made
// their own).
static void remove_children(const char *path, int depth) {
    if (depth > 32) return;
    int fd = open_at(AT_FDCWD, path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    char buffer[4096];
    long n;
    while ((n = sys3(SYS_getdents64, fd, buffer, sizeof(buffer))) > 0) {
        for (long offset = 0; offset < n;) {
            struct linux_dirent64 {
                uint64_t d_ino;
                int64_t d_off;
                unsigned short d_reclen;
                unsigned char d_type;
                char d_name[];
            } *entry = (void *)(buffer + offset);
            offset += entry->d_reclen;
            if (entry->d_type != DT_DIR || same_text(entry->d_name, ".") || same_text(entry->d_name, "..")) continue;
            char child[WATCHDOG_PATH_MAX];
            size_t len = text_length(path, SIZE_MAX), name_len = text_length(entry->d_name, SIZE_MAX);
            if (len + 1 + name_len + 1 > sizeof(child)) continue;
            copy_bytes(child, path, len);
            child[len] = '/';
            copy_bytes(child + len + 1, entry->d_name, name_len + 1);
            remove_children(child, depth + 1);
            remove_directory(child);
        }
    }
    sys1(SYS_close, fd);
}

// 1 once the job's cgroup is gone. Fails while processes remain; the
// caller retries after killing again.
static int try_remove(const char *path, const char *parent) {
    remove_children(path, 0);
    long rc = remove_directory(path);
    if (rc != 0 && rc != -ENOENT) return 0;
    // Another job may still be in the parent: then this rmdir fails, as it should.
    if (parent[0] == '/') remove_directory(parent);
    return 1;
}

static watched_job *find(watchdog *w, const char *path) {
    for (int i = 0; i < w->slots_used; i++) {
        if (w->jobs[i].state != 0 && same_text(w->jobs[i].path, path)) return &w->jobs[i];
    }
    return NULL;
}

static watched_job *add(watchdog *w, const char *path, const char *parent, int state) {
    // The owner sends paths under 4000 bytes. A longer one is refused, not
    // cut: a cut path could name another cgroup, which the watchdog would kill.
    size_t path_len = text_length(path, WATCHDOG_PATH_MAX), parent_len = text_length(parent, WATCHDOG_PATH_MAX);
    if (path_len == WATCHDOG_PATH_MAX || parent_len == WATCHDOG_PATH_MAX) return NULL;
    watched_job *job = find(w, path);
    for (int i = 0; job == NULL && i < w->slots_used; i++) {
        if (w->jobs[i].state == 0) job = &w->jobs[i];
    }
    if (job == NULL && w->slots_used < WATCHDOG_MAX_JOBS) job = &w->jobs[w->slots_used++];
    if (job == NULL) return NULL;
    job->state = state;
    job->rounds = 0;
    copy_bytes(job->path, path, path_len + 1);
    copy_bytes(job->parent, parent, parent_len + 1);
    return job;
}

__attribute__((noreturn)) static void exit_now(int status) {
    for (;;) sys1(SYS_exit_group, status);
}

// Applies one command record; returns 0, or -1 when the owner's end is gone
// (or, with MSG_DONTWAIT in `flags`, nothing is left to read).
static int handle_command(watchdog *w, int flags) {
    char record[2 * WATCHDOG_PATH_MAX + 2];
    long n;
    do {
        n = sys6(SYS_recvfrom, w->socket_fd, (long)record, sizeof(record) - 1, flags, 0, 0);
    } while (n == -EINTR);
    if (n <= 0) return (n == -EAGAIN && !(flags & MSG_DONTWAIT)) ? 0 : -1;
    // op, path, NUL, then optionally the on-demand parent.
    record[n] = '\0';
    const char *path = record + 1;
    size_t path_len = text_length(path, (size_t)n - 1);
    const char *parent = (1 + path_len + 1 < (size_t)n) ? path + path_len + 1 : "";
    if (record[0] == 'X') path = "/";
    if (path[0] != '/') return 0;
    if (record[0] == 'W') {
        add(w, path, parent, 1);
    } else if (record[0] == 'U') {
        watched_job *job = find(w, path);
        if (job) job->state = 0;
    } else if (record[0] == 'X') {
        // The owner is about to exit with nothing left to watch.
        for (int i = 0; i < w->slots_used; i++) {
            if (w->jobs[i].state != 0) return 0;
        }
        exit_now(0);
    } else if (record[0] == 'R') {
        kill_job(path);
        if (!try_remove(path, parent)) add(w, path, parent, 2);
        else {
            watched_job *job = find(w, path);
            if (job) job->state = 0;
        }
    }
    return 0;
}

// One pass over jobs being removed; returns how many remain.
static int advance_removals(watchdog *w) {
    int remaining = 0;
    for (int i = 0; i < w->slots_used; i++) {
        watched_job *job = &w->jobs[i];
        if (job->state != 2) continue;
        if (try_remove(job->path, job->parent) || ++job->rounds > WATCHDOG_REMOVE_ROUNDS) {
            job->state = 0;
        } else {
            // A member may have been forked between kill and now.
            kill_job(job->path);
            remaining++;
        }
    }
    return remaining;
}

static long monotonic_now(void) {
    struct timespec now;
    now.tv_sec = now.tv_nsec = 0;  // fields one by one: an initialiser may become a memset call
    sys2(SYS_clock_gettime, CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000000L + now.tv_nsec;
}

static int watching(const watchdog *w) {
    for (int i = 0; i < w->slots_used; i++) {
        if (w->jobs[i].state == 1) return 1;
    }
    return 0;
}

// Copies the state into a new memfd as descriptor 5 (not close-on-exec),
// at the offset it has in the mapping, so that the exec'd watchdog maps it
// where it expects it; job slots never used are left out (the file is
// sparse there). 0, or -1 with nothing left open.
static int state_to_memfd(watchdog *w) {
    long fd = sys2(SYS_memfd_create, WATCHDOG_ARGV0, 0);
    if (fd < 0) return -1;
    if (fd != 5) {
        long moved = sys3(SYS_dup3, fd, 5, 0);
        sys1(SYS_close, fd);
        if (moved < 0) return -1;
    }
    const char *bytes = (const char *)w;
    size_t used = (size_t)((const char *)&w->jobs[w->slots_used] - bytes);
    long offset = WATCHDOG_GUARD_SIZE + WATCHDOG_STACK_SIZE;
    long rc = sys2(SYS_ftruncate, 5, (long)mapping_size());
    for (size_t done = 0; rc >= 0 && done < used; done += (size_t)rc) {
        rc = sys4(SYS_pwrite64, 5, bytes + done, used - done, offset + (long)done);
        if (rc == 0) rc = -EIO;
    }
    if (rc >= 0) return 0;
    sys1(SYS_close, 5);
    return -1;
}

// Becomes a process of its own: the owner's executable, entered at
// watchdog_exec_entry with descriptors 3-5 (none close-on-exec). Returns
// only if the exec failed; it is not tried again.
static void exec_own_image(watchdog *w) {
    char *argv[] = {(char *)WATCHDOG_ARGV0, NULL};
    char *envp[] = {(char *)WATCHDOG_ENV, NULL};
    w->own_image = 1;  // set before the copy: the exec'd watchdog must not exec again
    if (state_to_memfd(w) == 0) {
        sys3(SYS_execve, "/proc/self/exe", argv, envp);
        sys1(SYS_close, 5);
    }
    w->own_image = -1;
}

// How long to wait for the owner before the exec is due; -1 for no limit.
static long until_own_image(watchdog *w) {
    if (w->own_image != 0 || !w->may_exec || !watching(w)) return -1;
    long now = monotonic_now();
    if (w->own_image_at == 0) w->own_image_at = now + WATCHDOG_OWN_IMAGE_AFTER_NS;
    long left = w->own_image_at - now;
    if (left > 0) return left;
    exec_own_image(w);
    return -1;
}

__attribute__((noreturn)) static void watchdog_main(watchdog *w) {
    int owner_gone = 0;
    for (;;) {
        int removing = advance_removals(w);
        long wait = removing ? WATCHDOG_ROUND_MS * 1000000L : -1;
        // ppoll writes what is left of the timeout back: a new one each round.
        struct timespec timeout = {wait / 1000000000L, wait % 1000000000L};
        if (owner_gone) {
            if (removing == 0) exit_now(0);
            sys4(SYS_ppoll, 0, 0, &timeout, 0);
            continue;
        }
        long exec_due = until_own_image(w);
        if (exec_due >= 0 && (wait < 0 || exec_due < wait)) {
            wait = exec_due;
            timeout = (struct timespec){wait / 1000000000L, wait % 1000000000L};
        }
        struct pollfd fds[2] = {{w->owner_pidfd, POLLIN, 0}, {w->socket_fd, POLLIN, 0}};
        long ready = sys4(SYS_ppoll, fds, 2, wait >= 0 ? &timeout : NULL, 0);
        if (ready < 0 && ready != -EINTR) exit_now(1);
        if (ready <= 0) continue;
        // POLLNVAL too: a descriptor that is not open can never report the
        // owner's end, so it counts as the owner gone (never a busy loop).
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
            if (handle_command(w, 0) != 0) owner_gone = 1;
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) owner_gone = 1;
        if (!owner_gone) continue;

        // The owner is gone: apply whatever it sent last, then kill all.
        while (handle_command(w, MSG_DONTWAIT) == 0) {}
        for (int i = 0; i < w->slots_used; i++) {
            if (w->jobs[i].state == 0) continue;
            kill_job(w->jobs[i].path);
            w->jobs[i].state = 2;
            w->jobs[i].rounds = 0;
        }
    }
}

// Moves the owner's pidfd and the socket to descriptors 3 and 4 (where an
// exec'd watchdog finds them) and closes every other one: nothing of the
// owner's, its standard streams included, stays open.
// guardian_keep_descriptors' steps in raw syscalls (it calls libc).
static int keep_descriptors(watchdog *w) {
    int sources[2] = {w->owner_pidfd, w->socket_fd};
    long high[2];
    // Up out of the way first, so that no source is overwritten by another's move.
    for (int i = 0; i < 2; i++) {
        high[i] = sys3(SYS_fcntl, sources[i], F_DUPFD, 16);
        if (high[i] < 0) return -1;
    }
    for (int i = 0; i < 2; i++) {
        // dup3 without O_CLOEXEC: these survive the exec.
        if (sys3(SYS_dup3, high[i], 3 + i, 0) < 0) return -1;
    }
    w->owner_pidfd = 3;
    w->socket_fd = 4;
    unsigned ranges[2][2] = {{0, 2}, {5, ~0U}};
    for (int i = 0; i < 2; i++) {
        if (sys3(SYS_close_range, ranges[i][0], ranges[i][1], 0) == 0) continue;
        // Before Linux 5.9.
        for (unsigned fd = ranges[i][0]; fd <= ranges[i][1] && fd < 1024; fd++) sys1(SYS_close, fd);
    }
    return 0;
}

// The watchdog process, from its first instruction: signals stay blocked as
// the owner left them around the clone.
static int watchdog_child(void *argument) {
    watchdog *w = argument;
    if (keep_descriptors(w) != 0) exit_now(1);
    // Out of the owner's session: a hangup of its terminal is not ours.
    sys1(SYS_setsid, 0);
    // Holds no directory busy (an unmount of the owner's working directory).
    sys1(SYS_chdir, "/");
    sys2(SYS_prctl, PR_SET_NAME, "jobobjects-wd");
    watchdog_main(w);
}

// Runs before main (and before other constructors, by its priority) in
// every executable that links the library; does nothing unless this process
// is a watchdog that exec'd into its own image.
__attribute__((constructor(101))) static void watchdog_exec_entry(int argc, char **argv, char **envp) {
    if (argc != 1 || argv == NULL || argv[0] == NULL || !same_text(argv[0], WATCHDOG_ARGV0)) return;
    if (envp == NULL || envp[0] == NULL || !same_text(envp[0], WATCHDOG_ENV) || envp[1] != NULL) return;
    char *mapping = mmap(NULL, mapping_size(), PROT_READ | PROT_WRITE, MAP_SHARED, 5, 0);
    if (mapping == MAP_FAILED) exit_now(1);
    watchdog *w = (watchdog *)(mapping + WATCHDOG_GUARD_SIZE + WATCHDOG_STACK_SIZE);
    if (w->magic != WATCHDOG_MAGIC) exit_now(1);
    sys2(SYS_prctl, PR_SET_NAME, "jobobjects-wd");
    watchdog_main(w);
}

static int in_segments_of(struct dl_phdr_info *object, size_t size, void *address) {
    (void)size;
    uintptr_t at = (uintptr_t)address;
    for (int i = 0; i < object->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &object->dlpi_phdr[i];
        uintptr_t start = object->dlpi_addr + segment->p_vaddr;
        if (segment->p_type == PT_LOAD && at >= start && at < start + segment->p_memsz) return 1;
    }
    return -1;  // the first object reported is the main program: stop there
}

// Whether an exec of /proc/self/exe surely reaches watchdog_exec_entry:
// when this code is part of the main program. In a shared library it may
// be one the program loads only later (dlopen), and the exec would run the
// owner's main instead; so a watchdog of a shared library never execs.
static int exec_reaches_entry(void) {
    return dl_iterate_phdr(in_segments_of, (void *)watchdog_exec_entry) == 1;
}

// The mapping for a new watchdog: private and anonymous (shared with the
// watchdog all the same, as it shares the whole address space).
static char *map_state(void) {
    char *mapping = mmap(NULL, mapping_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) return mapping;
    // A stack overflow faults on the guard page rather than writing below it.
    mprotect(mapping, WATCHDOG_GUARD_SIZE, PROT_NONE);
#ifdef WATCHDOG_SHARES_MEMORY
    // A child the owner forks later gets no view of the watchdog's state.
    madvise(mapping, mapping_size(), MADV_DONTFORK);
#endif
    return mapping;
}

int jobshim_watchdog_start(pid_t *pid_out, int *pidfd_out, int *socket_out, void **mapping_inout) {
    int owner_pidfd, sockets[2];
    if (guardian_open(&owner_pidfd, sockets) != 0) {
        jobshim_watchdog_release(*mapping_inout);
        *mapping_inout = NULL;
        return -1;
    }
    char *mapping = *mapping_inout != NULL ? *mapping_inout : map_state();
    pid_t pid = -1;
    if (mapping != MAP_FAILED) {
        char *stack_top = mapping + WATCHDOG_GUARD_SIZE + WATCHDOG_STACK_SIZE;
        watchdog *w = (watchdog *)stack_top;
        // Every field set anew: a mapping used again holds its last watchdog's.
        w->magic = WATCHDOG_MAGIC;
        w->owner_pidfd = owner_pidfd;
        w->socket_fd = sockets[1];
        w->may_exec = exec_reaches_entry();
        w->own_image = 0;
        w->own_image_at = 0;
        w->slots_used = 0;
        // Raw, not pthread_sigmask, which leaves libc's internal signals
        // unblocked: their handlers must never run in the watchdog either.
        uint64_t all = ~(uint64_t)0, saved = 0;
        sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, &saved, sizeof(all));
#ifdef WATCHDOG_SHARES_MEMORY
        pid = clone(watchdog_child, stack_top, CLONE_VM | SIGCHLD, w);
#else
        pid = fork();
        if (pid == 0) watchdog_child(w);
#endif
        int saved_errno = errno;
        sys4(SYS_rt_sigprocmask, SIG_SETMASK, &saved, NULL, sizeof(saved));
        errno = saved_errno;
    }
    // On failure the child, if any, has been reaped: its mapping can go.
    int rc = guardian_finish(pid, owner_pidfd, sockets, pid_out, pidfd_out, socket_out);
    if (rc != 0 && mapping != MAP_FAILED) munmap(mapping, mapping_size());
    *mapping_inout = rc == 0 ? mapping : NULL;
    return rc;
}

void jobshim_watchdog_release(void *mapping) {
    if (mapping != NULL) munmap(mapping, mapping_size());
}
