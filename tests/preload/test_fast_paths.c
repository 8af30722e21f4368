/* The no-recipe path of every exported hook stays a few instructions
 * with no stack frame: read from the built library's disassembly
 * (objdump), so a refactor that slows every host fails here, in CI, and
 * not only in `make bench`. From each hook's entry the path with the mode
 * off (kb_mode == 0: `test` sets ZF, so `je` is taken and `jne` is not)
 * must reach the tail call to the real function (`jmp *...`) within its
 * budget, with no push, call or stack adjustment on the way. x86_64. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define INSNS_MAX 20000

struct insn {
	unsigned long addr;
	char op[16], args[96];
};

static struct insn *insns;
static size_t ninsns;

static void disassemble(void)
{
	char cmd[1200], line[512];
	snprintf(cmd, sizeof cmd, "objdump -d --no-show-raw-insn '%s' 2>/dev/null", kbt_build("libkbfault.so"));
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	insns = calloc(INSNS_MAX, sizeof *insns);
	while (fgets(line, sizeof line, p) && ninsns < INSNS_MAX) {
		struct insn *i = &insns[ninsns];
		char *tab = strchr(line, '\t');
		if (tab == NULL || sscanf(line, " %lx:", &i->addr) != 1)
			continue;
		if (sscanf(tab + 1, "%15s %95[^\n]", i->op, i->args) < 1)
			continue;
		ninsns++;
	}
	pclose(p);
	cr_assert_gt(ninsns, 100, "objdump read the library (binutils installed?)");
}

static long index_of(unsigned long addr)
{
	for (size_t k = 0; k < ninsns; k++)
		if (insns[k].addr == addr)
			return (long)k;
	return -1;
}

static unsigned long symbol(const char *name)
{
	char cmd[1200], want[80], line[512];
	unsigned long addr = 0;
	snprintf(cmd, sizeof cmd, "objdump -d --no-show-raw-insn '%s' 2>/dev/null", kbt_build("libkbfault.so"));
	snprintf(want, sizeof want, " <%s>:", name);
	FILE *p = popen(cmd, "r");
	while (fgets(line, sizeof line, p))
		if (strstr(line, want) && sscanf(line, "%lx", &addr) == 1)
			break;
	pclose(p);
	return addr;
}

/* Walks hook's mode-off path; how many instructions to its tail call, or
 * -1 (what stopped it in why). */
static int mode_off_path(const char *hook, char *why, size_t len)
{
	unsigned long at = symbol(hook);
	long k = at ? index_of(at) : -1;
	if (k < 0) {
		snprintf(why, len, "%s not found", hook);
		return -1;
	}
	for (int n = 1; n <= 16 && k >= 0 && (size_t)k < ninsns; n++) {
		const struct insn *i = &insns[k];
		if (strncmp(i->op, "jmp", 3) == 0 && i->args[0] == '*')
			return n; /* the tail call to the real function */
		if (strncmp(i->op, "push", 4) == 0 || strncmp(i->op, "call", 4) == 0 || strcmp(i->op, "enter") == 0 ||
		    (strncmp(i->op, "sub", 3) == 0 && strstr(i->args, "%rsp"))) {
			snprintf(why, len, "%s: %s %s at +%lu before the tail call: a stack frame", hook, i->op, i->args,
				 i->addr - at);
			return -1;
		}
		if (strcmp(i->op, "je") == 0 || strcmp(i->op, "jmp") == 0) {
			k = index_of(strtoul(i->args, NULL, 16));
			continue;
		}
		k++; /* jne not taken, or anything else */
	}
	snprintf(why, len, "%s: no tail call within 16 instructions", hook);
	return -1;
}

Test(fast_paths, every_hook_passes_through_in_a_few_instructions_without_a_frame)
{
#if !defined(__x86_64__)
	cr_skip_test("the disassembly read here is x86_64's");
#endif
	if (kbt_sanitizer_is("asan") || kbt_sanitizer_is("tsan"))
		cr_skip_test("an instrumented build has other fast paths");
	disassemble();
	/* the load of the mode, its test, the branch, the tail call; syscall
	 * also moves its variadic argument and clears eax */
	const struct {
		const char *hook;
		int most;
	} hooks[] = {
		{ "listen", 4 },      { "accept", 4 },	    { "accept4", 4 },	  { "connect", 4 },	 { "close", 4 },
		{ "shutdown", 4 },    { "dup2", 4 },	    { "dup3", 4 },	  { "closefrom", 4 },	 { "fclose", 4 },
		{ "fork", 4 },	      { "sigaction", 4 },   { "signal", 4 },	  { "bsd_signal", 4 },	 { "sysv_signal", 4 },
		{ "sigset", 4 },      { "sigwait", 4 },	    { "sigwaitinfo", 4 }, { "sigtimedwait", 4 }, { "syscall", 7 },
	};
	for (size_t h = 0; h < sizeof hooks / sizeof hooks[0]; h++) {
		char why[256] = "";
		int n = mode_off_path(hooks[h].hook, why, sizeof why);
		cr_expect(n > 0, "%s", why);
		cr_expect_leq(n, hooks[h].most, "%s: %d instructions with no recipe, at most %d", hooks[h].hook, n,
			      hooks[h].most);
	}
	free(insns);
}
