/* Many tap subscribers in one process, for the fan-out benchmark: N HTTP/1.1 `GET /tap?...`
 * connections on one epoll, each counting its entry lines (lines that do not start with
 * {"type":" -- the lost/shutdown notices), until every connection has ended (the server
 * stopped) or the time limit. Prints one count per line, in argument order.
 * A hundred curl|grep pipelines would cost the client core more than the server spends.
 *   tapsink PORT SECONDS QUERY...            (QUERY like "?ns=a&format=json") */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { HEAD, SIZE, DATA, DATA_END, DONE };

struct sub {
    int fd;
    enum state state;
    unsigned tail;      /* last 4 head bytes, to find CRLFCRLF */
    long remaining;     /* chunk bytes left (DATA) or CRLF bytes left (DATA_END) */
    long size;          /* chunk size being parsed */
    int in_extension;
    int line_pos, mismatch;
    long count;
    int open;
};

static const char notice[] = "{\"type\":\"";

static void body_byte(struct sub *s, unsigned char byte) {
    if (byte == '\n') {
        int is_notice = !s->mismatch && s->line_pos >= (int)sizeof notice - 1;
        if (s->line_pos > 0 && !is_notice) s->count++;
        s->line_pos = 0;
        s->mismatch = 0;
        return;
    }
    if (s->line_pos < (int)sizeof notice - 1 && byte != (unsigned char)notice[s->line_pos]) s->mismatch = 1;
    s->line_pos++;
}

static void feed(struct sub *s, const unsigned char *p, long n) {
    for (long i = 0; i < n; i++) {
        unsigned char c = p[i];
        switch (s->state) {
        case HEAD:
            s->tail = (s->tail << 8) | c;
            if (s->tail == 0x0d0a0d0a) { s->state = SIZE; s->size = 0; s->in_extension = 0; }
            break;
        case SIZE:
            if (c == '\n') {
                if (s->size == 0) { s->state = DONE; return; }
                s->state = DATA;
                s->remaining = s->size;
            } else if (c == ';') {
                s->in_extension = 1;
            } else if (c != '\r' && !s->in_extension) {
                int digit = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
                s->size = s->size * 16 + digit;
            }
            break;
        case DATA: {
            long take = n - i < s->remaining ? n - i : s->remaining;
            const unsigned char *q = p + i, *end = q + take;
            while (q < end) {
                /* Byte by byte only at the start of a line; memchr to its end. */
                if (s->line_pos < (int)sizeof notice - 1) { body_byte(s, *q++); continue; }
                const unsigned char *newline = memchr(q, '\n', end - q);
                if (newline == NULL) { s->line_pos += end - q; break; }
                body_byte(s, *newline);
                q = newline + 1;
            }
            i += take - 1;
            s->remaining -= take;
            if (s->remaining == 0) { s->state = DATA_END; s->remaining = 2; }
            break;
        }
        case DATA_END:
            if (--s->remaining == 0) { s->state = SIZE; s->size = 0; s->in_extension = 0; }
            break;
        case DONE:
            return;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: tapsink PORT SECONDS QUERY...\n"); return 2; }
    int port = atoi(argv[1]);
    double seconds = atof(argv[2]);
    int n = argc - 3;
    struct sub *subs = calloc(n, sizeof *subs);
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("connect"); return 1; }
        char request[4096];
        int len = snprintf(request, sizeof request, "GET /tap%s HTTP/1.1\r\nHost: tapsink\r\n\r\n", argv[3 + i]);
        if (write(fd, request, len) != len) { perror("write"); return 1; }
        subs[i].fd = fd;
        subs[i].open = 1;
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (unsigned)i };
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int open = n;
    static unsigned char buffer[1 << 16];
    while (open > 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 > seconds) break;
        struct epoll_event events[64];
        int ready = epoll_wait(ep, events, 64, 200);
        for (int e = 0; e < ready; e++) {
            struct sub *s = &subs[events[e].data.u32];
            long got = read(s->fd, buffer, sizeof buffer);
            if (got <= 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
                close(s->fd);
                s->open = 0;
                open--;
                continue;
            }
            feed(s, buffer, got);
        }
    }
    for (int i = 0; i < n; i++) printf("%ld\n", subs[i].count);
    return 0;
}
