/*
 * gate.h - `kbfault gate`: does a service survive a recipe? One gate
 * starts the service under the shim, waits until it listens, runs an
 * optional load beside it and a probe against it, stops everything it
 * started, and judges: pass only if the probe succeeded, at least
 * min_injections faults were injected that changed a call, every
 * expectation of the evidence measured outside the server (evidence.h)
 * was met, and the service is still running (unless it may exit). A gate
 * never passes vacuously.
 */
#ifndef KBFAULT_GATE_H
#define KBFAULT_GATE_H

#include <stdbool.h>
#include <limits.h>
#include <stddef.h>

#include "evidence.h"
#include "kbfault/recipe.h"
#include "logsum.h"

struct kb_gate {
	char name[128];
	char recipe[4096];      /* as given: a path or a bundled name */
	struct kb_overrides ov; /* --set / set */
	char seed[32];          /* "" for the recipe's own */
	char server[4096], load[4096], probe[4096]; /* shell commands; load may be "" */
	char ready_host[256];
	int ready_port;         /* KB_GATE_PORT_AUTO: a free one, the gate's $KBGATE_PORT */
	unsigned min_injections;
	struct kb_expect expects[KB_EXPECTS_MAX]; /* expect: the symptom, measured outside */
	unsigned nexpects;
	unsigned timeout_s;     /* for the probe, and for readiness */
	bool server_may_exit;
	char log[4096];         /* where the injection log goes; "" for a temporary one */
	char out[2048];         /* --out DIR: outputs go to DIR/NAME; "" for a temporary directory */
	char where[4200];       /* "suite.kbg:12" for a gate from a suite file, else "" */
};

/* `ready tcp:HOST:$KBGATE_PORT`: the gate picks a free port on HOST and
 * hands it to the server, the load and the probe as $KBGATE_PORT, so a
 * suite runs beside anything else on a shared machine. Every command also
 * gets $KBGATE_DIR, the gate's own directory, for scratch files. */
#define KB_GATE_PORT_AUTO (-1)

/* What a gate's name may hold: it names a directory and a JUnit test case. */
#define KB_GATE_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

enum kb_gate_verdict { KB_GATE_PASS, KB_GATE_FAIL, KB_GATE_ERROR };

struct kb_gate_result {
	enum kb_gate_verdict verdict;
	char reason[2560];      /* why it failed, or why it could not run */
	int probe_status;       /* exit status, 128+signal, -1 timed out, -2 not run, -3 stopped by an interruption */
	bool server_alive;
	int port;               /* the port it waited on (a chosen one, for KB_GATE_PORT_AUTO) */
	double seconds;
	struct kb_logsum sum;   /* the log, summed up */
	struct kb_evidence ev;  /* what was measured outside the server */
	char log[PATH_MAX];
	char dir[PATH_MAX];        /* the gate's directory: kbfault.log, server.out, load.out, probe.out */
	char probe_out[8192];   /* the tail of the probe's output */
};

/* The files a gate writes in its directory, each one only if it ran
 * what makes it (load.out: a load command). */
#define KB_GATE_OUTPUTS 4
extern const char *const kb_gate_outputs[KB_GATE_OUTPUTS];

void kb_gate_defaults(struct kb_gate *g);

/* Sets one gate field from a flag name or a suite key ("recipe", "set",
 * "ready", "min-injections", ...). Returns 0, or -1 with a message. */
int kb_gate_set(struct kb_gate *g, const char *key, const char *value, char *err, size_t len);

/* Checks a gate is complete and its recipe loads. -1 with a message. */
int kb_gate_check(const struct kb_gate *g, char *err, size_t len);

/* Catches SIGINT, SIGTERM and SIGHUP: a running gate then stops what it
 * started and returns an error; kb_gate_interrupted() says which signal. */
void kb_gate_catch_signals(void);
int kb_gate_interrupted(void);

/* Runs one gate. progress: print a live line on stderr (a terminal). */
void kb_gate_run(const struct kb_gate *g, bool progress, struct kb_gate_result *res);

/* Reads a suite file: one `gate NAME` stanza per gate. Returns the number
 * of gates (allocated in *out), or -1 with FILE:LINE:COL in err. */
int kb_gate_suite(const char *path, struct kb_gate **out, char *err, size_t len);

/* Writes the results as JUnit XML. */
int kb_gate_junit(const char *path, const struct kb_gate *gates, const struct kb_gate_result *res,
		  size_t n, char *err, size_t len);

#endif
