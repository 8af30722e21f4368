/*
 * init.c - start-up: environment, recipe, plan, log; and fork.
 *
 * Runs exactly once per process image, under pthread_once, from our
 * constructor or from the first hook that needs it, whichever comes first
 * (another preloaded library's constructor may call close() before ours
 * has run). Everything is read here, once: nginx, for one, clears its
 * environment before it starts its workers, and the hot path must never
 * call getenv().
 *
 * Configuration that cannot be honoured stops the host before main() with
 * a message naming the file, line and column, and exit status 125: a run
 * without the faults that were asked for would prove nothing.
 */
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kbfault/kbfault.h"
#include "kbfault/mem.h"
#include "kbfault/paths.h"
#include "kbfault/recipe.h"
#include "kbfault/scan.h"
#include "act.h"
#include "arena.h"
#include "conn.h"
#include "fdtable.h"
#include "guard.h"
#include "log.h"
#include "ownwrite.h"
#include "queue.h"
#include "real.h"
#include "session.h"
#include "shim.h"

/* The exit status of a host that kbfault refuses to start. */
#define KB_EXIT_CONFIG 125

int kb_mode = KB_MODE_UNINIT;
struct kb_shim kb_shim = { .sink4 = -1, .sink6 = -1 };
__thread int kb_guard_depth __attribute__((tls_model("initial-exec")));

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static const char *const known_env[] = {
	"KBFAULT_RECIPE", "KBFAULT_LOG", "KBFAULT_SEED", "KBFAULT_SET", "KBFAULT_RECIPE_DIR",
	"KBFAULT_LIB", NULL,
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t kb_since_start_ns(void *ctx)
{
	(void)ctx;
	return mono_ns() - kb_shim.start_ns;
}

/* Messages before main(): a second at most for room on standard error,
 * and never a SIGPIPE if nobody reads it (ownwrite.h). */
#define SAY_WAIT_MS 1000


/* The one place that decides what a configuration error does: say it on
 * stderr and in the log, then stop the host. */
__attribute__((noreturn)) static void refuse_to_start(const char *message)
{
	char buf[2048];

	snprintf(buf, sizeof buf,
		 "kbfault: %s\nkbfault: not starting %s: it would run without the faults that were asked for (exit status %d)\n",
		 message, kb_shim.program[0] ? kb_shim.program : "the program", KB_EXIT_CONFIG);
	kb_say(buf, SAY_WAIT_MS);
	kb_log_error(message);
	_exit(KB_EXIT_CONFIG);
}

static void read_names(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

	if (n > 0) {
		exe[n] = '\0';
		const char *base = strrchr(exe, '/');
		snprintf(kb_shim.program, sizeof kb_shim.program, "%.63s", base ? base + 1 : exe);
	}
	snprintf(kb_shim.argv0, sizeof kb_shim.argv0, "%s", program_invocation_short_name);
	if (!kb_shim.program[0])
		snprintf(kb_shim.program, sizeof kb_shim.program, "%s", kb_shim.argv0);
}

static void check_env_names(void)
{
	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, "KBFAULT_", 8) != 0)
			continue;
		size_t n = strcspn(*e, "=");
		bool known = false;
		for (size_t i = 0; known_env[i]; i++)
			if (strlen(known_env[i]) == n && strncmp(known_env[i], *e, n) == 0)
				known = true;
		if (!known) {
			char msg[512];
			snprintf(msg, sizeof msg,
				 "unknown environment variable %.*s (known: KBFAULT_RECIPE, KBFAULT_LOG, KBFAULT_SEED, KBFAULT_SET, KBFAULT_RECIPE_DIR, KBFAULT_LIB)",
				 (int)(n > 200 ? 200 : n), *e);
			refuse_to_start(msg);
		}
	}
}

/* The directory this library was loaded from, for finding bundled
 * recipes relative to it. */
static void library_dir(char *out, size_t len)
{
	Dl_info info;
	char real[PATH_MAX];

	out[0] = '\0';
	if (dladdr((void *)&kb_init_ensure, &info) == 0 || info.dli_fname == NULL)
		return;
	if (realpath(info.dli_fname, real) == NULL)
		return;
	snprintf(out, len, "%s", dirname(real));
}

