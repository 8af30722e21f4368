/*
 * hook_signal.c - sigaction() and its relatives, and the sigwait family:
 * how a stall learns that the host was told to stop (termsig.h).
 *
 * A stall must end when the host receives SIGTERM, SIGINT, SIGHUP or
 * SIGQUIT, in whichever thread: a threaded server's handler often runs in
 * its main thread while the stalled acceptor blocks every signal, and then
 * nothing interrupts the stall's sleep. So while stall rules are armed, a
 * handler the host installs for one of those four is wrapped: the kernel
 * calls ours, which counts the signal and calls the host's exactly as the
 * kernel would have - with one argument, or with the siginfo and ucontext
 * the kernel gave us under SA_SIGINFO - touching nothing else (errno is
 * the host's, unchanged). The host's flags and mask go to the kernel as it
 * gave them (SA_RESETHAND resets to SIG_DFL on delivery, as without us),
 * with SA_SIGINFO added so that ours receives what the host's may want.
 * SIG_DFL and SIG_IGN are never wrapped.
 *
 * The host never sees the wrapper: every way of asking for a handler
 * (sigaction's oldact, what signal() and the others return) answers with
 * the host's own handler and flags. There are two wrappers, one per
 * calling convention, each with its own table of host handlers: a signal
 * that arrives while sigaction() is changing the handler finds either the
 * old one or the new one, each called the way it expects.
 *
 * signal(), bsd_signal(), sysv_signal() (and __sysv_signal, which strict
 * ISO C programs get for signal()) and sigset() install through glibc's
 * internal sigaction, which no hook sees: they run as they are, and the
 * handler they installed is then wrapped with the flags they chose. The
 * sigwait family counts what it returns.
 *
 * Without a recipe, each exported function is a load of kb_mode and a
 * jump to libc, as every hook is; with a recipe but no stall rule, a few
 * more instructions and the same call.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>

#include "kbfault/model.h"
#include "guard.h"
#include "real.h"
#include "shim.h"
#include "termsig.h"

/* ThreadSanitizer's runtime calls sigaction() while it starts - in a
 * program that is not instrumented itself, from our constructor - and
 * finds ours, whose instrumented entry it cannot run yet: in a TSan build
 * (make check-tsan) nothing here is instrumented. Every access here is
 * atomic, or the host's own handler's. */
#if defined(__SANITIZE_THREAD__)
#define KB_SIG __attribute__((no_sanitize("thread")))
#else
#define KB_SIG
#endif

/* kb_mode_get(), inlined even where the compiler would not (at -O1, an
 * instrumented copy of it is called) */
static inline __attribute__((always_inline)) int mode(void)
{
	return __atomic_load_n(&kb_mode, __ATOMIC_ACQUIRE);
}

/* One calling convention as another's type, for comparing and returning:
 * through void (*)(void), which says the cast is meant. */
#define AS_HANDLER(f) ((__sighandler_t)(void (*)(void))(f))

/* glibc's own name for sigaction, for the moment before ours is known */
extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);

static uint64_t term_seen;

/* The host's handlers for the four signals, by calling convention, and
 * whether what we last installed is wrap_plain (with an SA_SIGINFO the
 * host did not ask for). */
static void (*host_plain[32])(int);
static void (*host_info[32])(int, siginfo_t *, void *);
static bool added_siginfo[32];

KB_SIG bool kb_is_term_signal(int sig)
{
	return sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT;
}

KB_SIG uint64_t kb_term_count(void)
{
	return __atomic_load_n(&term_seen, __ATOMIC_ACQUIRE);
}

KB_SIG static void seen(int sig)
{
	if (kb_is_term_signal(sig))
		__atomic_add_fetch(&term_seen, 1, __ATOMIC_RELEASE);
}

KB_SIG static int real_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	return kb_real.sigaction ? kb_real.sigaction(sig, act, old) : __sigaction(sig, act, old);
}

