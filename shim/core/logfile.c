/*
 * logfile.c - naming and opening the injection log; see logfile.h for
 * the policy.
 */
#include "kbfault/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A descriptor number: decimal digits only, as the kernel names them. */
static int fd_number(const char *s)
{
	long n = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (*s - '0');
		if (n > INT_MAX)
			return -1;
	}
	return (int)n;
}

int kb_logdest_parse(const char *path, int *fd)
{
	static const char *const std[] = { "/dev/stdin", "/dev/stdout", "/dev/stderr" };
	static const char *const dirs[] = { "/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/" };

	if (path == NULL || path[0] == '\0' || strcmp(path, "-") == 0 || strcmp(path, "stderr") == 0)
		return KB_LOGDEST_STDERR;
	for (int i = 0; i < 3; i++) {
		if (strcmp(path, std[i]) == 0) {
			*fd = i;
			return KB_LOGDEST_FD;
		}
		size_t n = strlen(dirs[i]);
		if (strncmp(path, dirs[i], n) == 0 && (*fd = fd_number(path + n)) >= 0)
			return KB_LOGDEST_FD;
	}
	return KB_LOGDEST_PATH;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int kb_logfile_open(const char *path, int fifo_wait_ms, char *why, size_t why_len)
{
	long long deadline = now_ms() + fifo_wait_ms;
	struct stat st;

	why[0] = '\0';
	for (;;) {
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
		if (fd >= 0)
			return fd;
		int e = errno;
		if (e == EINTR)
			continue;
		if (e == ELOOP && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
			snprintf(why, why_len,
				 "it is a symbolic link, and the log never follows symbolic links (one may have "
				 "been planted by another user): name the file itself, or /dev/stdout, "
				 "/dev/stderr or /dev/fd/N");
			return -ELOOP;
		}
		if (e == ENXIO && lstat(path, &st) == 0 && S_ISFIFO(st.st_mode)) {
			if (now_ms() < deadline) {
				/* no reader yet: one may be on its way */
				struct timespec pause = { 0, 10 * 1000000 };
				nanosleep(&pause, NULL);
				continue;
			}
			snprintf(why, why_len, "no process has this FIFO open for reading (waited %d ms for one)",
				 fifo_wait_ms);
			return -ENXIO;
		}
		if (e == ENXIO && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
			snprintf(why, why_len, "a socket cannot be opened by its name; give it as a descriptor, /dev/fd/N");
			return -ENXIO;
		}
		snprintf(why, why_len, "%s", strerrordesc_np(e) ? strerrordesc_np(e) : "error");
		return -e;
	}
}
