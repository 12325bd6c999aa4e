// Socket helpers for --preserve-fds: classifying the caller's sockets on the host, and the
// guest's listening twins of host listening sockets.
#define _GNU_SOURCE
#include "shims.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

int kata_socket_info(int fd, struct kata_socket_info *out) {
    memset(out, 0, sizeof *out);
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    int v = 0;
    socklen_t vl = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) < 0) return -1;
    out->type = v;
    vl = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) == 0) out->listening = v;
    vl = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &vl) == 0) out->family = v;
    if (getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        if (a.ss_family == AF_INET) out->port = ntohs(((struct sockaddr_in *)&a)->sin_port);
        if (a.ss_family == AF_INET6) out->port = ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    }
    len = sizeof a;
    out->connected = getpeername(fd, (struct sockaddr *)&a, &len) == 0;
    return 0;
}

static int bind_loopback(int fd, int family, int port) {
    if (family == AF_INET) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return bind(fd, (struct sockaddr *)&a, sizeof a);
    }
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    return bind(fd, (struct sockaddr *)&a, sizeof a);
}

int kata_listen_like(int family, int port, void *addr, unsigned *len) {
    if (family != AF_UNIX && family != AF_INET && family != AF_INET6) { errno = EAFNOSUPPORT; return -1; }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int rc;
    if (family == AF_UNIX) {
        // An address of just the family autobinds to a unique abstract name.
        sa_family_t f = AF_UNIX;
        rc = bind(fd, (struct sockaddr *)&f, sizeof f);
    } else {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        rc = bind_loopback(fd, family, port);
        if (rc < 0 && errno == EADDRINUSE) rc = bind_loopback(fd, family, 0);
    }
    socklen_t l = 128;
    if (rc == 0) rc = listen(fd, SOMAXCONN);
    if (rc == 0) rc = getsockname(fd, (struct sockaddr *)addr, &l);
    if (rc < 0) { int e = errno; close(fd); errno = e; return -1; }
    *len = l;
    return fd;
}

int kata_connect_nonblocking(const void *addr, unsigned len) {
    int family = ((const struct sockaddr *)addr)->sa_family;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (connect(fd, (const struct sockaddr *)addr, len) < 0 && errno != EINPROGRESS) {
        int e = errno; close(fd); errno = e; return -1;
    }
    return fd;
}
