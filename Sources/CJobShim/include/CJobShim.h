// CJobShim: the thin C layer under JobObjects.
//
// Only what cannot be Swift lives here: syscalls that glibc does not wrap (or
// wraps as variadic functions Swift cannot call), the code that runs between
// clone and execve (async-signal-safe, no allocation), and the owner-death
// watchdog's loop (a forked process, which must not touch the Swift runtime).
// It links no library but libc. The sources are grouped by the context they
// run in — parent/ (a thread of the caller), child/ (the spawned child before
// execve), helper/ (forked helper processes), anywhere/ (async-signal-safe
// leaves any of those call) — and depend in that order, without a cycle.
//
// One error convention: a function returns -1 (or NULL) and sets errno on
// failure, as libc does; jobshim_spawn also names the step that failed.
// Every symbol carries the `jobshim_` prefix.
#ifndef CJOBSHIM_H
#define CJOBSHIM_H

#include <stdint.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/xattr.h>  // job owner records (JobOwnerRecord.swift)

#include "CJobShimCleanup.h"
#include "CJobShimGuardian.h"
#include "CJobShimProcEvents.h"

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Thin syscall wrappers (return -1 and set errno on failure)

/// pipe2(2), which Glibc exports to Swift only under _GNU_SOURCE.
int jobshim_pipe2(int fds[2], int flags);
int jobshim_pidfd_open(pid_t pid, unsigned int flags);
int jobshim_pidfd_send_signal(int pidfd, int sig);
/// waitid(P_PIDFD, pidfd, info, options).
int jobshim_waitid_pidfd(int pidfd, siginfo_t *info, int options);
int jobshim_has_exited_child(void);
/// waitid(P_PID, pid, info, options).
int jobshim_waitid_pid(pid_t pid, siginfo_t *info, int options);
/// The calling thread's effective capabilities as a bit mask (capget(2),
/// which glibc does not wrap); 0 or -1 with errno.
int jobshim_effective_capabilities(uint64_t *mask);
/// prctl(PR_SET_CHILD_SUBREAPER, on).
int jobshim_set_child_subreaper(int on);
/// prctl(PR_SET_PDEATHSIG): `sig` is sent to this process when the thread
/// that created it exits (0: none).
int jobshim_set_parent_death_signal(int sig);
/// prctl(PR_GET_CHILD_SUBREAPER).
int jobshim_is_child_subreaper(void);

// siginfo_t keeps these in a union that Swift cannot reach by name.
pid_t jobshim_siginfo_pid(const siginfo_t *info);
int jobshim_siginfo_status(const siginfo_t *info);
int jobshim_siginfo_code(const siginfo_t *info);

// MARK: - Kernel feature probes (no process is created)

/// 1 when clone3 exists and is not blocked (e.g. by a container's seccomp profile).
int jobshim_probe_clone3(void);
/// 1 when clone3 accepts CLONE_INTO_CGROUP (Linux 5.7).
int jobshim_probe_clone_into_cgroup(void);
/// 1 when waitid accepts P_PIDFD (Linux 5.4).
int jobshim_probe_waitid_pidfd(void);

/// statfs(2) of `path` (sys/statfs.h is not in Swift's Glibc module): the
/// file system's magic number and the mount's flags (ST_RDONLY …); 0 or -1.
int jobshim_file_system(const char *path, int64_t *magic, int64_t *flags);

/// The mount whose root is `path`, described by statx(2) and statmount(2)
/// (Linux 6.8) instead of mountinfo: its file system's magic number, whether
/// it is read-only (the mount or its file system), and `root`, the path
/// within the file system that the mount shows — mountinfo's root field (for
/// cgroup2, relative to the caller's cgroup namespace). Returns 1 when found,
/// 0 when `path` is not the root of a mount, -1 with errno otherwise: ENOSYS
/// before Linux 6.8, ENAMETOOLONG when the root does not fit in root_size
/// bytes with its NUL.
int jobshim_mount_at(const char *path, int64_t *magic, int *read_only, char *root, size_t root_size);

/// Makes every thread allocate from glibc's main malloc arena (mallopt
/// M_ARENA_MAX 1; malloc.h is not in Swift's Glibc module). For a process
/// with few, light threads, such as jobsup; returns mallopt's result.
int jobshim_use_one_malloc_arena(void);

