// The process events connector: netlink plumbing and the kernel's packed
// message layout, which Swift cannot import safely.
#ifndef _GNU_SOURCE
#error "CJobShim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif

#include "CJobShimProcEvents.h"

#include <errno.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int jobshim_proc_events_open(int buffer_bytes, int report_overruns) {
    int fd = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
    if (fd < 0) return -1;
    struct sockaddr_nl address;
    memset(&address, 0, sizeof(address));
    address.nl_family = AF_NETLINK;
    address.nl_groups = CN_IDX_PROC;
    address.nl_pid = 0;  // let the kernel choose
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0) goto fail;
    // The connector already needs CAP_NET_ADMIN, which SO_RCVBUFFORCE needs
    // to pass rmem_max.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer_bytes, sizeof(buffer_bytes)) != 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof(buffer_bytes));
    }
    int on = 1;
    if (!report_overruns && setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof(on)) != 0) goto fail;

    // A netlink header, a connector header, then the operation as the
    // connector's data (cn_msg ends in a flexible array, so the three are
    // laid out in a buffer rather than as fields of one struct).
    enum proc_cn_mcast_op op = PROC_CN_MCAST_LISTEN;
    char request[NLMSG_LENGTH(sizeof(struct cn_msg) + sizeof(op))] __attribute__((aligned(NLMSG_ALIGNTO)));
    memset(request, 0, sizeof(request));
    struct nlmsghdr *header = (struct nlmsghdr *)request;
    header->nlmsg_len = sizeof(request);
    header->nlmsg_type = NLMSG_DONE;
    struct cn_msg *message = NLMSG_DATA(header);
    message->id.idx = CN_IDX_PROC;
    message->id.val = CN_VAL_PROC;
    message->len = sizeof(op);
    memcpy(message->data, &op, sizeof(op));
    if (send(fd, request, sizeof(request), 0) != (ssize_t)sizeof(request)) goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

// Whether events of the message's CPU were skipped since the last one seen
// from it; notes the number expected next. Every message counts, the
// acknowledgements of other sockets' subscriptions (no event) included:
// the kernel numbers them in the same sequence.
static int sequence_gap(const struct cn_msg *message, const struct proc_event *event, uint64_t *next, int cpus) {
    if (event->cpu >= (uint32_t)cpus) return 0;
    uint64_t *slot = &next[event->cpu];
    int gap = (*slot >> 32) != 0 && (uint32_t)*slot != message->seq;
    *slot = (1ULL << 32) | (uint32_t)(message->seq + 1);
    return gap;
}

int jobshim_proc_events_read(int fd, jobshim_proc_event *events, int max, uint64_t *next_sequence, int cpus, int *lost) {
    int count = 0;
    char buffer[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
    while (count < max) {
        ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            // Reported once per overflow; the socket goes on delivering.
            if (errno == ENOBUFS) {
                *lost = 1;
                continue;
            }
            if (errno == EAGAIN) return count;
            return count > 0 ? count : -1;
        }
        for (struct nlmsghdr *header = (struct nlmsghdr *)buffer; NLMSG_OK(header, (size_t)n);
             header = NLMSG_NEXT(header, n)) {
            if (header->nlmsg_type == NLMSG_ERROR || header->nlmsg_type == NLMSG_NOOP) continue;
            struct cn_msg *message = NLMSG_DATA(header);
            if (message->id.idx != CN_IDX_PROC || message->id.val != CN_VAL_PROC) continue;
            struct proc_event *event = (struct proc_event *)message->data;
            if (sequence_gap(message, event, next_sequence, cpus)) *lost = 1;
            jobshim_proc_event *out = &events[count];
            if (event->what == PROC_EVENT_FORK) {
                out->what = JOBSHIM_PROC_FORK;
                out->pid = event->event_data.fork.child_pid;
                out->tgid = event->event_data.fork.child_tgid;
                out->parent_tgid = event->event_data.fork.parent_tgid;
                out->exit_code = 0;
            } else if (event->what == PROC_EVENT_EXIT) {
                out->what = JOBSHIM_PROC_EXIT;
                out->pid = event->event_data.exit.process_pid;
                out->tgid = event->event_data.exit.process_tgid;
                out->parent_tgid = 0;
                out->exit_code = (int)event->event_data.exit.exit_code;
            } else {
                continue;
            }
            if (++count == max) {
                // The kernel sends one event per datagram; should a datagram
                // ever hold more than fit, what is left is reported lost
                // rather than dropped without a word.
                ssize_t rest = n;
                struct nlmsghdr *next = NLMSG_NEXT(header, rest);
                if (NLMSG_OK(next, (size_t)rest)) *lost = 1;
                return count;
            }
        }
    }
    return count;
}