static void resolve_recipe(const char *ref, char *path, size_t len)
{
	char libdir[PATH_MAX];
	char storage[KB_RECIPE_DIRS_MAX][4096];
	const char *dirs[KB_RECIPE_DIRS_MAX + 1];
	struct kb_diag d;
	char msg[1400];

	library_dir(libdir, sizeof libdir);
	kb_recipe_dirs(libdir, "../../share/kbfault/recipes", getenv("KBFAULT_RECIPE_DIR"),
		       KB_RECIPE_DIR, storage, dirs);
	if (kb_recipe_find(ref, dirs, path, len, &d) < 0) {
		kb_diag_format(&d, msg, sizeof msg);
		refuse_to_start(msg);
	}
}

static bool uses_marks(const struct kb_recipe *r)
{
	for (size_t i = 0; i < r->nrules; i++)
		if (r->rules[i].mark_peer || r->rules[i].peer_marked != KB_MARKED_ANY)
			return true;
	return false;
}

static void *counters_alloc(size_t n, bool shared)
{
	size_t bytes = (n ? n : 1) * sizeof(struct kb_counter);
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* a process's own counters start at zero in every child: the kernel
	 * clears them in any fork, even one made by a raw clone() that runs
	 * no fork handler (atfork_child clears them too, for kernels before
	 * 4.14) */
	if (!shared)
		madvise(p, bytes, MADV_WIPEONFORK);
	return p;
}

/* A forked child counts its own calls (process counters restart at zero;
 * tree counters are shared on purpose) and says it exists. Runs in the
 * child of a possibly multi-threaded parent: only async-signal-safe work
 * here, which the log writer is. */
static void atfork_child(void)
{
	if (kb_mode_get() != KB_MODE_ARMED)
		return;
	memset(kb_shim.process_counters, 0, kb_shim.recipe.nrules * sizeof(struct kb_counter));
	kb_log_atfork_child();
	kb_queue_atfork_child();
	kb_session_atfork_child();
	kb_log_start(true);
}

/* What each role's entries carry for the fast paths (fdtable.h): the
 * plan is fixed from here on, so this is decided once. */
static void flag_roles(const struct kb_plan *plan)
{
	for (int role = KB_ROLE_NONE + 1; role < KB_ROLE_COUNT; role++) {
		unsigned f = kb_plan_wants(plan, KB_CALL_CLOSE, role) ? KB_FD_CLOSE_RULES : 0;
		if (role == KB_ROLE_LISTENING) {
			if (kb_plan_wants(plan, KB_CALL_ACCEPT, KB_ROLE_LISTENING))
				f |= KB_FD_ACCEPT_BEFORE;
			if (kb_plan_wants(plan, KB_CALL_ACCEPT, KB_ROLE_ACCEPTED) ||
			    (plan->track_roles & (1u << KB_ROLE_ACCEPTED)))
				f |= KB_FD_ACCEPT_AFTER;
		}
		kb_fd_role_flags(role, f);
	}
}

