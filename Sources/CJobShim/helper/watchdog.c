// The owner-death watchdog: kill-on-close that survives SIGKILL of the owner.
// Execution context: a forked child of the owner (a copy of its memory, one
// thread), so it makes async-signal-safe calls only — syscalls through
// libc's wrappers, whose errno is the watchdog's own copy — and never
// allocates with malloc.
//
// A handle's deinit cannot run when its process is SIGKILLed, so a second
// process has to notice. The watchdog holds a pidfd of the owner; when the
// pidfd reports the owner's exit (or the owner's end of the command socket
// closes), it kills every job the owner still held and removes their cgroups.
//
// Its job table lives in a memfd it maps, grown as jobs are watched. A
// forked copy keeps every page its owner changes afterwards alive (the
// owner's writes copy them), so a watchdog that is watching a job once it
// is a second old execs into an image of its own — the owner's executable,
// entered through the constructor below before any other initialiser or
// main runs — and maps the same memfd there. Short-lived owners never pay
// for that exec. Where the exec fails (no /proc, a seccomp filter, the
// library loaded with dlopen) it goes on as it was.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"
#include "CJobShimGuardian.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PATH_CAPACITY JOBSHIM_WATCHDOG_PATH_MAX
// How long the watchdog keeps trying to remove a killed job's cgroup.
#define REMOVE_ROUNDS 1200  // 60 s: a loaded machine can be slow to reap
#define ROUND_MS 50
// How long a watchdog watches jobs as a forked copy before it execs.
#define OWN_IMAGE_AFTER_NS 1000000000L
// remove_children stops this deep (payloads may make their own cgroups).
#define MAX_DEPTH 32

// The exec'd watchdog is recognised by this argv[0] and environment, with
// the owner's pidfd as descriptor 3, its socket end as 4, the doorbell as 5
// and the table's memfd as 6.
#define WATCHDOG_ARGV0 "jobobjects-watchdog"
#define WATCHDOG_ENV "JOBOBJECTS_WATCHDOG=3,4,5,6"
enum { OWNER_FD = 3, SOCKET_FD = 4, DOORBELL_FD = 5, TABLE_FD = 6 };
#define TABLE_MAGIC 0x6a6f6277

typedef struct {
    int state;  // 0 free, 1 watched, 2 removing
    int rounds;
    char path[PATH_CAPACITY];
    // A parent the library made on demand: removed too once it is empty.
    char parent[PATH_CAPACITY];
} watched_job;

typedef struct {
    uint32_t magic;
    int capacity;    // slots mapped
    int slots_used;  // slots at and above this were never used
    int own_image;   // 1 once exec'd into its own image, -1 if that failed
    long own_image_at;  // CLOCK_MONOTONIC ns: a second after the watchdog started
    watched_job jobs[];
} job_table;

static job_table *table;
static int may_exec;

static size_t table_size(int capacity) {
    return sizeof(job_table) + (size_t)capacity * sizeof(watched_job);
}

// Maps the table at `capacity` slots (TABLE_FD already that large); 0 or -1.
static int map_table(int capacity) {
    size_t size = table_size(capacity);
    void *mapping = table == NULL
        ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, TABLE_FD, 0)
        : mremap(table, table_size(table->capacity), size, MREMAP_MAYMOVE);
    if (mapping == MAP_FAILED) return -1;
    table = mapping;
    table->capacity = capacity;
    return 0;
}

static int grow_table(void) {
    int capacity = table->capacity * 2;
    if (ftruncate(TABLE_FD, (off_t)table_size(capacity)) != 0) return -1;
    return map_table(capacity);
}

static int create_table(void) {
    int fd = (int)syscall(SYS_memfd_create, WATCHDOG_ARGV0, 0);
    if (fd < 0 || (fd != TABLE_FD && dup2(fd, TABLE_FD) < 0)) return -1;
    if (fd != TABLE_FD) close(fd);
    if (ftruncate(TABLE_FD, (off_t)table_size(4)) != 0 || map_table(4) != 0) return -1;
    table->magic = TABLE_MAGIC;
    return 0;
}

static void kill_job(const char *path) {
    JOBSHIM_AUTO_CLOSE int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd >= 0) jobshim_kill_cgroup(dirfd);
}

