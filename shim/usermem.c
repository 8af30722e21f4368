/*
 * usermem.c - reading and writing the host's memory without trusting it;
 * see usermem.h.
 */
#include "usermem.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "real.h"

/* Set once process_vm_readv/writev turn out to be refused (a seccomp
 * filter, a kernel without them): from then on, the fallback. */
static int refused;

/* The fallback's test: not in the first page, which nothing maps, and not
 * beyond the top of user space (56 bits on x86_64 with five-level page
 * tables, less elsewhere), where the kernel's own addresses are. */
static bool plausible(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p;
	return a >= 4096 && a + n >= a && a + n <= ((uintptr_t)1 << 56);
}

/* 0, -EFAULT, or 1: refused, use the fallback. */
static int vm_copy(long nr, void *ours, const void *theirs, size_t n)
{
	if (!KB_HAVE_SYS || __atomic_load_n(&refused, __ATOMIC_RELAXED))
		return 1;
	struct iovec local = { ours, n }, remote = { (void *)theirs, n };
	long pid = kb_sys(SYS_getpid, 0, 0, 0, 0, 0, 0);
	long rc = kb_sys(nr, pid, (long)&local, 1, (long)&remote, 1, 0);
	if (rc == (long)n)
		return 0;
	/* a short copy: the range runs into memory that is not there */
	if (rc == -EFAULT || (rc >= 0 && rc < (long)n))
		return -EFAULT;
	__atomic_store_n(&refused, 1, __ATOMIC_RELAXED);
	return 1;
}

int kb_peek(void *dst, const void *src, size_t n)
{
	int rc = vm_copy(SYS_process_vm_readv, dst, src, n);
	if (rc <= 0)
		return rc;
	if (!plausible(src, n))
		return -EFAULT;
	memcpy(dst, src, n);
	return 0;
}

int kb_poke(void *dst, const void *src, size_t n)
{
	int rc = vm_copy(SYS_process_vm_writev, (void *)src, dst, n);
	if (rc <= 0)
		return rc;
	if (!plausible(dst, n))
		return -EFAULT;
	memcpy(dst, src, n);
	return 0;
}
