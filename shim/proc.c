/*
 * proc.c - process liveness; see proc.h.
 *
 * Inline system calls (kb_sys) rather than open/read/close: those are
 * cancellation points and hooked calls, and a caller may hold a lock of
 * ours with cancellation disabled (queue.c).
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "real.h"

#if !KB_HAVE_SYS
/* elsewhere, libc (with errno kept as it was) */
static long sys_or_libc(long nr, long a1, long a2, long a3)
{
	int saved = errno;
	long r;
	switch (nr) {
	case SYS_openat: r = openat((int)a1, (const char *)a2, (int)a3); break;
	case SYS_read: r = read((int)a1, (void *)a2, (size_t)a3); break;
	case SYS_close: r = kb_real.close((int)a1); break;
	default: r = kill((pid_t)a1, (int)a2); break;
	}
	if (r < 0)
		r = -errno;
	errno = saved;
	return r;
}
#define SYS3(nr, a1, a2, a3) sys_or_libc(nr, (long)(a1), (long)(a2), (long)(a3))
#else
#define SYS3(nr, a1, a2, a3) kb_sys(nr, (long)(a1), (long)(a2), (long)(a3), 0, 0, 0)
#endif

/* "/proc/PID/<file>" into buf (at least 48 bytes) */
static void proc_path(char *buf, pid_t pid, const char *file)
{
	char digits[16];
	int n = 0;
	const char *head = "/proc/";
	while (*head)
		*buf++ = *head++;
	for (unsigned v = (unsigned)pid; v || n == 0; v /= 10)
		digits[n++] = (char)('0' + v % 10);
	while (n)
		*buf++ = digits[--n];
	*buf++ = '/';
	while (*file)
		*buf++ = *file++;
	*buf = '\0';
}

/* Up to len - 1 bytes of /proc/PID/<file>, NUL-terminated; the count, or
 * -errno. */
static long proc_read(pid_t pid, const char *file, char *buf, size_t len)
{
	char path[48];
	proc_path(path, pid, file);
	long fd = SYS3(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fd;
	long n = SYS3(SYS_read, fd, buf, len - 1);
	SYS3(SYS_close, fd, 0, 0);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

/* A zombie thread-group leader whose other threads still run (its main
 * thread called pthread_exit) is a live process: its "Threads:" count
 * says how many threads are left. */
static bool threads_left(pid_t pid)
{
	char st[2048];
	if (proc_read(pid, "status", st, sizeof st) <= 0)
		return false;
	for (const char *p = st; *p; p++) {
		if ((p == st || p[-1] == '\n') && strncmp(p, "Threads:", 8) == 0) {
			p += 8;
			while (*p == ' ' || *p == '\t')
				p++;
			return !(p[0] == '1' && (p[1] == '\n' || p[1] == '\0')) && p[0] != '0';
		}
	}
	return false;
}

bool kb_proc_alive(pid_t pid)
{
	char st[512];

	if (pid <= 0)
		return false;
	if (proc_read(pid, "stat", st, sizeof st) > 0) {
		/* "PID (COMM) S ...": COMM may hold spaces and parentheses,
		 * so the state follows the last ')' */
		const char *close = NULL;
		for (const char *p = st; *p; p++)
			if (*p == ')')
				close = p;
		if (close && close[1] == ' ' && close[2]) {
			char state = close[2];
			if (state == 'X' || state == 'x')
				return false;
			return state != 'Z' || threads_left(pid);
		}
	}
	/* no /proc (or no descriptor to spare): kill(pid, 0), which cannot
	 * tell a zombie; EPERM means it exists under another user */
	return SYS3(SYS_kill, pid, 0, 0) != -ESRCH;
}
