/*
 * kbt-tty - runs a program as a background job on a terminal of its own,
 * with `stty tostop`, as a shell would run `prog &`, for the preload
 * tests. A background job that writes to such a terminal is stopped with
 * SIGTTOU - unless it ignores or blocks the signal, as a program (or a
 * library inside it) that must not be stopped does.
 *
 *   kbt-tty PROG ARGS...   prints "exited N", "killed SIG" or "stopped SIG"
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int report[2];

	if (argc < 2 || pipe(report) != 0)
		return 2;
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
		return 2;
	const char *slave_name = ptsname(master);
	pid_t shell = fork();
	if (shell == 0) {
		/* the "shell": a session of its own, the terminal its own */
		close(report[0]);
		setsid();
		int tty = open(slave_name, O_RDWR);
		if (tty < 0 || ioctl(tty, TIOCSCTTY, 0) != 0)
			_exit(2);
		struct termios t;
		tcgetattr(tty, &t);
		t.c_lflag |= TOSTOP;
		tcsetattr(tty, TCSANOW, &t);
		signal(SIGTTOU, SIG_IGN);
		pid_t job = fork();
		if (job == 0) {
			setpgid(0, 0); /* a process group that is not the terminal's */
			signal(SIGTTOU, SIG_DFL);
			dup2(tty, 0);
			dup2(tty, 1);
			dup2(tty, 2);
			execv(argv[1], argv + 1);
			_exit(127);
		}
		setpgid(job, job);
		char verdict[64] = "still running after 10 s\n";
		for (int i = 0; i < 1000; i++) {
			int st;
			pid_t p = waitpid(job, &st, WUNTRACED | WNOHANG);
			if (p == job) {
				if (WIFSTOPPED(st))
					snprintf(verdict, sizeof verdict, "stopped %d\n", WSTOPSIG(st));
				else if (WIFEXITED(st))
					snprintf(verdict, sizeof verdict, "exited %d\n", WEXITSTATUS(st));
				else
					snprintf(verdict, sizeof verdict, "killed %d\n", WTERMSIG(st));
				break;
			}
			struct timespec ms10 = { 0, 10 * 1000 * 1000 };
			nanosleep(&ms10, NULL);
		}
		kill(job, SIGKILL);
		waitpid(job, NULL, 0);
		ssize_t w = write(report[1], verdict, strlen(verdict));
		(void)w;
		_exit(0);
	}
	close(report[1]);
	/* keep the terminal drained, so nothing blocks on a full one */
	char buf[4096], verdict[64];
	size_t got = 0;
	fcntl(master, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 1500; i++) {
		while (read(master, buf, sizeof buf) > 0)
			;
		struct timespec ms10 = { 0, 10 * 1000 * 1000 };
		nanosleep(&ms10, NULL);
		fcntl(report[0], F_SETFL, O_NONBLOCK);
		ssize_t n = read(report[0], verdict + got, sizeof verdict - 1 - got);
		if (n > 0)
			got += (size_t)n;
		if (n == 0 || (got && verdict[got - 1] == '\n'))
			break;
	}
	verdict[got] = '\0';
	waitpid(shell, NULL, 0);
	fputs(got ? verdict : "no verdict\n", stdout);
	return 0;
}
