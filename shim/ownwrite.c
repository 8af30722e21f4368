/*
 * ownwrite.c - the shim's own writes; see ownwrite.h for what they
 * promise the host.
 *
 * The system calls are made with kb_sys() where the architecture has it
 * (real.h); elsewhere with libc's, errno saved around them.
 */
#include "ownwrite.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "real.h"

long long kb_out_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

enum kb_out_kind kb_out_kind_of(int fd)
{
	struct stat st;
	int saved = errno;
	int rc = fstat(fd, &st);
	errno = saved;
	if (rc != 0)
		return KB_OUT_OTHER;
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
		return KB_OUT_FILE;
	if (S_ISFIFO(st.st_mode))
		return KB_OUT_PIPE;
	if (S_ISSOCK(st.st_mode))
		return KB_OUT_SOCKET;
	return KB_OUT_OTHER;
}

/* ---- the system calls, errno left alone --------------------------------- */

#if KB_HAVE_SYS
/* the kernel's sigset_t: one bit per signal, 64 of them */
typedef uint64_t ksigset;
#define KSIGSET_BYTES 8
#define KSIG(s) ((ksigset)1 << ((s) - 1))

static long sys_ppoll(struct pollfd *p, const struct timespec *ts)
{
	return kb_sys(SYS_ppoll, (long)p, 1, (long)ts, 0, KSIGSET_BYTES, 0);
}

static long sys_writev(int fd, const struct iovec *iov, int n)
{
	return kb_sys(SYS_writev, fd, (long)iov, n, 0, 0, 0);
}

static long sys_sendmsg(int fd, const struct msghdr *m, int flags)
{
	return kb_sys(SYS_sendmsg, fd, (long)m, flags, 0, 0, 0);
}

/* Blocks sig in this thread; says whether it was blocked before. */
static bool sig_block(int sig)
{
	ksigset set = KSIG(sig), old = 0;
	kb_sys(SYS_rt_sigprocmask, SIG_BLOCK, (long)&set, (long)&old, KSIGSET_BYTES, 0, 0);
	return (old & set) != 0;
}

static void sig_unblock(int sig)
{
	ksigset set = KSIG(sig);
	kb_sys(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&set, 0, KSIGSET_BYTES, 0, 0);
}

static bool sig_pending(int sig)
{
	ksigset p = 0;
	kb_sys(SYS_rt_sigpending, (long)&p, KSIGSET_BYTES, 0, 0, 0, 0);
	return (p & KSIG(sig)) != 0;
}

/* Takes back the signal our write raised: pending, blocked, and not yet
 * delivered to anyone. */
static void sig_consume(int sig)
{
	ksigset set = KSIG(sig);
	struct timespec zero = { 0, 0 };
	kb_sys(SYS_rt_sigtimedwait, (long)&set, 0, (long)&zero, KSIGSET_BYTES, 0, 0);
}

/* Does the host limit the size of the files it writes (RLIMIT_FSIZE)? A
 * write beyond the limit raises SIGXFSZ. It can change at any time, so
 * it is asked before each write to a file: one system call. */
static bool fsize_limited(void)
{
	struct rlimit rl;
	return kb_sys(SYS_prlimit64, 0, RLIMIT_FSIZE, 0, (long)&rl, 0, 0) == 0 && rl.rlim_cur != RLIM_INFINITY;
}
#else
static long keep_errno(long rc, int saved)
{
	long r = rc < 0 ? -errno : rc;
	errno = saved;
	return r;
}

static long sys_ppoll(struct pollfd *p, const struct timespec *ts)
{
	int saved = errno;
	return keep_errno(ppoll(p, 1, ts, NULL), saved);
}

static long sys_writev(int fd, const struct iovec *iov, int n)
{
	int saved = errno;
	return keep_errno(writev(fd, iov, n), saved);
}

static long sys_sendmsg(int fd, const struct msghdr *m, int flags)
{
	int saved = errno;
	return keep_errno(sendmsg(fd, m, flags), saved);
}