KB_SIG bool kb_term_pending(void)
{
	static const int four[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT };
	sigset_t p;
	int e = errno;
	bool pending = false;

	if (sigpending(&p) == 0)
		for (size_t i = 0; i < sizeof four / sizeof four[0] && !pending; i++) {
			struct sigaction a;
			/* blocked and ignored, it is pending too, and discarded
			 * once unblocked */
			pending = sigismember(&p, four[i]) == 1 && real_sigaction(four[i], NULL, &a) == 0 &&
				  a.sa_handler != SIG_IGN;
		}
	errno = e;
	return pending;
}

/* What the kernel calls instead of the host's handler. */
KB_SIG static void wrap_plain(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	seen(sig);
	void (*h)(int) = __atomic_load_n(&host_plain[sig & 31], __ATOMIC_ACQUIRE);
	if (h)
		h(sig);
}

KB_SIG static void wrap_info(int sig, siginfo_t *si, void *uc)
{
	seen(sig);
	void (*h)(int, siginfo_t *, void *) = __atomic_load_n(&host_info[sig & 31], __ATOMIC_ACQUIRE);
	if (h)
		h(sig, si, uc);
}

/* A handler to call, not SIG_DFL, SIG_IGN, SIG_HOLD or SIG_ERR. */
KB_SIG static bool is_handler(const void *h)
{
	return h != (void *)SIG_DFL && h != (void *)SIG_IGN && h != (void *)SIG_HOLD && h != (void *)SIG_ERR;
}

KB_SIG static bool stall_rules(void)
{
	const char *names[] = { kb_shim.program, kb_shim.argv0, NULL };
	for (size_t i = 0; i < kb_shim.recipe.nrules; i++) {
		const struct kb_rule *r = &kb_shim.recipe.rules[i];
		if (r->enabled && r->action == KB_ACT_STALL && kb_rule_for_program(r, names))
			return true;
	}
	return false;
}

/* Are the termination signals' handlers wrapped in this process? While
 * armed with stall rules for this program: the recipe is fixed once
 * armed, so this is decided once. */
KB_SIG static bool wrapping(int sig)
{
	static int decided; /* 0: not yet; 1: no; 2: yes */

	if (!kb_is_term_signal(sig) || kb_guarded() || !kb_armed())
		return false;
	int d = __atomic_load_n(&decided, __ATOMIC_RELAXED);
	if (d == 0) {
		d = stall_rules() ? 2 : 1;
		__atomic_store_n(&decided, d, __ATOMIC_RELAXED);
	}
	return d == 2;
}

/* The host's handlers before a change, to answer with in place of ours. */
struct before {
	void (*plain)(int);
	void (*info)(int, siginfo_t *, void *);
	bool added_siginfo;
};

KB_SIG static struct before before(int sig)
{
	struct before b = { __atomic_load_n(&host_plain[sig], __ATOMIC_ACQUIRE),
			    __atomic_load_n(&host_info[sig], __ATOMIC_ACQUIRE),
			    __atomic_load_n(&added_siginfo[sig], __ATOMIC_ACQUIRE) };
	return b;
}

/* What the kernel said was installed, as the host installed it. */
KB_SIG static void unwrap(struct sigaction *old, const struct before *b)
{
	if (old->sa_sigaction == wrap_plain) {
		old->sa_handler = b->plain;
		old->sa_flags &= ~SA_SIGINFO;
	} else if (old->sa_sigaction == wrap_info) {
		old->sa_sigaction = b->info;
	} else if (old->sa_handler == SIG_DFL && (old->sa_flags & SA_RESETHAND) && b->added_siginfo) {
		/* SA_RESETHAND has put SIG_DFL back, and left the flags */
		old->sa_flags &= ~SA_SIGINFO;
	}
}

KB_SIG static __sighandler_t unwrap_handler(__sighandler_t h, const struct before *b)
{
	if (h == AS_HANDLER(wrap_plain))
		return b->plain;
	if (h == AS_HANDLER(wrap_info))
		return AS_HANDLER(b->info); /* the union's other member, as signal() returns it */
	return h;
}

