// Describing one mount without reading /proc/self/mountinfo, which the kernel
// generates line by line on every read: statx(2) gives the mount's unique ID
// (Linux 6.8) and statmount(2) (Linux 6.8) what mountinfo's line would say.
// A file of its own because it takes struct statx from the kernel's header,
// which carries stx_mnt_id, where glibc 2.36's copy leaves that field unnamed.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShim.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/stat.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_statmount
#define SYS_statmount 457
#endif
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

// struct mnt_id_req as first published (MNT_ID_REQ_SIZE_VER0, Linux 6.8).
struct jobshim_mnt_id_req {
    uint32_t size;
    uint32_t spare;
    uint64_t mnt_id;
    uint64_t param;
};
_Static_assert(sizeof(struct jobshim_mnt_id_req) == 24, "mnt_id_req must match MNT_ID_REQ_SIZE_VER0");

// struct statmount up to the fields read here; later kernels fill the spare
// words with more, and the strings always start at byte 512 (`str`).
struct jobshim_statmount {
    uint32_t size;
    uint32_t mnt_opts;
    uint64_t mask;
    uint32_t sb_dev_major;
    uint32_t sb_dev_minor;
    uint64_t sb_magic;
    uint32_t sb_flags;
    uint32_t fs_type;
    uint64_t mnt_id;
    uint64_t mnt_parent_id;
    uint32_t mnt_id_old;
    uint32_t mnt_parent_id_old;
    uint64_t mnt_attr;
    uint64_t mnt_propagation;
    uint64_t mnt_peer_group;
    uint64_t mnt_master;
    uint64_t propagate_from;
    uint32_t mnt_root;
    uint32_t mnt_point;
    uint64_t spare[50];
    char str[];
};
_Static_assert(sizeof(struct jobshim_statmount) == 512, "statmount's strings start at byte 512");

enum {
    STATMOUNT_SB_BASIC_ = 0x1,   // sb_magic, sb_flags
    STATMOUNT_MNT_BASIC_ = 0x2,  // mnt_attr
    STATMOUNT_MNT_ROOT_ = 0x8,   // mnt_root
    SB_RDONLY_ = 0x1,
    MOUNT_ATTR_RDONLY_ = 0x1,
};

static int fail(int error) {
    errno = error;
    return -1;
}

int jobshim_mount_at(const char *path, int64_t *magic, int *read_only, char *root, size_t root_size) {
    struct statx info;
    if (syscall(SYS_statx, AT_FDCWD, path, AT_NO_AUTOMOUNT, STATX_MNT_ID_UNIQUE, &info) != 0) return -1;
    if (!(info.stx_mask & STATX_MNT_ID_UNIQUE)) return fail(ENOSYS);  // before Linux 6.8
    if (!(info.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)) return fail(ENOSYS);
    if (!(info.stx_attributes & STATX_ATTR_MOUNT_ROOT)) return 0;

    // The header, then the root's path: at most PATH_MAX with its NUL.
    union {
        struct jobshim_statmount mount;
        char bytes[sizeof(struct jobshim_statmount) + 4096];
    } buffer;
    struct jobshim_mnt_id_req request = {
        .size = sizeof request,
        .mnt_id = info.stx_mnt_id,
        .param = STATMOUNT_SB_BASIC_ | STATMOUNT_MNT_BASIC_ | STATMOUNT_MNT_ROOT_,
    };
    if (syscall(SYS_statmount, &request, &buffer, sizeof buffer, 0) != 0) return -1;
    const struct jobshim_statmount *mount = &buffer.mount;
    uint64_t wanted = STATMOUNT_SB_BASIC_ | STATMOUNT_MNT_BASIC_ | STATMOUNT_MNT_ROOT_;
    if ((mount->mask & wanted) != wanted) return fail(ENOSYS);
    size_t room = sizeof buffer - sizeof buffer.mount;
    if (mount->mnt_root >= room) return fail(EOVERFLOW);
    const char *shown = mount->str + mount->mnt_root;
    size_t length = strnlen(shown, room - mount->mnt_root);
    if (length == room - mount->mnt_root) return fail(EOVERFLOW);
    if (length + 1 > root_size) return fail(ENAMETOOLONG);
    memcpy(root, shown, length + 1);
    *magic = (int64_t)mount->sb_magic;
    *read_only = (mount->sb_flags & SB_RDONLY_) || (mount->mnt_attr & MOUNT_ATTR_RDONLY_);
    return 1;
}
