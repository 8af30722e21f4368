/*
 * kbfault.h - the public API of libkbfault.so.
 *
 * The library is meant to be preloaded into programs that know nothing of
 * it, so its API is tiny: a program (or a test) that wants to know
 * whether kbfault is loaded can look this symbol up with dlsym().
 */
#ifndef KBFAULT_KBFAULT_H
#define KBFAULT_KBFAULT_H

/* The version of the loaded shim, "MAJOR.MINOR.PATCH". */
const char *kbfault_version(void);

#endif
