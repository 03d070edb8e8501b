// payload-signal-echo: a job member for the signal round trip. Writes "R"
// on stdout once its handler is installed, then one "!" per SIGUSR1, from
// the handler itself. SIGTERM (default action) ends it.
#ifndef _GNU_SOURCE  // SwiftPM defines it; cc does not
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <string.h>
#include <unistd.h>

static void on_usr1(int sig) {
    (void)sig;
    ssize_t ignored = write(1, "!", 1);
    (void)ignored;
}

int main(void) {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_usr1;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGUSR1, &action, NULL) != 0) return 1;
    if (write(1, "R", 1) != 1) return 1;
    for (;;) pause();
}