static bool sig_block(int sig)
{
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	return sigismember(&old, sig) == 1;
}

static void sig_unblock(int sig)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static bool sig_pending(int sig)
{
	sigset_t p;
	sigpending(&p);
	return sigismember(&p, sig) == 1;
}

static void sig_consume(int sig)
{
	sigset_t set;
	struct timespec zero = { 0, 0 };
	int saved = errno;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigtimedwait(&set, NULL, &zero);
	errno = saved;
}

static bool fsize_limited(void)
{
	struct rlimit rl;
	int saved = errno;
	bool limited = getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
	errno = saved;
	return limited;
}
#endif

/* ---- writing --------------------------------------------------------------- */

bool kb_out_room(int fd, int ms)
{
	long long deadline = kb_out_now_ms() + (ms > 0 ? ms : 0);
	for (;;) {
		struct pollfd p = { fd, POLLOUT, 0 };
		long long left = deadline - kb_out_now_ms();
		struct timespec ts = { left > 0 ? left / 1000 : 0, left > 0 ? (left % 1000) * 1000000 : 0 };
		long rc = sys_ppoll(&p, &ts);
		if (rc > 0)
			return true; /* room, or POLLERR/POLLHUP/POLLNVAL: the write says which */
		if (rc < 0 && rc != -EINTR)
			return true; /* poll itself failed: let the write report it */
		if (rc == 0 && left <= 0)
			return false;
		/* interrupted by a handler of the host's, or woken early: go on
		 * waiting for what is left of the time */
	}
}

long kb_out_try(int fd, enum kb_out_kind kind, const struct iovec *iov, int n)
{
	long rc;
	int sig, err;

	if (kind == KB_OUT_SOCKET) {
		struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
		rc = sys_sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (rc != -ENOTSOCK)
			return rc;
		/* not a socket after all (the kind was guessed): as a pipe */
		kind = KB_OUT_PIPE;
	}
	/* the signal this write could raise, and the error it comes with */
	if (kind == KB_OUT_PIPE) {
		sig = SIGPIPE;
		err = EPIPE;
	} else if (kind == KB_OUT_FILE && fsize_limited()) {
		sig = SIGXFSZ;
		err = EFBIG;
	} else if (kind == KB_OUT_OTHER) {
		/* a terminal (or another device): a background process writing
		 * to one set `tostop` would be stopped with SIGTTOU; with the
		 * signal blocked the kernel lets the write through and raises
		 * nothing (an orphaned process group gets EIO instead) */
		bool was_blocked = sig_block(SIGTTOU);
		rc = sys_writev(fd, iov, n);
		if (!was_blocked)
			sig_unblock(SIGTTOU);
		return rc;
	} else {
		return sys_writev(fd, iov, n);
	}
	bool was_blocked = sig_block(sig);
	/* one can be pending here only if the host blocks it; then it is
	 * the host's, and stays */
	bool had = was_blocked && sig_pending(sig);
	rc = sys_writev(fd, iov, n);
	if (rc == -err && !had)
		sig_consume(sig);
	if (!was_blocked)
		sig_unblock(sig);
	return rc;
}

bool kb_say(const char *msg, int wait_ms)
{
	size_t len = strlen(msg);
	enum kb_out_kind kind = kb_out_kind_of(2);
	long long deadline = kb_out_now_ms() + wait_ms;

	while (len) {
		long long left = deadline - kb_out_now_ms();
		if (kind != KB_OUT_FILE && !kb_out_room(2, left > 0 ? (int)left : 0))
			return false;
		struct iovec iov = { (void *)msg, len };
		long n = kb_out_try(2, kind, &iov, 1);
		if (n == -EINTR || (n == -EAGAIN && left > 0))
			continue;
		if (n <= 0)
			return false;
		/* a message for people, not a log line: finishing it is better
		 * than leaving half of it */
		msg += n;
		len -= (size_t)n;
	}
	return true;
}
