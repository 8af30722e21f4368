/*
 * Hosts that make the intercepted calls in ways the shim must survive:
 * loading the library with dlopen() (or Python's ctypes), handing libc
 * pointers it answers with EFAULT, running hooks in a vfork child, calling
 * connect() and listen() on UDP sockets, and closing socket streams with
 * fclose() at the descriptor limit. The helper is tests/helpers/kbt-calls.c.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* env for a recipe given as text, logging to kbt_logpath() */
static const char *helper(void)
{
	return kbt_build("helpers/kbt-calls");
}

/* Debian's python3 (CPython 3.11: subprocess uses vfork), installed when
 * missing, as the end-to-end tests install their servers. */
static const char *python(void)
{
	char cmd[4200];
	const char *src = getenv("KB_SRC");
	snprintf(cmd, sizeof cmd, "%s/scripts/ensure-packages python3", src ? src : ".");
	cr_assert_eq(system(cmd), 0, "cannot install python3");
	return "/usr/bin/python3";
}

/* ---- 8: dlopen ---------------------------------------------------------- */

static void dlopen_case(const char *const *env, const char *mode)
{
	char lib[4200], *out, *err;
	const char *src = getenv("KB_BUILD");
	snprintf(lib, sizeof lib, "%s", kbt_build("libkbfault.so"));
	if (lib[0] != '/') {
		char cwd[2048];
		cr_assert_not_null(getcwd(cwd, sizeof cwd));
		snprintf(lib, sizeof lib, "%s/%s/libkbfault.so", cwd, src ? src : "build");
	}
	const char *argv[] = { helper(), "dlopen", lib, mode, NULL };
	int rc = kbt_run(argv, env, false, 10000, &out, &err);
	cr_assert_eq(rc, 0, "dlopen()ed, the library never stops the host (rc %d): %s%s", rc, out, err);
	cr_assert_null(strstr(out, "FAILED"), "%s", out);
	cr_assert(strstr(out, "version "), "%s", out);
}

Test(calls_hostile, dlopen_without_a_recipe_is_inert)
{
	dlopen_case(NULL, "local");
	dlopen_case(NULL, "global");
}

Test(calls_hostile, dlopen_with_a_recipe_stays_off_and_says_so)
{
	char *out, *err;
	const char **env = kbt_under("rule keep\n  on close\n  action leak\n");
	dlopen_case(env, "local");
	dlopen_case(env, "global");
	/* off: nothing logged, not even a start line; a warning says why */
	cr_assert(access(kbt_logpath(), F_OK) != 0, "no log is opened");
	char lib[4200];
	snprintf(lib, sizeof lib, "%s", kbt_build("libkbfault.so"));
	const char *argv[] = { helper(), "dlopen", lib, NULL };
	cr_assert_eq(kbt_run(argv, env, false, 10000, &out, &err), 0, "%s", err);
	cr_assert(strstr(err, "was not preloaded"), "one warning on stderr: %s", err);
	/* a recipe that does not even exist changes nothing either */
	const char *bad[] = { "KBFAULT_RECIPE=/nonexistent.kbf", "KBFAULT_NOT_A_VARIABLE=1", NULL };
	cr_assert_eq(kbt_run(argv, bad, false, 10000, &out, &err), 0, "%s", err);
}

Test(calls_hostile, python_ctypes_loads_the_library, .timeout = 300)
{
	char code[5000], *out, *err;
	/* an uninstrumented python cannot dlopen() a library built with
	 * ThreadSanitizer (its runtime needs static TLS set up at start) */
	kbt_skip_under("tsan", "libtsan cannot be loaded by dlopen() into python");
	const char *py = python();
	snprintf(code, sizeof code,
		 "import ctypes, os\n"
		 "lib = ctypes.CDLL('%s', use_errno=True)\n"
		 "lib.kbfault_version.restype = ctypes.c_char_p\n"
		 "rc = lib.close(-1)\n"
		 "print('close', rc, ctypes.get_errno() == 9)\n"
		 "print('version', lib.kbfault_version().decode())\n",
		 kbt_build("libkbfault.so"));
	const char *argv[] = { py, "-c", code, NULL };
	cr_assert_eq(kbt_run(argv, NULL, false, 20000, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "close -1 True\n"), "%s", out);
	const char **env = kbt_under("rule keep\n  on close\n  action leak\n");
	cr_assert_eq(kbt_run(argv, env, false, 20000, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "close -1 True\n") && strstr(out, "version "), "%s", out);
}

