/* The shim inside hosts that do unusual things: exec and spawn, daemonise,
 * fork from one thread while another is inside a hook, close from a
 * signal handler, get killed mid-run, append from many processes at once,
 * or find a symlink where the log should be. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* env for a recipe given as text, logging to kbt_logpath() */
Test(hardening, exec_and_spawn_children_start_afresh)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "spawn", NULL };
	int rc = kbt_run(argv, kbt_under("rule five\n  on listen\n  action backlog 5\n"), true, 20000, &out, &err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "posix_spawn 0") && strstr(out, "vfork 0") && strstr(out, "fork-exec 0"), "%s", out);
	char *at = out;
	int capped = 0;
	while ((at = strstr(at, "backlog 5\n")) != NULL) {
		capped++;
		at++;
	}
	cr_assert_eq(capped, 3, "each child has the shim, armed: %s", out);

	struct kbt_log l = kbt_log_read(kbt_logpath());
	/* parent, three exec'd children, and the fork before one exec (a
	 * sanitizer may turn vfork into fork: then two) */
	cr_assert_eq(kbt_log_count(&l, "event", "start", "program", "kbt-probe", "fork", "false", NULL), 4);
	cr_assert_geq(kbt_log_count(&l, "event", "start", "program", "kbt-probe", "fork", "true", NULL), 1);
	/* every exec'd child counts from one: three first hits, three pids */
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "hit", "1", NULL), 3);
	const char *pids[3];
	size_t n = 0;
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(kb_json_str(&l.line[i], "event"), "inject") == 0)
			pids[n++] = kb_json_str(&l.line[i], "pid");
	cr_assert_eq(n, 3);
	cr_assert(strcmp(pids[0], pids[1]) && strcmp(pids[1], pids[2]) && strcmp(pids[0], pids[2]),
		  "under their own pids");
	kbt_log_free(&l);
}

Test(hardening, a_daemon_keeps_its_log)
{
	char *out, *err, file[700];
	snprintf(file, sizeof file, "%s/daemon.port", kbt_tmpdir());
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "daemon", file, NULL };
	int rc = kbt_run(argv, kbt_under("rule keep\n  on close\n  role accepted\n  action leak\n"), true, 5000, &out, &err);
	cr_assert_eq(rc, 0, "the parent returns at once: %s", err);
	int port = 0, pid = 0;
	for (int i = 0; i < 100 && port == 0; i++) {
		FILE *f = fopen(file, "r");
		if (f) {
			if (fscanf(f, "%d %d", &port, &pid) != 2)
				port = 0;
			fclose(f);
		}
		if (port == 0)
			usleep(50000);
	}
	cr_assert_gt(port, 0, "the daemon wrote its port");
	free(kbt_client(port, 1, 1, 500));
	char want[32];
	snprintf(want, sizeof want, "%d", pid);
	for (int i = 0; i < 40 && kill(pid, 0) == 0; i++)
		usleep(50000);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "action", "leak", "pid", want, NULL), 1,
		     "after setsid, chdir and closing every descriptor, the daemon's injection is logged");
	kbt_log_free(&l);
}

Test(hardening, fork_while_another_thread_is_inside_the_shim)
{
	struct kbt_proc p;
	char *out, *err;
	kbt_spawn(&p, (const char *[]){ kbt_build("helpers/kbt-probe"), "forkstall", NULL },
		  kbt_under("rule slow\n  on accept\n  delay 1s\n"), true);
	cr_assert_str_eq(kbt_line(&p, 5000), "main");
	int port = kbt_port_of(kbt_line(&p, 5000));
	free(kbt_client(port, 1, 1, 3000));
	cr_assert_eq(kbt_wait(&p, 10000, &out, &err), 0, "no deadlock: %s", err);
	cr_assert(strstr(out, "child 0"), "the child used the shim and exited: %s", out);
}

Test(hardening, close_from_a_signal_handler_inside_close)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "sigclose", NULL };
	int rc = kbt_run(argv, kbt_under("rule slow\n  on close\n  role listening\n  delay 300ms\n"), true, 10000, &out, &err);
	cr_assert_eq(rc, 0, "no deadlock: %s", err);
	cr_assert(strstr(out, "close 0, in handler closed"), "%s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "rule", "slow", NULL), 2, "both closes were delayed");
	kbt_log_free(&l);
}

/* Lines that are not whole JSON objects: the kernel may cut the one line
 * being written when SIGKILL arrives (at a page boundary of the file), and
 * nothing else. */
static size_t cut_lines(const char *path, size_t *whole)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, cut = 0;
	ssize_t n;

	cr_assert_not_null(f);
	*whole = 0;
	while ((n = getline(&line, &cap, f)) >= 0) {
		struct kb_json_obj o;
		unsigned col;
		const char *why;
		if (n > 0 && line[n - 1] == '\n' && kb_json_flat_parse(line, &o, &col, &why) == 0 &&
		    strcmp(kb_json_str(&o, "event") ?: "", "inject") == 0)
			(*whole)++;
		else if (n > 0 && (line[n - 1] != '\n' || kb_json_flat_parse(line, &o, &col, &why) != 0))
			cut++;
	}
	free(line);
	fclose(f);
	return cut;
}

