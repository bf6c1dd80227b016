// CLinux: the few Linux calls and constants that Glibc's Swift module does not expose cleanly.
#ifndef CLINUX_H
#define CLINUX_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <errno.h>
#include <unistd.h>

// epoll_event is packed on x86_64; Swift cannot build it field by field reliably, so
// these two helpers keep the packing in C.
static inline int CLinux_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}
/// Waits and copies the ready events into two plain arrays (tags and event masks).
int CLinux_epoll_wait(int epfd, uint64_t *tags, uint32_t *masks, int max, int timeout_ms);

// accept4, SOCK_NONBLOCK/SOCK_CLOEXEC and pthread_setname_np need _GNU_SOURCE, which
// Glibc's Swift module is built without; they live in epoll.c, compiled with it.
int CLinux_accept_nonblocking(int fd);
int CLinux_socket_nonblocking(int domain, int type);
void CLinux_set_thread_name(const char *name);
/// mallopt(M_MMAP_THRESHOLD and M_TRIM_THRESHOLD, bytes): <malloc.h> is not part of Glibc's Swift module.
void CLinux_set_mmap_threshold(int bytes);
/// Returns free heap memory to the system (malloc_trim); 1 when some was released.
int CLinux_trim_heap(void);
static inline int CLinux_errno(void) { return errno; }
#endif
