// Internal to CJobShim; see anywhere/dispositions.c.
#ifndef JOBSHIM_DISPOSITIONS_H
#define JOBSHIM_DISPOSITIONS_H

// Sets every caught signal back to SIG_DFL (ignored ones stay ignored).
// Async-signal-safe; used by the spawned child and by forked helpers.
void jobshim_reset_signal_dispositions(void);

#endif