/* ---- 9: bad pointers --------------------------------------------------- */

/* memcheck reports every bad pointer handed to the kernel, which is what
 * these tests do on purpose, with or without the shim */
static void skip_under_valgrind(void)
{
	kbt_skip_under("valgrind", "memcheck reports the bad pointers the test passes on purpose");
}

/* The helper's output under the shim is exactly what it is without it. */
static void same_as_libc(const char *what, const char *recipe)
{
	char *native, *out, *err;
	const char *argv[] = { helper(), what, NULL };
	cr_assert_eq(kbt_run(argv, NULL, false, 20000, &native, &err), 0, "%s", err);
	int rc = kbt_run(argv, kbt_under(recipe), true, 20000, &out, &err);
	cr_assert_eq(rc, 0, "under\n%s\nthe host survives (rc %d): %s\n%s", recipe, rc, out, err);
	cr_assert_str_eq(out, native, "under\n%s\nevery call returns what libc returns", recipe);
	cr_assert(strstr(native, "rc=-1 errno=EFAULT"), "%s", native);
}

Test(calls_hostile, bad_connect_addresses_fail_as_in_libc)
{
	skip_under_valgrind();
	/* rules that decide before the call, with and without a peer
	 * filter, and tracking only (a close rule for outbound sockets) */
	same_as_libc("badconnect", "rule c\n  on connect\n  nth 1000\n  action fail ETIMEDOUT\n");
	same_as_libc("badconnect", "rule c\n  on connect\n  peer 10.0.0.0/8\n  action refuse\n");
	same_as_libc("badconnect", "rule c\n  on close\n  role outbound\n  nth 1000\n  action leak\n");
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", NULL), 0, "no rule fired");
	kbt_log_free(&l);
}

Test(calls_hostile, bad_connect_address_then_a_rule_fires)
{
	skip_under_valgrind();
	char *out, *err;
	const char *argv[] = { helper(), "badconnect", NULL };
	cr_assert_eq(kbt_run(argv, kbt_under("rule c\n  on connect\n  action fail ETIMEDOUT\n"), true, 20000, &out, &err),
		     0, "%s", err);
	cr_assert(strstr(out, "connect eight rc=-1 errno=EFAULT\n"), "%s", out);
	cr_assert(strstr(out, "connect good rc=-1 errno=ETIMEDOUT\n"), "the good one is failed: %s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "call", "connect", "hit", "1", NULL), 1,
		     "a call the kernel refuses to read is no hit");
	cr_assert_eq(kbt_log_count(&l, "event", "inject", NULL), 1);
	kbt_log_free(&l);
}

Test(calls_hostile, bad_accept_pointers_fail_as_in_libc)
{
	/* the sanitizers' own accept() interceptors, between the helper and
	 * libc, read *len before the call: there even the run without the
	 * shim crashes */
	const char *san = getenv("KB_SANITIZER");
	if (san && (strcmp(san, "asan") == 0 || strcmp(san, "tsan") == 0))
		cr_skip_test("%s's accept() interceptor dereferences the length itself", san);
	skip_under_valgrind();
	/* connections taken by the fast path and tracked */
	same_as_libc("badaccept", "rule keep\n  on close\n  role accepted\n  nth 1000\n  action leak\n");
	/* rules that decide once a connection is taken */
	same_as_libc("badaccept", "rule a\n  on accept\n  nth 1000\n  action fail ECONNABORTED\n");
	/* rules that decide before the real call (the slow path) */
	same_as_libc("badaccept", "rule a\n  on accept\n  nth 1000\n  action fail EMFILE\n");
	/* an emulated queue that hands out connections it took itself */
	same_as_libc("badaccept", "rule q\n  on listen\n  action queue 1 refuse\n");
}

