/*
 * proc.h - is another process of the tree still there?
 *
 * State the shim shares across a process tree (connections held by
 * several processes, a listener paused by one) must not die with the
 * process that holds it: whoever looks next asks whether that process is
 * still alive, and takes over when it is not.
 */
#ifndef KBFAULT_PROC_H
#define KBFAULT_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* Is pid a running process? A zombie (exited, not yet reaped by its
 * parent) is not: it holds no descriptor any more. A few system calls;
 * errno is left alone. */
bool kb_proc_alive(pid_t pid);

#endif
