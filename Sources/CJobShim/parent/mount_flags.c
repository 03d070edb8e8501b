// The MS_* flags the parent prepares mounts with. Execution context: a
// thread of the caller.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"

#include <sys/mount.h>
#include <sys/statvfs.h>

unsigned long jobshim_ms_bind(void) { return MS_BIND; }
unsigned long jobshim_ms_rec(void) { return MS_REC; }
unsigned long jobshim_ms_slave(void) { return MS_SLAVE; }
unsigned long jobshim_ms_private(void) { return MS_PRIVATE; }

int jobshim_mount_flags_of(const char *path, unsigned long *flags) {
    struct statvfs info;
    if (statvfs(path, &info) != 0) return -1;
    // A bind remount must repeat the locked flags of the mount it copies,
    // or the kernel refuses it (EPERM) in a user namespace.
    unsigned long keep = 0;
    if (info.f_flag & ST_NOSUID) keep |= MS_NOSUID;
    if (info.f_flag & ST_NODEV) keep |= MS_NODEV;
    if (info.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
    if (info.f_flag & ST_NOATIME) keep |= MS_NOATIME;
    if (info.f_flag & ST_NODIRATIME) keep |= MS_NODIRATIME;
    if (info.f_flag & ST_RELATIME) keep |= MS_RELATIME;
    *flags = keep;
    return 0;
}

