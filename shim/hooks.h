/*
 * hooks.h - the slow paths of the hooks, shared between the libc entry
 * points (close, accept4, ...) and syscall(), which routes the same
 * system calls here. `via` names the entry point in the log when it is
 * not the call itself ("accept4", "fclose", "close_range", "closefrom",
 * "syscall", "dup2", "dup3"; a connection's end that no close showed is
 * conn.h's "exit" or "unseen").
 *
 * Every hook's exported function is a fast path: one load of kb_mode and,
 * when the shim is off, a tail call to the real function. These slow
 * paths run start-up if needed, then pass through when the shim is off,
 * not yet ready, or re-entered (guard.h).
 */
#ifndef KBFAULT_HOOKS_H
#define KBFAULT_HOOKS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

int kb_listen_hook(int fd, int backlog, const char *via);
int kb_accept_hook(int fd, struct sockaddr *addr, socklen_t *len, int flags, bool four,
		   const char *via);
int kb_connect_hook(int fd, const struct sockaddr *addr, socklen_t len, const char *via);
int kb_close_hook(int fd, const char *via);
int kb_shutdown_hook(int fd, int how, const char *via);
int kb_dup_hook(int oldfd, int newfd, int flags, bool three, const char *via);
int kb_close_range_hook(unsigned first, unsigned last, int flags, const char *via);

/* Bookkeeping after a call that the exported function made itself, having
 * seen that no rule could decide it (the fast paths). */
int kb_accepted(int fd, int c, struct sockaddr *addr, socklen_t *len, socklen_t given, int flags,
		bool four, const char *via, uint64_t head);
void kb_connected(int fd, const struct sockaddr *addr, socklen_t len);
void kb_listened(int fd, int backlog);

#endif