Test(hardening, sigkill_mid_run_cuts_at_most_the_line_being_written)
{
	struct kbt_proc srv;
	char env_recipe[700], env_log[700];
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s",
		 kbt_write("r.kbf", "rule drop\n  on accept\n  every 3\n  action reset\n"
				    "rule rst\n  on close\n  role accepted\n  action reset\n"));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	kbt_spawn(&srv, (const char *[]){ kbt_build("kbdemo-server"), "--threads", "8", NULL },
		  (const char *[]){ env_recipe, env_log, NULL }, true);
	int port = kbt_port_of(kbt_line(&srv, 5000));
	char sport[16];
	snprintf(sport, sizeof sport, "%d", port);
	struct kbt_proc cli;
	kbt_spawn(&cli, (const char *[]){ kbt_build("kbdemo-client"), "--port", sport, "--count", "20000", "--concurrency",
					  "16", "--timeout", "1000", NULL },
		  NULL, false);
	usleep(400000); /* mid-burst */
	kill(srv.pid, SIGKILL);
	kbt_wait(&srv, 5000, NULL, NULL);
	kbt_wait(&cli, 60000, NULL, NULL);
	size_t whole;
	size_t cut = cut_lines(kbt_logpath(), &whole);
	cr_assert_gt(whole, 100, "it was killed mid-run, not before");
	cr_assert_leq(cut, 1, "at most the line being written when it was killed is cut (%zu)", cut);
}

Test(hardening, many_processes_append_without_tearing)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "storm", "8", "300", NULL };
	int rc = kbt_run(argv, kbt_under("rule cap\n  on listen\n  action backlog 2\n"), true, 60000, &out, &err);
	cr_assert_eq(rc, 0, "%s %s", out, err);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "rule", "cap", NULL), 8 * 300, "every line, whole");
	cr_assert_eq(kbt_log_count(&l, "event", "start", "fork", "true", NULL), 8);
	kbt_log_free(&l);
}

Test(hardening, a_symlink_where_the_log_goes_is_not_followed)
{
	char *out, *err, link[700], target[700], env_recipe[700], env_log[800];
	snprintf(target, sizeof target, "%s/victim", kbt_tmpdir());
	snprintf(link, sizeof link, "%s/planted", kbt_tmpdir());
	cr_assert_eq(symlink(target, link), 0);
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", "rule cap\n  on listen\n  action backlog 3\n"));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", link);
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "listen", "50", NULL };
	int rc = kbt_run(argv, (const char *[]){ env_recipe, env_log, NULL }, true, 5000, &out, &err);
	cr_assert_eq(rc, 0);
	cr_assert(strstr(out, "backlog 3"), "the fault still happens: %s", out);
	cr_assert(strstr(err, "cannot open the injection log") && strstr(err, "symbolic links"), "%s", err);
	cr_assert_neq(access(target, F_OK), 0, "nothing was written through the link");
}

Test(hardening, a_new_log_is_private)
{
	char *out, *err, env_recipe[700], env_log[700];
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", "rule cap\n  on listen\n  action backlog 3\n"));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "listen", "50", NULL };
	mode_t old = umask(0);
	int rc = kbt_run(argv, (const char *[]){ env_recipe, env_log, NULL }, true, 5000, &out, &err);
	umask(old);
	cr_assert_eq(rc, 0);
	struct stat st;
	cr_assert_eq(stat(kbt_logpath(), &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o, even with umask 0", st.st_mode & 0777);
}

Test(hardening, setuid_programs_ignore_the_environment, .timeout = 30)
{
	/* The dynamic loader preloads into a setuid program only a setuid
	 * library from a trusted directory, named without a slash. In a
	 * private mount namespace a setuid copy of the shim is bound over a
	 * library the probe never loads; the probe, setuid root, runs as
	 * nobody with KBFAULT_* set: the shim is there, and stays off. */
	if (getuid() != 0)
		cr_skip_test("needs root for a mount namespace and a setuid file");
	const char *victim = "/usr/lib/x86_64-linux-gnu/libcriterion.so.3";
	if (access(victim, F_OK) != 0 || access("/usr/bin/unshare", X_OK) != 0 || access("/usr/bin/setpriv", X_OK) != 0)
		cr_skip_test("needs %s, unshare and setpriv", victim);
	char cmd[4096];
	const char *dir = kbt_tmpdir();
	const char *recipe = kbt_write("cap.kbf", "rule five\n  on listen\n  action backlog 5\n");
	snprintf(cmd, sizeof cmd,
		 "set -e; chmod 755 %s; chmod 644 %s; "
		 "cp %s %s/probe && chmod 4755 %s/probe; "
		 "cp %s %s/libkb.so && chmod 4755 %s/libkb.so; "
		 "unshare -m --propagation private sh -c '"
		 "mount --bind %s/libkb.so %s && "
		 "setpriv --reuid=65534 --regid=65534 --clear-groups "
		 "env LD_PRELOAD=%s KBFAULT_RECIPE=%s KBFAULT_LOG=/dev/null %s/probe listen 100' 2>&1",
		 dir, recipe, kbt_build("helpers/kbt-probe"), dir, dir, kbt_build("libkbfault.so"), dir, dir, dir,
		 victim, strrchr(victim, '/') + 1, recipe, dir);
	char *out;
	int status = kbt_run((const char *[]){ "/bin/sh", "-c", cmd, NULL }, NULL, false, 20000, &out, NULL);
	cr_assert_eq(status, 0, "%s", out);
	cr_assert(strstr(out, "kbfault loaded"), "the shim is in the setuid process: %s", out);
	cr_assert(strstr(out, "backlog 100"), "and it did not act on KBFAULT_*: %s", out);
}
