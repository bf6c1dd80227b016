#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <sys/socket.h>
#include "CLinux.h"

int CLinux_epoll_wait(int epfd, uint64_t *tags, uint32_t *masks, int max, int timeout_ms) {
    struct epoll_event events[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        tags[i] = events[i].data.u64;
        masks[i] = events[i].events;
    }
    return n;
}

int CLinux_accept_nonblocking(int fd) {
    return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int CLinux_socket_nonblocking(int domain, int type) {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

void CLinux_set_thread_name(const char *name) {
    char truncated[16];
    size_t i = 0;
    for (; i < sizeof(truncated) - 1 && name[i] != 0; i++) truncated[i] = name[i];
    truncated[i] = 0;
    pthread_setname_np(pthread_self(), truncated);
}

int CLinux_trim_heap(void) {
    return malloc_trim(0);
}

void CLinux_set_mmap_threshold(int bytes) {
    mallopt(M_MMAP_THRESHOLD, bytes);
    // Setting the mmap threshold freezes the trim threshold at 128 KiB; raise it alike, or the
    // heap top is returned after every batch and faulted in again for the next.
    mallopt(M_TRIM_THRESHOLD, bytes);
}