static void init(void)
{
	struct kb_diag d;
	char msg[1400];
	char path[4096];
	struct kb_overrides ov;
	const char *v;

	kb_guard_enter();
	/* nothing in start-up may call the host's malloc: see mem.h */
	kb_mem_use(&kb_arena);
	kb_real_resolve();
	kb_shim.start_ns = mono_ns();
	read_names();

	/* setuid and friends: the environment belongs to someone else */
	if (getauxval(AT_SECURE)) {
		__atomic_store_n(&kb_mode, KB_MODE_OFF, __ATOMIC_RELEASE);
		kb_guard_leave();
		return;
	}
	const char *recipe = getenv("KBFAULT_RECIPE");
	bool armed = recipe != NULL && recipe[0] != '\0';
	/* loaded after the C library (dlopen(), ctypes): the program's calls
	 * never reach our hooks, so faults could not happen as asked; nor is
	 * the host ours to stop over its environment. Off, and said once. */
	if (!kb_real_interposes()) {
		if (armed) {
			snprintf(msg, sizeof msg,
				 "kbfault: warning: libkbfault.so was not preloaded in %s (it was loaded after the C library, by dlopen() or the like), so it sees none of the program's calls: KBFAULT_RECIPE is ignored here\n",
				 kb_shim.program);
			kb_say(msg, SAY_WAIT_MS);
		}
		__atomic_store_n(&kb_mode, KB_MODE_OFF, __ATOMIC_RELEASE);
		kb_guard_leave();
		return;
	}
	/* the log first, so that every configuration error below reaches it */
	if (armed) {
		char why[400];
		if (kb_log_open(getenv("KBFAULT_LOG"), why, sizeof why) < 0) {
			snprintf(msg, sizeof msg,
				 "kbfault: warning: cannot open the injection log %s: %s; injections in %s are not logged\n",
				 kb_log_path(), why, kb_shim.program);
			kb_say(msg, SAY_WAIT_MS);
		}
	}
	check_env_names();
	if (!armed) {
		__atomic_store_n(&kb_mode, KB_MODE_OFF, __ATOMIC_RELEASE);
		kb_guard_leave();
		return;
	}

	kb_overrides_init(&ov, "KBFAULT_SET");
	if ((v = getenv("KBFAULT_SET")) != NULL && kb_overrides_add_list(&ov, v, &d) < 0) {
		kb_diag_format(&d, msg, sizeof msg);
		refuse_to_start(msg);
	}
	resolve_recipe(recipe, path, sizeof path);
	if (kb_recipe_load(path, &ov, &kb_shim.recipe, &d) < 0) {
		kb_diag_format(&d, msg, sizeof msg);
		refuse_to_start(msg);
	}
	size_t used = 0;
	for (size_t i = 0; i < ov.n; i++)
		kb_append(kb_shim.overrides, sizeof kb_shim.overrides, &used, "%s%s=%s", i ? "," : "",
			  ov.item[i].name, ov.item[i].value);

	kb_shim.seed = kb_shim.recipe.seed;
	if ((v = getenv("KBFAULT_SEED")) != NULL && v[0] &&
	    kb_scan_u64(v, UINT64_MAX, &kb_shim.seed) < 0) {
		snprintf(msg, sizeof msg, "KBFAULT_SEED: expected a whole number from 0 to %llu, got '%.100s'",
			 (unsigned long long)UINT64_MAX, v);
		refuse_to_start(msg);
	}

	const char *names[] = { kb_shim.program, kb_shim.argv0, NULL };
	bool tree = false;
	for (size_t i = 0; i < kb_shim.recipe.nrules; i++)
		tree |= kb_rule_counts_tree(&kb_shim.recipe.rules[i]);
	kb_shim.process_counters = counters_alloc(kb_shim.recipe.nrules, false);
	kb_shim.tree_counters = tree ? counters_alloc(kb_shim.recipe.nrules, true) : NULL;
	if (kb_shim.process_counters == NULL || (tree && kb_shim.tree_counters == NULL))
		refuse_to_start("cannot allocate rule counters");
	if (kb_plan_build(&kb_shim.plan, &kb_shim.recipe, kb_shim.seed, names,
			  kb_shim.process_counters, kb_shim.tree_counters, &d) < 0) {
		kb_diag_format(&d, msg, sizeof msg);
		refuse_to_start(msg);
	}
	flag_roles(&kb_shim.plan);
	if (kb_fdtable_init() < 0)
		refuse_to_start("cannot reserve the descriptor table");
	kb_protected_to_table(); /* the log's, opened before the table */
	/* marks are shared with forks: a node a worker saw leave is gone for
	 * the whole server (marks.h) */
	if (uses_marks(&kb_shim.recipe)) {
		kb_shim.plan.marks = mmap(NULL, sizeof(struct kb_marks), PROT_READ | PROT_WRITE,
					  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (kb_shim.plan.marks == MAP_FAILED)
			refuse_to_start("cannot allocate the table of marked peers");
	}
	if (kb_plan_wants(&kb_shim.plan, KB_CALL_CONNECT, KB_ROLE_OUTBOUND))
		kb_sinks_open();
	kb_conn_init();
	kb_queue_init(&kb_shim.recipe); /* shared with forks, so before any */
	pthread_atfork(NULL, NULL, atfork_child);

	kb_log_start(false);
	__atomic_store_n(&kb_mode, kb_shim.plan.active ? KB_MODE_ARMED : KB_MODE_OFF, __ATOMIC_RELEASE);
	if (kb_shim.plan.active)
		kb_fd_arm_fast_paths();
	kb_guard_leave();
}

int kb_init_ensure(void)
{
	int m = kb_mode_get();

	if (m != KB_MODE_UNINIT)
		return m;
	/* start-up itself called a hook: it must pass through, not wait for
	 * the once-control this thread already holds */
	if (kb_guarded())
		return KB_MODE_UNINIT;
	int saved = errno;
	pthread_once(&init_once, init);
	errno = saved;
	return kb_mode_get();
}

__attribute__((constructor)) static void kb_constructor(void)
{
	kb_init_ensure();
}

KB_API const char *kbfault_version(void)
{
	return KB_VERSION;
}
