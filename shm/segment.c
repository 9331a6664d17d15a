/* segment.c — the per-client memfd (layout, creation, sealing, attaching), the socket path
 * and descriptor passing. */
#include "qlab-shm.h"
#include "shm-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t page_up(uint64_t n)
{
    return (n + QLAB_PAGE - 1) & ~(uint64_t)(QLAB_PAGE - 1);
}

int qlab_layout_compute(qlab_layout *l, uint32_t sq_entries, uint32_t cq_entries,
                        uint64_t data_size, uint64_t max_data)
{
    if (!qlab_pow2_in_range(sq_entries) || !qlab_pow2_in_range(cq_entries))
        return -EINVAL;
    if (data_size > max_data)
        return -EFBIG;
    l->sq_entries = sq_entries;
    l->cq_entries = cq_entries;
    l->sq_off = QLAB_PAGE;                  /* page 0: header */
    l->cq_off = l->sq_off + page_up(qlab_ring_bytes(sq_entries, QLAB_SLOT_SIZE));
    l->data_off = l->cq_off + page_up(qlab_ring_bytes(cq_entries, QLAB_SLOT_SIZE));
    l->data_size = page_up(data_size);
    l->total_size = l->data_off + l->data_size;
    return 0;
}

int qlab_segment_create(const qlab_layout *l, uint64_t client_id, void **map)
{
    int fd = memfd_create("qlab-client", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    int r;

    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)l->total_size) < 0)
        goto fail;
    /* Sealed before anyone else holds the fd: the client cannot shrink the file under our
     * mapping (which would turn our accesses into SIGBUS), nor grow it, nor unseal it. */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
        goto fail;
    void *p = mmap(NULL, l->total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        goto fail;

    qlab_shm_hdr *h = p;
    h->version = QLAB_SHM_VERSION;
    h->slot_size = QLAB_SLOT_SIZE;
    h->sq_entries = l->sq_entries;
    h->cq_entries = l->cq_entries;
    h->sq_off = l->sq_off;
    h->cq_off = l->cq_off;
    h->data_off = l->data_off;
    h->data_size = l->data_size;
    h->total_size = l->total_size;
    h->client_id = client_id;
    /* Written last; pairs with the client's load_acquire of magic in segment_attach. */
    store_release(&h->magic, QLAB_SHM_MAGIC);
    *map = p;
    return fd;

fail:
    r = -errno;
    close(fd);
    return r;
}

int qlab_segment_attach(int fd, uint64_t expect_size, qlab_layout *l, void **map)
{
    struct stat st;
    int seals;

    if (fstat(fd, &st) < 0)
        return -errno;
    if ((uint64_t)st.st_size != expect_size || expect_size < QLAB_PAGE)
        return -EPROTO;
    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK))
        return -EPROTO;
    void *p = mmap(NULL, expect_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;

    qlab_shm_hdr *hp = p;
    /* pairs with the store_release of magic in segment_create */
    uint64_t magic = load_acquire(&hp->magic);
    qlab_shm_hdr h;
    memcpy((char *)&h + sizeof(h.magic), (char *)hp + sizeof(h.magic),
           sizeof(h) - sizeof(h.magic));
    qlab_layout want;
    if (magic != QLAB_SHM_MAGIC || h.version != QLAB_SHM_VERSION ||
        h.slot_size != QLAB_SLOT_SIZE ||
        qlab_layout_compute(&want, h.sq_entries, h.cq_entries, h.data_size, UINT64_MAX) < 0 ||
        want.sq_off != h.sq_off || want.cq_off != h.cq_off || want.data_off != h.data_off ||
        want.total_size != h.total_size || h.total_size != expect_size) {
        munmap(p, expect_size);
        return -EPROTO;
    }
    *l = want;
    *map = p;
    return 0;
}

static int ensure_private_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    if (lstat(dir, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return -EPERM;
    if ((st.st_mode & 077) && chmod(dir, 0700) < 0)
        return -errno;
    return 0;
}

int qlab_shm_socket_path(const char *fallback_dir, bool create, char *buf, size_t size)
{
    const char *env = getenv("QLAB_SOCKET");
    const char *rt = getenv("XDG_RUNTIME_DIR");
    int n, r;

    if (env && env[0]) {
        n = snprintf(buf, size, "%s", env);
    } else if (rt && rt[0]) {
        n = snprintf(buf, size, "%s/qlab", rt);
        if (n < 0 || (size_t)n >= size)
            return -ENAMETOOLONG;
        if (create && (r = ensure_private_dir(buf)) < 0)
            return r;
        n = snprintf(buf, size, "%s/qlab/" QLAB_SHM_SOCKET_NAME, rt);
    } else if (fallback_dir && fallback_dir[0]) {
        n = snprintf(buf, size, "%s/" QLAB_SHM_SOCKET_NAME, fallback_dir);
    } else {
        return -ENOENT;
    }
    if (n < 0 || (size_t)n >= size)
        return -ENAMETOOLONG;
    return 0;
}

int qlab_send_fds(int sock, const void *buf, size_t len, const int *fds, unsigned nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } u;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (nfds > 4)
        return -EINVAL;
    if (nfds) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    }
    ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EPROTO;
}

int qlab_recv_fds(int sock, void *buf, size_t len, int *fds, unsigned *nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } u;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof(u.buf) };
    unsigned want = *nfds, got = 0;

    ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0)
        return -errno;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (got < want)
                fds[got++] = fd;
            else
                close(fd);  /* more than we asked for: never leak them */
        }
    }
    *nfds = got;
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        for (unsigned i = 0; i < got; i++)
            close(fds[i]);
        *nfds = 0;
        return -EPROTO;
    }
    return (int)n;
}
