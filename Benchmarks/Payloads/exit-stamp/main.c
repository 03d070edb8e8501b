// payload-exit-stamp: a job member for the exit-event latency. Blocks until
// a byte arrives on stdin, then writes CLOCK_MONOTONIC (8 bytes, native
// order) on stdout and exits at once: the stamp is the moment of exit, to
// compare with the moment the parent learns of it.
#ifndef _GNU_SOURCE  // SwiftPM defines it; cc does not
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    char byte;
    if (read(0, &byte, 1) != 1) _exit(1);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    if (write(1, &ns, sizeof(ns)) != (ssize_t)sizeof(ns)) _exit(1);
    _exit(0);
}
