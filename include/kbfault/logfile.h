/*
 * logfile.h - what KBFAULT_LOG and `kbfault run -l` may name, and how the
 * log is opened: one policy for the library, which opens the log, and for
 * the command, which checks it before anything starts.
 *
 *  - "", "-" or "stderr": standard error.
 *  - /dev/stdin, /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N and
 *    /proc/thread-self/fd/N: this process's descriptor N. The library
 *    copies the descriptor rather than opening the name again: a socket
 *    cannot be opened by its /proc name, and the copy shares the host's
 *    file offset, so neither overwrites the other.
 *  - any other path: a file appended to, created mode 0600. A symbolic
 *    link in its last component is never followed, whoever owns it: one
 *    in a shared directory such as /tmp may have been planted by another
 *    user to point at a file of yours. (The names above are links too;
 *    they are recognised by name, never resolved.)
 *
 * Opening never blocks: O_NONBLOCK, which a FIFO with no reader answers
 * with ENXIO instead of waiting for one for ever. kb_logfile_open() then
 * tries again for a bounded time - a reader started just before or after
 * the program is usually there by then - and gives up with a reason the
 * caller can print.
 */
#ifndef KBFAULT_LOGFILE_H
#define KBFAULT_LOGFILE_H

#include <stddef.h>

enum { KB_LOGDEST_STDERR, KB_LOGDEST_FD, KB_LOGDEST_PATH };

/* What path names: KB_LOGDEST_STDERR, KB_LOGDEST_FD (then *fd is the
 * descriptor) or KB_LOGDEST_PATH. NULL is standard error. */
int kb_logdest_parse(const char *path, int *fd);

/* Opens a KB_LOGDEST_PATH for appending (O_WRONLY, O_APPEND, O_CREAT,
 * O_NOFOLLOW, O_NONBLOCK, O_CLOEXEC, O_NOCTTY), waiting up to fifo_wait_ms
 * for a FIFO's reader. Returns the descriptor, or -errno with the reason,
 * in words, in why. */
int kb_logfile_open(const char *path, int fifo_wait_ms, char *why, size_t why_len);

#endif
