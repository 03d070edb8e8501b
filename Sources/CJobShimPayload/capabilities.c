// Capability names and sets through libcap, for the payload's identity.
// Parent-side only: libcap allocates.
#ifndef _GNU_SOURCE
#error "CJobShimPayload must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShimPayload.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>

int jobshim_cap_from_name(const char *name) {
    cap_value_t value;
    if (cap_from_name(name, &value) != 0) return -1;
    return (int)value;
}

int jobshim_cap_to_name(int cap, char *buffer, size_t size) {
    char *name = cap_to_name((cap_value_t)cap);
    if (name == NULL) return -1;
    size_t length = strlen(name);
    int fits = length < size;
    if (fits) memcpy(buffer, name, length + 1);
    cap_free(name);
    if (!fits) {
        errno = ERANGE;
        return -1;
    }
    return 0;
}

int jobshim_cap_last_cap(void) {
    return (int)cap_max_bits() - 1;
}

int jobshim_cap_permitted(uint64_t *mask) {
    cap_t caps = cap_get_proc();
    if (caps == NULL) return -1;
    uint64_t bits = 0;
    int last = jobshim_cap_last_cap();
    for (int cap = 0; cap <= last && cap < 64; cap++) {
        cap_flag_value_t value = CAP_CLEAR;
        if (cap_get_flag(caps, (cap_value_t)cap, CAP_PERMITTED, &value) == 0 && value == CAP_SET) bits |= 1ULL << cap;
    }
    cap_free(caps);
    *mask = bits;
    return 0;
}
