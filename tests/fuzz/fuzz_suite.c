/*
 * fuzz_suite.c - libFuzzer target for the gate suite reader (make fuzz).
 *
 * Any bytes as a suite file: kb_gate_suite must return gates or refuse
 * with a message that names the file - never crash, hang or read out of
 * bounds. The bytes are handed over as a memfd, a regular file that
 * costs no disk.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct kb_gate *gates = NULL;
	char err[4096];

	if (fd < 0) {
		fd = memfd_create("suite.kbg", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	int n = kb_gate_suite(path, &gates, err, sizeof err);
	if (n < 0) {
		if (strncmp(err, path, strlen(path)) != 0 && strstr(err, "out of memory") == NULL)
			abort(); /* every refusal names the file */
	} else {
		for (int i = 0; i < n; i++)
			if (gates[i].name[0] == '\0' || gates[i].server[0] == '\0' || gates[i].ready_port == 0)
				abort(); /* an accepted gate is complete */
		free(gates);
	}
	return 0;
}