/* ---- 14: vfork --------------------------------------------------------- */

Test(calls_hostile, a_vfork_child_leaves_the_parent_alone)
{
	char *out, *err;
	const char *argv[] = { helper(), "vfork", NULL };
	cr_assert_eq(kbt_run(argv, kbt_under("rule keep\n  on close\n  role accepted\n  action leak\n"), true, 20000, &out,
			     &err),
		     0, "%s", err);
	cr_assert(strstr(out, "child 0\n"), "%s", out);
	cr_assert(strstr(out, "close-conn parent rc=ok\n"), "the parent's own close is leaked as usual: %s", out);
	cr_assert(strstr(out, "peer1 ended no\n"), "%s", out);
	cr_assert(strstr(out, "close-conn second rc=ok\n") && strstr(out, "peer2 ended no\n"),
		  "the listener is still tracked, its next connection leaked: %s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	const char *pid = kb_json_str(&l.line[0], "pid");
	cr_assert_eq(kbt_log_count(&l, "event", "inject", NULL), 2, "only the parent's two closes");
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "pid", pid, "hit", "1", NULL), 1,
		     "nothing the child did counted");
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "pid", pid, "hit", "2", NULL), 1);
	kbt_log_free(&l);
}

Test(calls_hostile, python_subprocess_from_a_handler, .timeout = 300)
{
	char code[4000], env_recipe[4200], *out, *err;
	const char *py = python();
	const char *src = getenv("KB_SRC");
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s/recipes/q236565-connections-not-released.kbf",
		 src ? src : ".");
	snprintf(code, sizeof code,
		 "import socket, socketserver, subprocess, threading\n"
		 "class H(socketserver.BaseRequestHandler):\n"
		 "    def handle(self):\n"
		 "        subprocess.run(['/bin/true'], check=True)\n"
		 "        self.request.sendall(b'ok\\n')\n"
		 "srv = socketserver.TCPServer(('127.0.0.1', 0), H)\n"
		 "port = srv.server_address[1]\n"
		 "for i in range(3):\n"
		 "    c = socket.create_connection(('127.0.0.1', port))\n"
		 "    srv.handle_request()\n"
		 "    c.settimeout(0.5)\n"
		 "    data = c.recv(16)\n"
		 "    try:\n"
		 "        more = c.recv(16)\n"
		 "        print('round', i, data, 'eof' if more == b'' else 'data')\n"
		 "    except socket.timeout:\n"
		 "        print('round', i, data, 'open')\n"
		 "    c.close()\n"
		 "print('done')\n");
	const char *argv[] = { py, "-c", code, NULL };
	cr_assert_eq(kbt_run(argv, NULL, false, 30000, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "round 2 b'ok\\n' eof\n"), "without the shim: %s", out);
	const char *env[] = { env_recipe, NULL, NULL };
	char env_log[700];
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	env[1] = env_log;
	int rc = kbt_run(argv, env, true, 30000, &out, &err);
	cr_assert_eq(rc, 0, "the handler does not crash (rc %d): %s\n%s", rc, out, err);
	for (int i = 0; i < 3; i++) {
		char want[64];
		snprintf(want, sizeof want, "round %d b'ok\\n' open\n", i);
		cr_assert(strstr(out, want), "every connection is kept open, also after a child: %s", out);
	}
	struct kbt_log l = kbt_log_read(kbt_logpath());
	const char *pid = kb_json_str(&l.line[0], "pid");
	/* socketserver ends a connection with shutdown(SHUT_WR), then close() */
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "pid", pid, "call", "close", NULL), 3);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "pid", pid, "call", "shutdown", NULL), 3);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", NULL), 6, "nothing from the children");
	kbt_log_free(&l);
}

