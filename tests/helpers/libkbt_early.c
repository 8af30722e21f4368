/*
 * libkbt_early.so - a library whose constructor calls listen() before
 * kbfault's constructor has run (preloaded after libkbfault.so, so its
 * constructor runs first). It reports what the kernel then uses as the
 * backlog, so a test can see whether the hook worked that early.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((constructor)) static void early(void)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct tcp_info ti;
	socklen_t l = sizeof ti;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	bind(fd, (struct sockaddr *)&in, sizeof in);
	listen(fd, 100);
	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l);
	printf("early-backlog %u\n", ti.tcpi_sacked);
	fflush(stdout);
	close(fd);
}