// Removes the cgroups below `path`, deepest first.
static void remove_children(const char *path, int depth) {
    if (depth > MAX_DEPTH) return;
    JOBSHIM_AUTO_CLOSE int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    char buffer[4096];
    ssize_t n;
    while ((n = getdents64(fd, buffer, sizeof(buffer))) > 0) {
        for (ssize_t offset = 0; offset < n;) {
            struct dirent64 *entry = (struct dirent64 *)(buffer + offset);
            offset += entry->d_reclen;
            if (entry->d_type != DT_DIR || strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            char child[PATH_CAPACITY];
            size_t length = strlen(path), name_length = strlen(entry->d_name);
            if (length + 1 + name_length + 1 > sizeof(child)) continue;
            memcpy(child, path, length);
            child[length] = '/';
            memcpy(child + length + 1, entry->d_name, name_length + 1);
            remove_children(child, depth + 1);
            rmdir(child);
        }
    }
}

// 1 once the job's cgroup is gone. Fails while processes remain; the
// caller retries after killing again.
static int try_remove(const watched_job *job) {
    remove_children(job->path, 0);
    if (rmdir(job->path) != 0 && errno != ENOENT) return 0;
    // Another job may still be in the parent: then this rmdir fails, as it should.
    if (job->parent[0] == '/') rmdir(job->parent);
    return 1;
}

static watched_job *find(const char *path) {
    for (int i = 0; i < table->slots_used; i++) {
        if (table->jobs[i].state != 0 && strcmp(table->jobs[i].path, path) == 0) return &table->jobs[i];
    }
    return NULL;
}

// Records `path` in `state`; NULL when it does not fit (the owner checks
// lengths before sending, see JOBSHIM_WATCHDOG_PATH_MAX) or no memory is left.
static watched_job *add(const char *path, const char *parent, int state) {
    // A longer path is refused, not cut: a cut path could name another
    // cgroup, which the watchdog would kill.
    size_t path_length = strnlen(path, PATH_CAPACITY), parent_length = strnlen(parent, PATH_CAPACITY);
    if (path_length == PATH_CAPACITY || parent_length == PATH_CAPACITY) return NULL;
    watched_job *job = find(path);
    for (int i = 0; job == NULL && i < table->slots_used; i++) {
        if (table->jobs[i].state == 0) job = &table->jobs[i];
    }
    if (job == NULL && table->slots_used == table->capacity && grow_table() != 0) return NULL;
    if (job == NULL) job = &table->jobs[table->slots_used++];
    job->state = state;
    job->rounds = 0;
    memcpy(job->path, path, path_length + 1);
    memcpy(job->parent, parent, parent_length + 1);
    return job;
}

static int watching(void) {
    for (int i = 0; i < table->slots_used; i++) {
        if (table->jobs[i].state == 1) return 1;
    }
    return 0;
}

// Applies one queued command record; returns 0, 1 when none is queued, or
// -1 when the owner's end is closed.
static int handle_command(void) {
    char record[2 * PATH_CAPACITY + 2];
    ssize_t n;
    do {
        n = recv(SOCKET_FD, record, sizeof(record) - 1, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) return 1;
    if (n <= 0) return -1;
    // op, path, NUL, then optionally the on-demand parent.
    record[n] = '\0';
    const char *path = record + 1;
    size_t path_length = strnlen(path, (size_t)n - 1);
    const char *parent = (1 + path_length + 1 < (size_t)n) ? path + path_length + 1 : "";
    if (record[0] == 'X') {
        // The owner is about to exit with nothing left to watch.
        for (int i = 0; i < table->slots_used; i++) {
            if (table->jobs[i].state != 0) return 0;
        }
        _exit(0);
    }
    if (path[0] != '/') return 0;
    if (record[0] == 'W') {
        add(path, parent, 1);
    } else if (record[0] == 'U') {
        watched_job *job = find(path);
        if (job) job->state = 0;
    } else if (record[0] == 'R') {
        kill_job(path);
        watched_job *job = add(path, parent, 2);
        if (job && try_remove(job)) job->state = 0;
    }
    return 0;
}

// Applies every queued record, in order; -1 when the owner's end is closed.
static int drain_commands(void) {
    int rc;
    while ((rc = handle_command()) == 0) {}
    return rc < 0 ? -1 : 0;
}

// One pass over jobs being removed; returns how many remain.
static int advance_removals(void) {
    int remaining = 0;
    for (int i = 0; i < table->slots_used; i++) {
        watched_job *job = &table->jobs[i];
        if (job->state != 2) continue;
        if (try_remove(job) || ++job->rounds > REMOVE_ROUNDS) {
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
    struct timespec now = {0, 0};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000000L + now.tv_nsec;
}

// Becomes a process of its own: the owner's executable, entered at
// watchdog_exec_entry with descriptors 3-6 (none close-on-exec). Returns
// only if the exec failed; it is not tried again.
static void exec_own_image(void) {
    char *argv[] = {(char *)WATCHDOG_ARGV0, NULL};
    char *envp[] = {(char *)WATCHDOG_ENV, NULL};
    table->own_image = 1;  // the exec'd watchdog must not exec again
    execve("/proc/self/exe", argv, envp);
    table->own_image = -1;
}

// How long until the exec may be due, -1 for no limit; execs once it is
// and a job is watched. The owner's records are read (below) when it rings
// the doorbell, when it dies, and once when the first second is over.
static long until_own_image(void) {
    if (table->own_image != 0 || !may_exec) return -1;
    long left = table->own_image_at - monotonic_now();
    if (left > 0) return left;
    if (watching()) exec_own_image();
    return -1;
}

// The owner queues its records on the socket without waking the watchdog:
// it polls the owner's pidfd, the doorbell (an eventfd the owner rings when
// a record needs acting on now: 'R', 'X', a full socket) and the socket for
// a hang-up only. When the owner is gone it applies what is queued, then
// kills every job left.
__attribute__((noreturn)) static void watchdog_main(void) {
    int owner_gone = 0;
    for (;;) {
        int removing = advance_removals();
        long wait = removing ? ROUND_MS * 1000000L : -1;
        if (owner_gone) {
            if (removing == 0) _exit(0);
            poll(NULL, 0, ROUND_MS);
            continue;
        }
        long exec_due = until_own_image();
        if (exec_due >= 0 && (wait < 0 || exec_due < wait)) wait = exec_due;
        struct pollfd fds[3] = {{OWNER_FD, POLLIN, 0}, {DOORBELL_FD, POLLIN, 0}, {SOCKET_FD, 0, 0}};
        int ready = poll(fds, 3, wait < 0 ? -1 : (int)((wait + 999999) / 1000000));
        if (ready < 0 && errno != EINTR) _exit(1);
        if (ready < 0) continue;
        if (fds[1].revents & POLLIN) {
            uint64_t rings;
            ssize_t ignored = read(DOORBELL_FD, &rings, sizeof(rings));
            (void)ignored;
        }
        // Every wake-up (a ring, a hang-up, the timer) reads what is queued.
        // POLLNVAL too: a descriptor that is not open can never report the
        // owner's end, so it counts as the owner gone (never a busy loop).
        if (drain_commands() != 0) owner_gone = 1;
        for (int i = 0; i < 3; i++) {
            if (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) owner_gone = 1;
        }
        if (fds[0].revents & POLLIN) owner_gone = 1;
        if (!owner_gone) continue;

        // The owner is gone: apply whatever it sent last, then kill all.
        drain_commands();
        for (int i = 0; i < table->slots_used; i++) {
            if (table->jobs[i].state == 0) continue;
            kill_job(table->jobs[i].path);
            table->jobs[i].state = 2;
            table->jobs[i].rounds = 0;
        }
    }
}

// Out of the owner's session and with every signal blocked — libc's
// internal ones too, which pthread_sigmask leaves open — so that only
// SIGKILL ends it: a Ctrl-C, hangup or `kill` meant for the owner's group
// is not for the watchdog.
// No disposition needs resetting: a handler of the owner's can never run
// in a process that blocks every signal (after an exec the kernel resets
// them anyway).
static void settle(void) {
    uint64_t all = ~(uint64_t)0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof(all));
    setsid();
    if (chdir("/") != 0) _exit(1);
    prctl(PR_SET_NAME, (unsigned long)"jobobjects-wd", 0, 0, 0);
}

// Runs before main (and before other constructors, by its priority) in
// every executable that links JobObjects; does nothing unless this process
// is a watchdog that exec'd into its own image.
__attribute__((constructor(101))) static void watchdog_exec_entry(int argc, char **argv, char **envp) {
    if (argc != 1 || argv == NULL || argv[0] == NULL || strcmp(argv[0], WATCHDOG_ARGV0) != 0) return;
    if (envp == NULL || envp[0] == NULL || strcmp(envp[0], WATCHDOG_ENV) != 0 || envp[1] != NULL) return;
    job_table *mapped = mmap(NULL, sizeof(job_table), PROT_READ | PROT_WRITE, MAP_SHARED, TABLE_FD, 0);
    if (mapped == MAP_FAILED || mapped->magic != TABLE_MAGIC) _exit(1);
    int capacity = mapped->capacity;
    munmap(mapped, sizeof(job_table));
    if (map_table(capacity) != 0) _exit(1);
    settle();
    watchdog_main();
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

int jobshim_watchdog_start(pid_t *pid_out, int *pidfd_out, int *socket_out, int *doorbell_out) {
    int owner_pidfd, sockets[2];
    int doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (doorbell < 0) return -1;
    if (jobshim_guardian_open(&owner_pidfd, sockets) != 0) {
        jobshim_close_on_scope_exit(&doorbell);
        return -1;
    }
    int reaches_entry = exec_reaches_entry();
    pid_t pid = jobshim_guardian_fork();
    if (pid == 0) {
        int keep[] = {owner_pidfd, sockets[1], doorbell};
        if (jobshim_guardian_keep_descriptors(keep, 3, OWNER_FD) != 0) _exit(1);
        settle();
        if (create_table() != 0) _exit(1);
        may_exec = reaches_entry;
        table->own_image_at = monotonic_now() + OWN_IMAGE_AFTER_NS;
        watchdog_main();
    }
    if (jobshim_guardian_finish(pid, owner_pidfd, sockets, pid_out, pidfd_out, socket_out) != 0) {
        jobshim_close_on_scope_exit(&doorbell);
        return -1;
    }
    *doorbell_out = doorbell;
    return 0;
}