// MARK: - epoll and signal notification

// struct epoll_event is packed on x86_64, which Swift cannot import safely,
// so these take and return its two fields separately.
/// Names the calling thread (shown by ps and /proc/PID/task/TID/comm).
int jobshim_set_thread_name(const char *name);

int jobshim_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token);
/// Waits like epoll_wait; fills tokens[i] and events[i] for each ready entry.
int jobshim_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int max, int timeout_ms);

/// Installs a SIGCHLD handler (SA_RESTART) whose only action is to add 1 to
/// the eventfd `efd`, so that a child's exit, stop or continuation wakes an
/// epoll loop.
int jobshim_notify_sigchld(int efd);

/// Installs handlers for `signals` that write the signal number as one byte
/// to `pipe_fd` (non-blocking): a supervisor reads them from an epoll loop
/// instead of running code in a handler. Numbers 1...64 but SIGKILL and
/// SIGSTOP; checked before anything changes. Each signal goes to the pipe of
/// the last call that named it. A SIGPIPE or SIGXFSZ the process caused
/// itself (a write of its own to a closed pipe or past RLIMIT_FSIZE, which
/// the kernel reports as SI_USER from the process's own pid) is dropped: the
/// write fails with EPIPE or EFBIG instead, and the signal says nothing about
/// the outside world. With `keep_ignored`, a signal whose disposition is
/// SIG_IGN keeps it (a handler is installed and the disposition put back:
/// one call for each signal, two only for an ignored one; a signal arriving
/// between the two is reported).
int jobshim_notify_signals(int pipe_fd, const int *signals, int count, int keep_ignored);

/// Whether `sig`'s disposition is SIG_IGN (0 or 1; -1 with errno for a
/// number sigaction refuses).
int jobshim_signal_is_ignored(int sig);

// MARK: - Spawning

/// How a child is created. The caller probes once and picks the best path.
enum {
    /// clone3(CLONE_VM|CLONE_VFORK|CLONE_PIDFD|CLONE_INTO_CGROUP): born inside the job.
    JOBSHIM_PATH_CLONE3_INTO_CGROUP = 1,
    /// clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD); the child writes "0" to the
    /// job's cgroup.procs before doing anything else.
    JOBSHIM_PATH_CLONE_JOIN = 2,
    /// fork(); the child joins as above; the parent opens a pidfd.
    JOBSHIM_PATH_FORK_JOIN = 3,
    /// clone3(CLONE_PIDFD|CLONE_INTO_CGROUP) without CLONE_VM: a fork born
    /// inside the job, for a child that waits at a start gate.
    JOBSHIM_PATH_FORK_INTO_CGROUP = 4,
};

/// The step at which a child failed; reported with its errno.
enum {
    JOBSHIM_STAGE_CLONE = 1,
    JOBSHIM_STAGE_CGROUP_JOIN,
    JOBSHIM_STAGE_SESSION,
    JOBSHIM_STAGE_RLIMIT,
    JOBSHIM_STAGE_CAPS_BOUNDING,
    JOBSHIM_STAGE_GROUPS,
    JOBSHIM_STAGE_GID,
    JOBSHIM_STAGE_UID,
    JOBSHIM_STAGE_CAPS,
    JOBSHIM_STAGE_CHDIR,
    JOBSHIM_STAGE_FDS,
    JOBSHIM_STAGE_NO_NEW_PRIVS,
    JOBSHIM_STAGE_SECCOMP,
    JOBSHIM_STAGE_EXEC,
    JOBSHIM_STAGE_PIPE,
    JOBSHIM_STAGE_MOUNT_NAMESPACE,   // unshare(CLONE_NEWNS), or setns(2) to join one
    JOBSHIM_STAGE_MOUNT_PROPAGATION, // mount(NULL, "/", NULL, root_propagation)
    JOBSHIM_STAGE_CGROUP_NAMESPACE,  // unshare(CLONE_NEWCGROUP)
    JOBSHIM_STAGE_CONTROLLING_TERMINAL, // ioctl(TIOCSCTTY) on the new standard input
    /// Not a failure: the child finished its set-up and waits at its start
    /// gate (jobshim_spawn_config.has_start_gate).
    JOBSHIM_STAGE_GATED,
    /// Mount i failed at JOBSHIM_STAGE_MOUNT + i, making it read-only at
    /// JOBSHIM_STAGE_MOUNT_READ_ONLY + i (i < JOBSHIM_MAX_MOUNTS).
    JOBSHIM_STAGE_MOUNT = 0x100,
    JOBSHIM_STAGE_MOUNT_READ_ONLY = 0x200,
};

