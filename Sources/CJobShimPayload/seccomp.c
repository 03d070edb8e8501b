// Seccomp filters, built with libseccomp in the parent.
//
// The profile is parsed in Swift; here its rules become a libseccomp
// context, which is exported as classic BPF (seccomp_export_bpf into a
// memfd, read back). The spawned child only hands those bytes to
// prctl(PR_SET_SECCOMP): libseccomp allocates, so it can never run there.
#ifndef _GNU_SOURCE
#error "CJobShimPayload must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShimCleanup.h"
#include "CJobShimPayload.h"

#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(SCMP_ARCH_NATIVE == 0, "SCMP_ARCH_NATIVE is the token 0");

int jobshim_seccomp_resolve_syscall(const char *name) {
    int number = seccomp_syscall_resolve_name(name);
    return number == __NR_SCMP_ERROR ? INT32_MIN : number;
}

uint32_t jobshim_seccomp_resolve_arch(const char *name) {
    return seccomp_arch_resolve_name(name);
}

uint32_t jobshim_seccomp_native_arch(void) {
    return seccomp_arch_native();
}

static int action_of(int kind, uint32_t data, uint32_t *action) {
    switch (kind) {
    case JOBSHIM_SCMP_KILL_THREAD: *action = SCMP_ACT_KILL_THREAD; return 0;
    case JOBSHIM_SCMP_KILL_PROCESS: *action = SCMP_ACT_KILL_PROCESS; return 0;
    case JOBSHIM_SCMP_TRAP: *action = SCMP_ACT_TRAP; return 0;
    case JOBSHIM_SCMP_ERRNO: *action = SCMP_ACT_ERRNO(data); return 0;
    case JOBSHIM_SCMP_TRACE: *action = SCMP_ACT_TRACE(data); return 0;
    case JOBSHIM_SCMP_ALLOW: *action = SCMP_ACT_ALLOW; return 0;
    case JOBSHIM_SCMP_LOG: *action = SCMP_ACT_LOG; return 0;
    default: return -EINVAL;
    }
}

static int op_of(int op, enum scmp_compare *out) {
    switch (op) {
    case JOBSHIM_SCMP_CMP_NE: *out = SCMP_CMP_NE; return 0;
    case JOBSHIM_SCMP_CMP_LT: *out = SCMP_CMP_LT; return 0;
    case JOBSHIM_SCMP_CMP_LE: *out = SCMP_CMP_LE; return 0;
    case JOBSHIM_SCMP_CMP_EQ: *out = SCMP_CMP_EQ; return 0;
    case JOBSHIM_SCMP_CMP_GE: *out = SCMP_CMP_GE; return 0;
    case JOBSHIM_SCMP_CMP_GT: *out = SCMP_CMP_GT; return 0;
    case JOBSHIM_SCMP_CMP_MASKED_EQ: *out = SCMP_CMP_MASKED_EQ; return 0;
    default: return -EINVAL;
    }
}

// Reads the whole memfd back into a malloc'd buffer.
static int read_back(int fd, uint8_t **program, size_t *length) {
    struct stat info;
    if (fstat(fd, &info) != 0) return -errno;
    size_t size = (size_t)info.st_size;
    uint8_t *bytes = malloc(size > 0 ? size : 1);
    if (bytes == NULL) return -ENOMEM;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, bytes + done, size - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int error = n < 0 ? errno : EIO;
            free(bytes);
            return -error;
        }
        done += (size_t)n;
    }
    *program = bytes;
    *length = size;
    return 0;
}

// Adds the extra architectures and every rule; 0 or a negative errno, with
// *failed_rule set when one rule was refused.
static int add_rules(scmp_filter_ctx ctx, uint32_t default_action, const uint32_t *arches, int arch_count,
                     const jobshim_seccomp_rule *rules, int rule_count, int *failed_rule) {
    // The child sets no_new_privs itself when it has to; the exported
    // program does not carry the attribute anyway.
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    uint32_t native = seccomp_arch_native();
    for (int i = 0; i < arch_count; i++) {
        if (arches[i] == native) continue;
        int rc = seccomp_arch_add(ctx, arches[i]);
        if (rc != 0 && rc != -EEXIST) return rc;
    }
    for (int i = 0; i < rule_count; i++) {
        const jobshim_seccomp_rule *rule = &rules[i];
        *failed_rule = i;
        uint32_t action;
        int rc = action_of(rule->action, rule->action_data, &action);
        if (rc != 0) return rc;
        if (rule->arg_count < 0 || rule->arg_count > 6) return -EINVAL;
        // libseccomp refuses a rule that repeats the default action; it
        // would change nothing, so it is left out (as runc does).
        if (action == default_action) continue;
        struct scmp_arg_cmp cmps[6];
        memset(cmps, 0, sizeof(cmps));
        for (int a = 0; a < rule->arg_count; a++) {
            enum scmp_compare op;
            rc = op_of(rule->args[a].op, &op);
            if (rc != 0) return rc;
            cmps[a].arg = rule->args[a].index;
            cmps[a].op = op;
            cmps[a].datum_a = rule->args[a].value;
            cmps[a].datum_b = rule->args[a].value_two;
        }
        rc = seccomp_rule_add_array(ctx, action, rule->syscall, (unsigned int)rule->arg_count, cmps);
        if (rc != 0) return rc;
    }
    *failed_rule = -1;
    return 0;
}

// Exports the filter as classic BPF through a memfd; 0 or a negative errno.
static int export_program(scmp_filter_ctx ctx, uint8_t **program, size_t *length) {
    JOBSHIM_AUTO_CLOSE int fd = memfd_create("jobobjects-seccomp", MFD_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = seccomp_export_bpf(ctx, fd);
    return rc == 0 ? read_back(fd, program, length) : rc;
}

static void release_filter(scmp_filter_ctx *ctx) {
    if (*ctx != NULL) seccomp_release(*ctx);
}

int jobshim_seccomp_compile(int default_kind, uint32_t default_data,
                            const uint32_t *arches, int arch_count,
                            const jobshim_seccomp_rule *rules, int rule_count,
                            int *failed_rule, uint8_t **program, size_t *length) {
    *failed_rule = -1;
    *program = NULL;
    *length = 0;
    uint32_t default_action;
    int rc = action_of(default_kind, default_data, &default_action);
    __attribute__((cleanup(release_filter))) scmp_filter_ctx ctx = rc == 0 ? seccomp_init(default_action) : NULL;
    if (ctx == NULL) {
        errno = EINVAL;
        return -1;
    }
    rc = add_rules(ctx, default_action, arches, arch_count, rules, rule_count, failed_rule);
    if (rc == 0) rc = export_program(ctx, program, length);
    // libseccomp returns negative errnos; this file's public convention is libc's.
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 0;
}
