// What jobshim_spawn (parent/spawn.c) hands the child it creates
// (child/spawn_child.c). Internal to CJobShim.
#ifndef JOBSHIM_SPAWN_CHILD_H
#define JOBSHIM_SPAWN_CHILD_H

#include "CJobShim.h"

#include <signal.h>

typedef struct {
    int stage;  // 0: none
    int error;
} spawn_child_failure;

// Shared between parent and child. On the vfork paths the child reads it in
// place (shared memory); on the fork path it reads its own copy.
typedef struct {
    const jobshim_spawn_config *config;
    sigset_t parent_mask;
    // Where a failure goes: the parent's `failure` on the vfork paths
    // (error_pipe -1), the pipe's write end on the fork path (report NULL).
    spawn_child_failure *report;
    int error_pipe;
    spawn_child_failure failure;
    int join;  // 1: write "0" to cgroup.procs first
    // 1: the kernel already set every caught signal to SIG_DFL
    // (CLONE_CLEAR_SIGHAND), so the child need not ask about all 64.
    int dispositions_cleared;
} spawn_child_context;

// The child from its first instruction to execve; never returns. `arg` is
// a spawn_child_context. Async-signal-safe: it runs in the parent's memory.
int spawn_child_main(void *arg);

#endif