KB_SIG static int sigaction_hook(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (!wrapping(sig))
		return real_sigaction(sig, act, old);
	struct before b = before(sig);
	struct sigaction mine;
	const struct sigaction *use = act;
	bool added = false;
	if (act && (act->sa_flags & SA_SIGINFO) && is_handler((const void *)act->sa_sigaction)) {
		mine = *act;
		__atomic_store_n(&host_info[sig], act->sa_sigaction == wrap_info ? b.info : act->sa_sigaction,
				 __ATOMIC_RELEASE);
		mine.sa_sigaction = wrap_info;
		use = &mine;
	} else if (act && !(act->sa_flags & SA_SIGINFO) && is_handler((const void *)act->sa_handler)) {
		mine = *act;
		__atomic_store_n(&host_plain[sig],
				 act->sa_handler == AS_HANDLER(wrap_plain) ? b.plain : act->sa_handler,
				 __ATOMIC_RELEASE);
		mine.sa_sigaction = wrap_plain;
		mine.sa_flags |= SA_SIGINFO;
		use = &mine;
		added = true;
	}
	if (act)
		__atomic_store_n(&added_siginfo[sig], added, __ATOMIC_RELEASE);
	int rc = real_sigaction(sig, use, old);
	if (rc == 0 && old)
		unwrap(old, &b);
	return rc;
}

/* signal() and the others have just installed h themselves, with the
 * flags and mask they choose: put our wrapper in front of it, keeping
 * those. Unless another thread has installed something else meanwhile. */
