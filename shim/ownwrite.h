/*
 * ownwrite.h - how the shim writes on its own account: its log lines and
 * its messages on standard error.
 *
 * Every such write goes through here, so that none of them can hurt the
 * host:
 *
 *  - No signal. A pipe, FIFO or socket whose reader has gone answers a
 *    write with SIGPIPE, which kills a host that has not ignored it - and
 *    the shim writes its start line before main(), before any host could
 *    have. Sockets are written with MSG_NOSIGNAL. For pipes and FIFOs,
 *    SIGPIPE is blocked in this thread around the write (the kernel sends
 *    it to the writing thread), one that our write raised is taken back
 *    with a zero-timeout sigtimedwait - unless the host had one pending
 *    already, which stays - and the thread's mask is put back. Files get
 *    the same for SIGXFSZ when the host limits the size of its files
 *    (RLIMIT_FSIZE): a write past the limit raises it.
 *  - No cancellation point, errno untouched: raw system calls (kb_sys,
 *    real.h), not libc's write(), which is a cancellation point.
 *  - No unbounded wait: a descriptor that can be full (pipe, FIFO, socket,
 *    terminal) is polled for room, for at most the time the caller gives,
 *    then written without blocking where the kernel allows it (sockets:
 *    MSG_DONTWAIT). File status flags are never changed: a copy of
 *    standard error shares them with the host, and F_SETFL on it would
 *    change the host's own stderr.
 */
#ifndef KBFAULT_OWNWRITE_H
#define KBFAULT_OWNWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

/* What a descriptor is, as far as writing to it goes; learnt once with
 * fstat() for the log (its open file description never changes). */
enum kb_out_kind {
	KB_OUT_FILE,   /* regular file, block device: never full, never a signal */
	KB_OUT_PIPE,   /* pipe or FIFO: can be full, can raise SIGPIPE */
	KB_OUT_SOCKET, /* can be full; MSG_NOSIGNAL */
	KB_OUT_OTHER,  /* terminal, /dev/null, /dev/full...: can be full */
};

enum kb_out_kind kb_out_kind_of(int fd);

/* Waits up to ms (0: only asks) for room to write on fd; returns true
 * when a write should be tried now (room, or an error the write will
 * report), false when the time ran out. */
bool kb_out_room(int fd, int ms);

/* One write of iov[0..n) to fd, without waiting where the kernel allows
 * it and without raising a signal. Returns the bytes written (maybe fewer
 * than asked) or -errno. */
long kb_out_try(int fd, enum kb_out_kind kind, const struct iovec *iov, int n);

/* A message on standard error, whole if it can be, within wait_ms for
 * room (0: only if there is room now). Returns whether all of it was
 * written. */
bool kb_say(const char *msg, int wait_ms);

/* Monotonic milliseconds, for bounded waits. */
long long kb_out_now_ms(void);

#endif
