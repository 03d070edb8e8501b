// Signal dispositions back at their defaults. Execution context: any — the
// spawned child (before execve) and forked helpers call it; it makes only
// sigaction calls, which are async-signal-safe.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "dispositions.h"

#include <signal.h>
#include <string.h>

#ifndef _NSIG
#define _NSIG 65
#endif

// Signal handlers installed by the parent must not run in a child, whose
// stack and state they do not know: every caught signal goes back to its
// default. Ignored signals stay ignored, as execve would keep them.
void jobshim_reset_signal_dispositions(void) {
    for (int sig = 1; sig < _NSIG; sig++) {
        struct sigaction current;
        if (sigaction(sig, NULL, &current) != 0) continue;  // glibc-internal signals
        if (current.sa_handler == SIG_IGN || current.sa_handler == SIG_DFL) continue;
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
    }
}
