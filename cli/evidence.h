/*
 * evidence.h - what a gate measures outside the server, so that it can
 * ask for the symptom an article describes and not only for injections:
 * `expect listen-overflows >= 1` fails a gate under which the kernel never
 * turned a client away, however many faults were logged.
 *
 * Counters (listen-overflows, listen-drops, resets-sent) are the kernel's
 * TCP statistics of the gate's network namespace, as they grew from the
 * moment the server was ready to the end of the probe: other programs on
 * the machine add to them too. Gauges (server-fds, close-wait, recv-q)
 * are the highest value seen, sampled about ten times a second while the
 * load and the probe run and once more at the end.
 */
#ifndef KBFAULT_EVIDENCE_H
#define KBFAULT_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum kb_measure {
	KB_MEASURE_LISTEN_OVERFLOWS, /* TcpExt ListenOverflows: a full accept queue turned a handshake away */
	KB_MEASURE_LISTEN_DROPS,     /* TcpExt ListenDrops: a connection request dropped at a listener */
	KB_MEASURE_RESETS_SENT,      /* Tcp OutRsts: resets this machine sent */
	KB_MEASURE_SERVER_FDS,       /* descriptors open in the server's processes */
	KB_MEASURE_CLOSE_WAIT,       /* TCP sockets on the ready port in CLOSE-WAIT: closed by the peer, not by us */
	KB_MEASURE_RECV_Q,           /* connections waiting in the ready port's listener (its Recv-Q) */
	KB_MEASURES
};

enum kb_expect_op { KB_EXPECT_GE, KB_EXPECT_GT, KB_EXPECT_LE, KB_EXPECT_LT, KB_EXPECT_EQ };

struct kb_expect {
	enum kb_measure measure;
	enum kb_expect_op op;
	long long value;
};

#define KB_EXPECTS_MAX 8

struct kb_evidence {
	bool ok[KB_MEASURES];          /* could it be measured at all? */
	long long value[KB_MEASURES];  /* counters: the growth; gauges: the highest seen */
	long long base[KB_MEASURES];   /* counters at the start */
};

/* "listen-overflows >= 1" (blanks optional). 0, or -1 with a message
 * naming what was expected. */
int kb_expect_parse(const char *text, struct kb_expect *out, char *err, size_t len);

/* "listen-overflows >= 1", the form kb_expect_parse() reads. */
void kb_expect_format(const struct kb_expect *x, char *out, size_t len);

const char *kb_measure_name(enum kb_measure m);

/* Starts measuring: the counters' values now. */
void kb_evidence_begin(struct kb_evidence *e);

/* One more look: gauges of the server's process group (its leader's pid)
 * and of the listener's port; counters' growth so far. */
void kb_evidence_sample(struct kb_evidence *e, pid_t server_group, int port);

/* Does the evidence meet x? False when the measure could not be taken. */
bool kb_expect_met(const struct kb_expect *x, const struct kb_evidence *e);

#endif