typedef struct {
    int resource;
    uint64_t soft;
    uint64_t hard;
} jobshim_rlimit;

/// One mount, prepared by the parent. A bind mount has `fstype` NULL and
/// `flags` holding MS_BIND (and MS_REC for a recursive bind).
typedef struct {
    const char *source;
    const char *target;
    const char *fstype;       // NULL: bind mount
    unsigned long flags;      // MS_* for mount(2)
    const char *data;         // NULL: none
    int read_only;            // 1: made read-only once mounted
    unsigned long keep_flags; // MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_NOATIME… of the source,
                              // kept when read-only falls back to MS_REMOUNT
} jobshim_mount;

/// At most this many mounts per spawn (the child reports a failed mount as a
/// stage number, see JOBSHIM_STAGE_MOUNT).
#define JOBSHIM_MAX_MOUNTS 64

/// Applies one mount: mount(2), then, when `read_only`, mount_setattr(2)
/// with MOUNT_ATTR_RDONLY (recursively, Linux 5.12) or, before 5.12, a
/// MS_REMOUNT|MS_BIND|MS_RDONLY remount of its top. Async-signal-safe.
/// Returns 0, or -1 with errno; *step is 1 when mount(2) failed, 2 when
/// making it read-only failed.
int jobshim_apply_mount(const jobshim_mount *mount, int *step);

/// Everything the child needs, prepared by the parent before clone so the
/// child only makes syscalls.
typedef struct {
    const char *path;            // absolute path of the executable
    char *const *argv;
    char *const *envp;
    const char *cwd;             // NULL: inherit
    int cgroup_fd;               // job cgroup directory (CLONE_INTO_CGROUP), -1: none
    int cgroup_procs_fd;         // job cgroup.procs opened O_WRONLY (join paths), -1: none
    const int *fd_sources;       // child fd i becomes a dup of fd_sources[i]; -1 keeps fd i
    int fd_count;                // at most JOBSHIM_MAX_FDS; every other fd is closed on exec
    int session;                 // 0: inherit, 1: new process group, 2: new session, 3: new session whose controlling terminal is fd 0's source
    // 1: unshare(CLONE_NEWCGROUP) right after joining the job, so the
    // namespace's root is the job (members see it as "/" and, under
    // nsdelegate, cannot migrate out of it).
    int new_cgroup_namespace;
    int reset_signal_mask;       // 1: child starts with blocked_signals blocked; 0: the parent thread's mask
    uint64_t blocked_signals;    // bit N-1 = signal N
    const jobshim_rlimit *rlimits;
    int rlimit_count;
    int set_groups;              // 1: setgroups(groups, group_count)
    const gid_t *groups;
    int group_count;
    int64_t gid;                 // -1: unchanged
    int64_t uid;                 // -1: unchanged
    int set_caps;                // 1: keep exactly cap_keep (bounding, permitted, inheritable, ambient)
    uint64_t cap_keep;           // bit N = capability N
    int no_new_privs;
    // Classic BPF for prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER), built in
    // the parent (jobshim_seccomp_compile); NULL: none. The child loads it
    // last, just before execve.
    const void *seccomp_program;        // struct sock_filter[]
    unsigned int seccomp_program_count; // instructions (at most BPF_MAXINSNS)
    // Storage, applied right after the session step, before the identity
    // switch (mounting needs CAP_SYS_ADMIN): unshare(CLONE_NEWNS) when
    // new_mount_namespace, then root_propagation (e.g. MS_SLAVE|MS_REC, 0:
    // leave) on "/", then each mount in order (jobshim_apply_mount).
    int new_mount_namespace;
    unsigned long root_propagation;
    const jobshim_mount *mounts;
    int mount_count;             // at most JOBSHIM_MAX_MOUNTS
    // 1 (with new_mount_namespace 0): setns(mount_namespace_fd, CLONE_NEWNS)
    // at the same step instead — another member's namespace, already set up.
    int join_mount_namespace;
    int mount_namespace_fd;
    // 1: once set up (identity, mounts, working directory), the child reports
    // that it waits and reads one byte from start_gate_fd; with the byte it
    // goes on to execve, at end of file it exits 127 without exec. Only the
    // fork path can return to the caller while its child waits.
    int has_start_gate;
    int start_gate_fd;
} jobshim_spawn_config;

