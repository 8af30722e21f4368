/*
 * real.h - the libc functions behind our hooks.
 *
 * Resolved once with dlsym(RTLD_NEXT) under pthread_once, from whichever
 * comes first: our constructor or a hook called before it (another
 * library's constructor may close() before ours runs). Resolution aborts
 * loudly if a name resolves to our own hook, since calling it would
 * recurse for ever.
 *
 * While resolution itself is running (and in any other re-entrant case)
 * a hook may find a pointer still NULL; kb_raw_syscall() then performs the
 * system call directly, so even that case never crashes.
 */
#ifndef KBFAULT_REAL_H
#define KBFAULT_REAL_H

#include <stdio.h>
#include <sys/socket.h>

struct kb_real {
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*close)(int);
	int (*shutdown)(int, int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*close_range)(unsigned, unsigned, int);
	void (*closefrom)(int);
	int (*fclose)(FILE *);
	long (*syscall)(long, ...);
};

/* hidden: the hooks reach it with one RIP-relative load, no GOT */
extern struct kb_real kb_real __attribute__((visibility("hidden")));

void kb_real_resolve(void);

/* A system call without libc and without our hooks; returns -1 and sets
 * errno on failure, like syscall(2). */
long kb_raw_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6);

#endif
