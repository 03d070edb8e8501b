// payload-memory-hog: a job member that runs into memory.max. Before
// touching each new page it stores CLOCK_MONOTONIC in the shared page on
// fd 3, so once the OOM killer has ended it the last stamp is the moment of
// the kill (within one page fault), to compare with when the event arrives.
#ifndef _GNU_SOURCE  // SwiftPM defines it; cc does not
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    volatile uint64_t *stamp = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 3, 0);
    if (stamp == MAP_FAILED) return 1;
    long page = sysconf(_SC_PAGESIZE);
    for (;;) {
        size_t chunk = 16 << 20;
        char *memory = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) return 2;
        for (size_t offset = 0; offset < chunk; offset += (size_t)page) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            *stamp = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
            memory[offset] = 1;
        }
    }
}
