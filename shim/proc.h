/*
 * proc.h - is another process still there?
 *
 * State kept in memory shared by a process tree (a paused listener, a
 * session) can outlive the process that holds it: a worker that crashes,
 * or exits at its connection limit. Whoever finds such state asks here
 * whether its holder is alive, and takes it over if not.
 */
#ifndef KBFAULT_PROC_H
#define KBFAULT_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* Is pid a process (or a thread id: a thread) that can still run? A
 * zombie (exited, not yet reaped by its parent) is not, though kill(pid,
 * 0) would say it is: the state is read from /proc/PID/stat (a zombie
 * leader whose other threads run is alive), falling back to kill(pid, 0)
 * only where /proc cannot answer. System calls only: no hook, no cancellation point, no
 * allocation, errno left alone - safe under the shim's own locks. */
bool kb_proc_alive(pid_t pid);

#endif
