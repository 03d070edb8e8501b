// Applying one mount. Execution context: any — the spawned child calls it
// between clone and execve (shared memory, parent suspended) and the parent
// for mounts the host sees; it makes raw syscalls only.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif

// struct mount_attr as of Linux 5.12 (MOUNT_ATTR_SIZE_VER0); glibc before
// 2.36 lacks it, and glibc's and the kernel's headers cannot both be included.
struct jobshim_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};
_Static_assert(sizeof(struct jobshim_mount_attr) == 32, "mount_attr must match MOUNT_ATTR_SIZE_VER0");

int jobshim_apply_mount(const jobshim_mount *m, int *step) {
    *step = 1;
    if (mount(m->source, m->target, m->fstype, m->flags, m->data) != 0) return -1;
    if (!m->read_only) return 0;
    *step = 2;
    // mount_setattr makes a recursive bind read-only as a whole; a remount
    // reaches only the top mount, which is what kernels before 5.12 can do.
    struct jobshim_mount_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.attr_set = MOUNT_ATTR_RDONLY;
    unsigned int flags = (m->flags & MS_REC) ? AT_RECURSIVE : 0;
    if (syscall(SYS_mount_setattr, AT_FDCWD, m->target, flags, &attr, sizeof(attr)) == 0) return 0;
    if (errno != ENOSYS) return -1;
    return mount(NULL, m->target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | m->keep_flags, NULL);
}

