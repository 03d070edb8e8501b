// CJobShimPayload: the C under JobObjectsPayload — the payload janitor,
// mount helpers, capability names (libcap) and seccomp compilation
// (libseccomp). Everything that allocates runs in the parent; the janitor is
// a forked helper that makes syscalls only. Same error convention as
// CJobShim: -1 (or NULL) with errno.
#ifndef CJOBSHIM_PAYLOAD_H
#define CJOBSHIM_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Mounts (the parent's; jobshim_mount and jobshim_apply_mount are in CJobShim.h)

/// umount2(target, flags) (MNT_DETACH is 2).
int jobshim_umount(const char *target, int flags);

// MARK: - Payload janitor

/// What the janitor releases when the owner dies before it could.
typedef struct {
    int cgroup_fd;                  // the job's cgroup directory, O_DIRECTORY
    const char *const *unmount;     // host-visible mount targets, unmounted last first
    int unmount_count;
    const char *const *remove;      // then unlinked (files) or rmdir'd (directories), in order
    int remove_count;
    int keep_fd;                    // held until the janitor exits (the ephemeral-uid lock), -1: none
} jobshim_janitor_config;

/// Forks the payload janitor: a small process that holds a pidfd of its
/// owner (the caller) and a SOCK_SEQPACKET socket. When the owner sends 'D'
/// (done) it exits at once. When the owner dies instead, even by SIGKILL,
/// it kills the job (cgroup.kill, else freeze+kill+thaw), waits on
/// cgroup.events until the job is empty, unmounts `unmount` in reverse
/// order (MNT_DETACH), removes `remove` in order, closes `keep_fd` and exits.
/// Only syscalls run after fork: everything it needs is in `config`, which
/// the forked copy of memory keeps. Returns 0 with its pid, pidfd and the
/// owner's (close-on-exec) end of the socket, or -1 with errno.
int jobshim_janitor_start(const jobshim_janitor_config *config, pid_t *pid, int *pidfd, int *socket_fd);

// MARK: - Identity

/// flock(fd, LOCK_EX | LOCK_NB): 0 when taken, -1 with EWOULDBLOCK when held.
int jobshim_lock_exclusive_nonblocking(int fd);

// MARK: - Capabilities (libcap)

/// cap_from_name: the number of capability `name` ("cap_net_bind_service"),
/// or -1 when libcap does not know it.
int jobshim_cap_from_name(const char *name);
/// cap_to_name into `buffer` ("cap_net_bind_service", or the number for a
/// capability libcap has no name for). Returns 0 or -1.
int jobshim_cap_to_name(int cap, char *buffer, size_t size);
/// The highest capability number the running kernel knows
/// (/proc/sys/kernel/cap_last_cap through libcap's cap_max_bits() - 1).
int jobshim_cap_last_cap(void);
/// This process's permitted set as a bit mask (capget).
int jobshim_cap_permitted(uint64_t *mask);

// MARK: - Seccomp (libseccomp)

/// Actions of the OCI profile format.
enum {
    JOBSHIM_SCMP_KILL_THREAD = 1,
    JOBSHIM_SCMP_KILL_PROCESS,
    JOBSHIM_SCMP_TRAP,
    JOBSHIM_SCMP_ERRNO,   // with an errno
    JOBSHIM_SCMP_TRACE,   // with a message number
    JOBSHIM_SCMP_ALLOW,
    JOBSHIM_SCMP_LOG,
};

/// Comparison operators of the OCI profile format (SCMP_CMP_*).
enum {
    JOBSHIM_SCMP_CMP_NE = 1,
    JOBSHIM_SCMP_CMP_LT,
    JOBSHIM_SCMP_CMP_LE,
    JOBSHIM_SCMP_CMP_EQ,
    JOBSHIM_SCMP_CMP_GE,
    JOBSHIM_SCMP_CMP_GT,
    JOBSHIM_SCMP_CMP_MASKED_EQ,
};

typedef struct {
    unsigned int index;   // argument 0...5
    int op;               // JOBSHIM_SCMP_CMP_*
    uint64_t value;
    uint64_t value_two;   // the mask's operand for MASKED_EQ
} jobshim_seccomp_arg;

typedef struct {
    int syscall;          // from jobshim_seccomp_resolve_syscall
    int action;           // JOBSHIM_SCMP_*
    uint32_t action_data; // errno or trace message number
    const jobshim_seccomp_arg *args;
    int arg_count;        // all must hold (AND); at most 6
} jobshim_seccomp_rule;

/// The native system-call number of `name` (negative pseudo numbers for
/// calls that exist only on other architectures), or INT32_MIN when
/// libseccomp does not know the name.
int jobshim_seccomp_resolve_syscall(const char *name);
/// The SCMP_ARCH_* token of "x86_64", "x86", "aarch64"…, or 0 when unknown.
uint32_t jobshim_seccomp_resolve_arch(const char *name);
/// The SCMP_ARCH_* token of this process's architecture.
uint32_t jobshim_seccomp_native_arch(void);

/// Builds a filter with libseccomp (default action, extra architectures,
/// rules) and exports it as classic BPF (seccomp_export_bpf into a memfd,
/// read back). On success returns 0 with *program (malloc'd, free() it) of
/// *length bytes, a whole number of struct sock_filter. On failure returns
/// -1 with errno; *failed_rule is the index of the rule libseccomp
/// refused, or -1 when the failure was not one rule's.
int jobshim_seccomp_compile(int default_action, uint32_t default_data,
                            const uint32_t *arches, int arch_count,
                            const jobshim_seccomp_rule *rules, int rule_count,
                            int *failed_rule, uint8_t **program, size_t *length);

#ifdef __cplusplus
}
#endif

#endif