/* ---- 16: UDP ----------------------------------------------------------- */

static char *udp(const char *mode, const char *recipe)
{
	char *out, *err;
	const char *argv[] = { helper(), "udp", mode, NULL };
	int rc = kbt_run(argv, kbt_under(recipe), true, 20000, &out, &err);
	cr_assert_eq(rc, 0, "under\n%s\n(rc %d): %s\n%s", recipe, rc, out, err);
	cr_assert(strstr(out, "udp-connect rc rc=ok\n") || strcmp(mode, "listen") == 0, "UDP is untouched: %s", out);
	return out;
}

/* The one injection: on the TCP call, counted as its rule's first hit. */
static void only_tcp_injected(const char *call)
{
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", NULL), 1);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "call", call, "hit", "1", NULL), 1,
		     "the UDP call counted no hit");
	kbt_log_free(&l);
}

Test(calls_hostile, udp_connect_is_not_delayed)
{
	char *out = udp("connect", "rule slow\n  on connect\n  delay 1s\n");
	long ms = atol(strstr(out, "udp-connect ms ") + 15);
	cr_assert_lt(ms, 500, "%s", out);
	cr_assert(strstr(out, "tcp-connect rc rc=ok\n"), "%s", out);
	cr_assert_geq(atol(strstr(out, "tcp-connect ms ") + 15), 900, "the TCP one is delayed: %s", out);
	only_tcp_injected("connect");
}

Test(calls_hostile, udp_connect_is_not_failed)
{
	char *out = udp("connect", "rule t\n  on connect\n  action fail ETIMEDOUT\n");
	cr_assert(strstr(out, "tcp-connect rc rc=-1 errno=ETIMEDOUT\n"), "%s", out);
	only_tcp_injected("connect");
}

Test(calls_hostile, udp_connect_is_not_refused_or_redirected)
{
	char *out = udp("connect", "rule r\n  on connect\n  action refuse\n");
	cr_assert(strstr(out, "udp-connect peer-port 9\n"), "its destination is its own: %s", out);
	cr_assert(strstr(out, "tcp-connect rc rc=-1 errno=ECONNREFUSED\n"), "%s", out);
	only_tcp_injected("connect");
}

Test(calls_hostile, udp_connect_counts_no_hit)
{
	char *out = udp("connect", "rule first\n  on connect\n  nth 1\n  action fail ECONNREFUSED\n");
	cr_assert(strstr(out, "tcp-connect rc rc=-1 errno=ECONNREFUSED\n"), "the first TCP connect is hit 1: %s", out);
	only_tcp_injected("connect");
}

Test(calls_hostile, udp_connect_does_not_abort)
{
	udp("abort", "rule boom\n  on connect\n  action abort\n");
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", NULL), 0);
	kbt_log_free(&l);
}

Test(calls_hostile, udp_sockets_are_not_tracked)
{
	/* a close rule for outbound sockets: only the TCP one's close is
	 * seen, and swallowed */
	udp("connect", "rule keep\n  on close\n  role outbound\n  action leak\n");
	only_tcp_injected("close");
}

Test(calls_hostile, udp_listen_gets_the_kernels_answer)
{
	char *out = udp("listen", "rule busy\n  on listen\n  action fail EADDRINUSE\n");
	cr_assert(strstr(out, "udp-listen rc rc=-1 errno=EOPNOTSUPP\n"), "%s", out);
	cr_assert(strstr(out, "tcp-listen rc rc=-1 errno=EADDRINUSE\n"), "%s", out);
	only_tcp_injected("listen");
}

/* A stream socket that is not TCP (MPTCP; SCTP, where the kernel has it,
 * is told apart the same way): no listen rule applies to it, and neither
 * it nor its connections are tracked. */