#define JOBSHIM_MAX_FDS 64

typedef struct {
    pid_t pid;
    int pidfd;
    int stage;   // JOBSHIM_STAGE_* on failure
    int error;   // errno on failure
} jobshim_spawn_result;

/// MS_* flags of the mount holding `path` that a read-only remount must keep
/// (from statvfs's ST_* flags). Returns 0 and sets *flags, or -1 with errno.
int jobshim_mount_flags_of(const char *path, unsigned long *flags);

/// The MS_* values Swift needs (Glibc exports them as an enum Swift cannot
/// combine portably).
unsigned long jobshim_ms_bind(void);
unsigned long jobshim_ms_rec(void);
unsigned long jobshim_ms_slave(void);
unsigned long jobshim_ms_private(void);

/// 1 when `path` (JOBSHIM_PATH_*) is compiled into this build: the clone3
/// vfork path needs a few instructions written per architecture (x86_64 and
/// aarch64), the others exist everywhere.
int jobshim_spawn_path_compiled(int path);

/// Spawns `config` by `path` (JOBSHIM_PATH_*). Returns 0 once the child has
/// exec'd, or waits at its start gate (result->pid, result->pidfd set). Returns -1 on failure with
/// result->stage and result->error; a child that failed before exec has
/// already been reaped.
int jobshim_spawn(const jobshim_spawn_config *config, int path, jobshim_spawn_result *result);

// MARK: - Owner-death watchdog

/// Starts the watchdog: a forked process that holds a pidfd of its owner
/// (the caller), a SOCK_SEQPACKET socket and a doorbell (an eventfd), and
/// makes only syscalls. Messages are one record each, an operation byte and
/// a path; 'W' and 'R' may add a NUL and the job's parent when the library
/// made it on demand, to be removed with the job if empty:
///   'W' path  watch the job cgroup at path
///   'U' path  stop watching it (closed or detached by its owner)
///   'R' path  kill it now and remove it once empty (a handle dropped unclosed)
///   'X'       exit now if nothing is watched (the owner is exiting cleanly)
/// Paths are at most JOBSHIM_WATCHDOG_PATH_MAX - 1 bytes. Records wait in
/// the socket until the owner writes 1 to the doorbell (for 'R' and 'X', or
/// when the socket is full), the owner dies or closes its end, or the
/// watchdog's first second is over: queueing one wakes nobody.
/// When the owner dies (even by SIGKILL) or closes the socket, the watchdog
/// applies what is queued, kills every watched job (cgroup.kill;
/// freeze+kill+thaw where absent), removes each cgroup once empty and exits.
/// It blocks every signal: only SIGKILL ends it otherwise.
/// Returns 0 with its pid, pidfd, the owner's end of the socket and the
/// doorbell (both close-on-exec), or -1 with errno and nothing left.
int jobshim_watchdog_start(pid_t *pid, int *pidfd, int *socket_fd, int *doorbell_fd);

#define JOBSHIM_WATCHDOG_PATH_MAX 4096

// MARK: - Killing a cgroup

/// Kills every process in the cgroup directory `dirfd` without cgroup.kill:
/// freeze, SIGKILL each member of cgroup.procs, thaw; repeats until
/// cgroup.procs reads empty or `rounds` is reached. Returns the number of
/// processes signalled, or -1 with errno. Async-signal-safe.
int jobshim_kill_frozen_members(int dirfd, int rounds);

/// cgroup.kill of `dirfd`, or jobshim_kill_frozen_members where the file is
/// missing. 0, or -1 with errno. Async-signal-safe.
int jobshim_kill_cgroup(int dirfd);

#ifdef __cplusplus
}
#endif

#endif
