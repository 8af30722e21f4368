/*
 * errnos.h - which errors each intercepted call can really return.
 *
 * Failure policy as data: a recipe may only ask a call to fail with an
 * errno that the real call can produce on Linux (its man page plus the
 * network errors Linux passes through), so a fault never teaches an
 * application to handle something that cannot happen.
 */
#ifndef KBFAULT_ERRNOS_H
#define KBFAULT_ERRNOS_H

#include <stdbool.h>
#include <stddef.h>

#include "kbfault/model.h"

/* The errno for a symbolic name ("ECONNREFUSED"), or -1. */
int kb_errno_from_name(const char *name);

/* The known name closest to a misspelt one ("ECONNABORTD"), or NULL. */
const char *kb_errno_closest(const char *name);

/* "ECONNREFUSED" for ECONNREFUSED, or NULL for an errno outside the
 * table. Constant strings, safe from any context. */
const char *kb_errno_name(int err);

bool kb_errno_valid_for(enum kb_call call, int err);

/* The names valid for `call`, comma-separated, for error messages. */
void kb_errnos_list(enum kb_call call, char *buf, size_t len);

/* accept() errors the kernel reports before it takes a connection off the
 * queue (EAGAIN, EMFILE, ...). Injecting one of those must leave the
 * connection queued; the others (ECONNABORTED, EPROTO, ...) mean the
 * connection was taken and lost. */
bool kb_accept_errno_keeps_connection(int err);

#endif