static void mptcp_case(const char *recipe, const char *listen_rc)
{
	char *out, *err;
	const char *argv[] = { helper(), "mptcp", NULL };
	cr_assert_eq(kbt_run(argv, kbt_under(recipe), true, 20000, &out, &err), 0, "%s", err);
	if (strstr(out, "mptcp unsupported"))
		cr_skip_test("this kernel has no MPTCP: %s", out);
	cr_assert(strstr(out, listen_rc), "%s", out);
	cr_assert(strstr(out, "mptcp-close rc rc=ok\n") && strstr(out, "\npeer ended yes\n"),
		  "its connection is not kept open: %s", out);
	cr_assert(strstr(out, "mptcp-close client rc=ok\n") && strstr(out, "client's peer ended yes\n"),
		  "nor a client's: %s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", NULL), 0);
	kbt_log_free(&l);
}

Test(calls_hostile, mptcp_listen_is_not_failed)
{
	mptcp_case("rule busy\n  on listen\n  action fail EADDRINUSE\n", "mptcp-listen rc rc=ok\n");
}

Test(calls_hostile, mptcp_listeners_are_not_tracked)
{
	mptcp_case("rule keep\n  on close\n  role accepted\n  action leak\n", "mptcp-listen rc rc=ok\n");
}

Test(calls_hostile, mptcp_clients_are_not_tracked)
{
	mptcp_case("rule keep\n  on close\n  role outbound\n  action leak\n", "mptcp-connect rc rc=ok\n");
}

/* ---- 19: fclose at the descriptor limit -------------------------------- */

Test(calls_hostile, fclose_at_the_descriptor_limit_logs_what_was_done, .timeout = 60)
{
	struct kbt_proc srv;
	char cmd[4400], *out, *err;
	/* 16 descriptors: 0-2, the listener, the log (half the limit), and
	 * about ten for connections and the copies that keep them open */
	snprintf(cmd, sizeof cmd, "ulimit -n 16 && exec %s --close fclose --idle-exit 3", kbt_build("kbdemo-server"));
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	kbt_spawn(&srv, argv, kbt_under("rule keep\n  on close\n  role accepted\n  action leak\n"), true);
	char *line = kbt_line(&srv, 10000);
	cr_assert_not_null(line, "the server starts");
	int port = kbt_port_of(line);
	char *res = kbt_client(port, 12, 1, 300);
	cr_assert_eq(kbt_wait(&srv, 20000, &out, &err), 0, "%s", err);

	struct kbt_log l = kbt_log_read(kbt_logpath());
	size_t kept = 0, not_kept = 0;
	const char *fds[16];
	for (size_t i = 0; i < l.n; i++) {
		if (strcmp(kb_json_str(&l.line[i], "event"), "inject") != 0)
			continue;
		const char *effect = kb_json_str(&l.line[i], "effect");
		if (effect && strcmp(effect, "none") == 0) {
			not_kept++;
			cr_assert(kb_json_str(&l.line[i], "reason"), "a line that kept nothing says why");
			continue;
		}
		cr_assert_lt(kept, 16);
		fds[kept++] = kb_json_str(&l.line[i], "fd");
	}
	/* each kept copy takes one of the free descriptors for good, and a
	 * connection needs one while it is served: once none is left for a
	 * copy, the stream's socket is closed after all */
	cr_assert_gt(kept, 0, "%s", res);
	cr_assert_gt(not_kept, 0, "the limit was reached: %s", res);
	cr_assert_eq(kept + not_kept, 12, "one line per fclose: %s", res);
	cr_assert_eq(kbt_json_num(res, "no_eof"), (long)kept,
		     "exactly the connections logged as kept were kept open: %s", res);
	cr_assert_eq(kbt_json_num(res, "ok"), (long)not_kept, "%s", res);
	/* a line names the descriptor that stays open, each its own, not the
	 * stream's (which fclose() released, and the next connection got) */
	for (size_t i = 0; i < kept; i++)
		for (size_t j = i + 1; j < kept; j++)
			cr_assert_str_neq(fds[i], fds[j], "two kept connections logged as fd %s", fds[i]);
	kbt_log_free(&l);
}
