/*
 * proc.c - process liveness; see proc.h.
 */
#include "proc.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "real.h"

bool kb_proc_alive(pid_t pid)
{
	char path[40], buf[256];

	if (pid <= 0)
		return false;
	/* kill(pid, 0) answers EPERM for a live process of another user:
	 * alive, as far as holding descriptors goes */
	long rc = kb_sys(SYS_kill, pid, 0, 0, 0, 0, 0);
	if (rc == -ESRCH)
		return false;
	/* a zombie still answers kill(); its state in /proc says Z (or X) */
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	long fd = kb_sys(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (fd < 0)
		return fd != -ENOENT;
	long n = kb_sys(SYS_read, fd, (long)buf, sizeof buf - 1, 0, 0, 0);
	kb_sys(SYS_close, fd, 0, 0, 0, 0, 0);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses, so the
	 * state follows the last ')' */
	const char *end = strrchr(buf, ')');
	if (end == NULL || end[1] != ' ')
		return true;
	return end[2] != 'Z' && end[2] != 'X';
}