KB_SIG static void wrap_installed(int sig, __sighandler_t h)
{
	struct sigaction cur;
	int e = errno;
	if (real_sigaction(sig, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == h) {
		__atomic_store_n(&host_plain[sig], h, __ATOMIC_RELEASE);
		__atomic_store_n(&added_siginfo[sig], true, __ATOMIC_RELEASE);
		cur.sa_sigaction = wrap_plain;
		cur.sa_flags |= SA_SIGINFO;
		real_sigaction(sig, &cur, NULL);
	}
	errno = e;
}

/* Only before the real functions are known: what glibc's do, roughly. */
KB_SIG static __sighandler_t set_by_sigaction(int sig, __sighandler_t h, int flags)
{
	struct sigaction act, old;
	memset(&act, 0, sizeof act);
	act.sa_handler = h;
	act.sa_flags = flags;
	if (!(flags & SA_NODEFER))
		sigaddset(&act.sa_mask, sig);
	return real_sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

KB_SIG static __sighandler_t set_hook(int sig, __sighandler_t h, __sighandler_t (*real)(int, __sighandler_t), int flags)
{
	if (!wrapping(sig))
		return real ? real(sig, h) : set_by_sigaction(sig, h, flags);
	struct before b = before(sig);
	if (h == AS_HANDLER(wrap_plain))
		h = b.plain;
	__sighandler_t prev = real ? real(sig, h) : set_by_sigaction(sig, h, flags);
	if (prev == SIG_ERR)
		return SIG_ERR;
	if (h != SIG_HOLD)
		__atomic_store_n(&added_siginfo[sig], false, __ATOMIC_RELEASE);
	if (is_handler((const void *)h))
		wrap_installed(sig, h);
	return unwrap_handler(prev, &b);
}

KB_SIG __attribute__((noinline)) static __sighandler_t signal_hook(int sig, __sighandler_t h)
{
	return set_hook(sig, h, kb_real.signal, SA_RESTART);
}

KB_SIG __attribute__((noinline)) static __sighandler_t bsd_signal_hook(int sig, __sighandler_t h)
{
	return set_hook(sig, h, kb_real.bsd_signal, SA_RESTART);
}

KB_SIG __attribute__((noinline)) static __sighandler_t sysv_signal_hook(int sig, __sighandler_t h, bool internal)
{
	return set_hook(sig, h, internal ? kb_real.sysv_signal_ : kb_real.sysv_signal, SA_RESETHAND | SA_NODEFER);
}

KB_SIG __attribute__((noinline)) static __sighandler_t sigset_hook(int sig, __sighandler_t h)
{
	return set_hook(sig, h, kb_real.sigset, SA_RESTART);
}

/* The sigwait family: the call as it is, and what it returned counted. */
KB_SIG __attribute__((noinline)) static int sigwait_hook(const sigset_t *set, int *sig)
{
	int rc;
	if (kb_real.sigwait) {
		rc = kb_real.sigwait(set, sig);
	} else {
		long r = kb_sys(SYS_rt_sigtimedwait, (long)set, 0, 0, _NSIG / 8, 0, 0);
		rc = r < 0 ? (int)-r : 0;
		if (r >= 0)
			*sig = (int)r;
	}
	if (rc == 0)
		seen(*sig);
	return rc;
}

KB_SIG __attribute__((noinline)) static int sigtimedwait_hook(const sigset_t *set, siginfo_t *info, const struct timespec *timeout, bool timed)
{
	int s;
	if (timed && kb_real.sigtimedwait)
		s = kb_real.sigtimedwait(set, info, timeout);
	else if (!timed && kb_real.sigwaitinfo)
		s = kb_real.sigwaitinfo(set, info);
	else
		s = (int)kb_raw_syscall(SYS_rt_sigtimedwait, (long)set, (long)info, (long)timeout, _NSIG / 8, 0, 0);
	if (s > 0)
		seen(s);
	return s;
}

KB_SIG __attribute__((noinline)) static int sigaction_slow(int sig, const struct sigaction *act, struct sigaction *old)
{
	return sigaction_hook(sig, act, old);
}

KB_SIG KB_API int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (__builtin_expect(mode() == KB_MODE_OFF, 1))
		return kb_real.sigaction(sig, act, old);
	return sigaction_slow(sig, act, old);
}

KB_SIG KB_API __sighandler_t signal(int sig, __sighandler_t h)
{
	if (__builtin_expect(mode() == KB_MODE_OFF, 1))
		return kb_real.signal(sig, h);
	return signal_hook(sig, h);
}

KB_SIG KB_API __sighandler_t bsd_signal(int sig, __sighandler_t h)
{
	if (__builtin_expect(mode() == KB_MODE_OFF, 1))
		return kb_real.bsd_signal(sig, h);
	return bsd_signal_hook(sig, h);
}

KB_SIG KB_API __sighandler_t sysv_signal(int sig, __sighandler_t h)
{
	if (__builtin_expect(mode() == KB_MODE_OFF, 1))
		return kb_real.sysv_signal(sig, h);
	return sysv_signal_hook(sig, h, false);
}

KB_SIG KB_API __sighandler_t __sysv_signal(int sig, __sighandler_t h)
{
	if (__builtin_expect(mode() == KB_MODE_OFF, 1))
		return kb_real.sysv_signal_(sig, h);
	return sysv_signal_hook(sig, h, true);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
KB_SIG KB_API __sighandler_t sigset(int sig, __sighandler_t h)
{
	if (__builtin_expect(mode() == KB_MODE_OFF, 1))
		return kb_real.sigset(sig, h);
	return sigset_hook(sig, h);
}
#pragma GCC diagnostic pop

KB_SIG KB_API int sigwait(const sigset_t *set, int *sig)
{
	if (__builtin_expect(mode() == KB_MODE_OFF, 1))
		return kb_real.sigwait(set, sig);
	return sigwait_hook(set, sig);
}

KB_SIG KB_API int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	if (__builtin_expect(mode() == KB_MODE_OFF, 1))
		return kb_real.sigwaitinfo(set, info);
	return sigtimedwait_hook(set, info, NULL, false);
}

KB_SIG KB_API int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
	if (__builtin_expect(mode() == KB_MODE_OFF, 1))
		return kb_real.sigtimedwait(set, info, timeout);
	return sigtimedwait_hook(set, info, timeout, true);
}
