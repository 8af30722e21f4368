# kbfault - a fault-injection shim for TCP servers and clients.
#
#   make                 build build/libkbfault.so and build/kbfault
#   make check           unit, preload and end-to-end tests, and the mutant files checked
#                        (installs Criterion and the servers if missing)
#   make mutants         each planted bug of tests/mutants/*.mut, alone, in a copy of the tree
#                        under build-mutants/: the test it names must fail (MUTANTS=GLOB for some)
#   make demo            the demo server under the bundled demo recipe
#   make gates           the example CI gates (docs/ci/gates.kbg): one per article, with evidence
#   make install         PREFIX=/usr/local DESTDIR= (library, CLI, recipes, man pages)
#   make V=1             show the commands
#
# One build directory per flavour: BUILD=build-asan and friends are set by
# the sanitizer targets, so a plain build and an instrumented one never mix.

PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
LIBDIR    ?= $(PREFIX)/lib
PKGLIBDIR ?= $(LIBDIR)/kbfault
DATADIR   ?= $(PREFIX)/share/kbfault
RECIPEDIR ?= $(DATADIR)/recipes
MANDIR    ?= $(PREFIX)/share/man
DESTDIR   ?=

BUILD ?= build
CC    ?= cc

VERSION := 0.1.0

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wpointer-arith -Wcast-align -Wwrite-strings -Wundef -Wvla -Wnull-dereference \
        -Wimplicit-fallthrough -Wconversion -Wno-sign-conversion -Wmissing-declarations
OPT  ?= -O2 -g
CFLAGS   ?= $(OPT)
KB_CFLAGS = -std=c11 -D_GNU_SOURCE -Iinclude $(WARN) -fPIC -fvisibility=hidden -pthread \
            -DKB_VERSION='"$(VERSION)"' -DKB_RECIPE_DIR='"$(RECIPEDIR)"' \
            -DKB_PKGLIBDIR='"$(PKGLIBDIR)"' -MMD -MP
LDFLAGS  ?=
SAN      ?=
ifneq ($(WERROR),)
KB_CFLAGS += -Werror
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

CORE_SRC := $(wildcard shim/core/*.c)
SHIM_SRC := $(wildcard shim/*.c)
CLI_SRC  := $(wildcard cli/*.c)
UNIT_SRC := $(wildcard tests/unit/*.c)
PRE_SRC  := $(wildcard tests/preload/*.c)
E2E_SRC  := $(wildcard tests/e2e/*.c) tests/preload/harness.c
HELPERS  := $(patsubst tests/helpers/%.c,$(BUILD)/helpers/%,$(filter-out tests/helpers/lib%,$(wildcard tests/helpers/*.c)))
HELPER_LIBS := $(patsubst tests/helpers/%.c,$(BUILD)/helpers/%.so,$(wildcard tests/helpers/lib*.c))
DEMO     := $(BUILD)/kbdemo-server $(BUILD)/kbdemo-client

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB     := $(BUILD)/libkbfault.so
CORE_A  := $(BUILD)/libkbcore.a
CLI_A   := $(BUILD)/libkbcli.a
CLI     := $(BUILD)/kbfault

.SECONDARY:
.PHONY: all check test unit preload e2e mutants mutants-list demo gates install uninstall clean deps-test check-asan check-tsan helpers fuzz check-valgrind bench
all: $(LIB) $(CLI) $(DEMO)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(KB_CFLAGS) $(if $(filter cli/% tests/unit/%,$<),-Icli) $(if $(filter tests/e2e/%,$<),-Itests/preload) \
		$(SAN) $(CFLAGS) -c $< -o $@

$(CORE_A): $(call obj,$(CORE_SRC))
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# The library exports only the libc names it interposes and kbfault_*:
# everything else is hidden by -fvisibility=hidden and `local: *`.
$(LIB): $(call obj,$(SHIM_SRC)) $(CORE_A) shim/libkbfault.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -pthread $(SAN) $(LDFLAGS) -Wl,--version-script=shim/libkbfault.map \
		-Wl,-z,now -Wl,-z,relro -o $@ $(call obj,$(SHIM_SRC)) $(CORE_A) -ldl

# The CLI's parts but main(), for the unit tests of what they compute.
$(CLI_A): $(call obj,$(filter-out cli/main.c,$(CLI_SRC)))
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(CLI): $(BUILD)/obj/cli/main.o $(CLI_A) $(CORE_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -pthread $(SAN) $(LDFLAGS) -o $@ $^

$(BUILD)/kbdemo-%: $(BUILD)/obj/demo/%.o $(CORE_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -pthread $(SAN) $(LDFLAGS) -o $@ $^

$(BUILD)/helpers/%: $(BUILD)/obj/tests/helpers/%.o $(CORE_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -pthread $(SAN) $(LDFLAGS) -o $@ $^

$(BUILD)/helpers/%.so: $(BUILD)/obj/tests/helpers/%.o
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -pthread $(SAN) $(LDFLAGS) -o $@ $^

$(BUILD)/unit-tests: $(call obj,$(UNIT_SRC)) $(CLI_A) $(CORE_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -pthread $(SAN) $(LDFLAGS) -o $@ $^ -lcriterion

$(BUILD)/e2e-tests: $(call obj,$(E2E_SRC)) $(CORE_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -pthread $(SAN) $(LDFLAGS) -o $@ $^ -lcriterion

$(BUILD)/preload-tests: $(call obj,$(PRE_SRC)) $(CORE_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -pthread $(SAN) $(LDFLAGS) -o $@ $^ -lcriterion

# Tests need Criterion; scripts/ensure-packages installs it from Debian
# when it is missing (and says so), so `make check` works on a fresh machine.
deps-test:
	$(Q)scripts/ensure-packages libcriterion-dev

# Every test run has an outer time limit: a test that hangs fails the run
# (and CI) instead of stalling it. scripts/run-tests names the suite and
# prints a line per test as it ends. CRITERION_FLAGS='--filter suite/*' picks
# tests; `set -f` keeps the shell from expanding the glob against the tree
# (`cli/*` names files here), which would run none.
unit: deps-test $(BUILD)/unit-tests
	$(Q)set -f; scripts/run-tests unit 600 $(BUILD)/unit-tests $(CRITERION_FLAGS)

helpers: $(HELPERS) $(HELPER_LIBS)

preload: deps-test all helpers $(BUILD)/preload-tests
	$(Q)set -f; KB_BUILD=$(abspath $(BUILD)) KB_SRC=$(CURDIR) scripts/run-tests preload 900 $(BUILD)/preload-tests $(CRITERION_FLAGS)

# The real servers and clients the end-to-end tests drive, from Debian.
E2E_PACKAGES := python3 golang-go binutils chromium nginx-light redis-server redis-tools curl iproute2 procps libxml2-utils socat apache2-bin postgresql

# One test at a time: they measure latencies of bursts on 2 cores.
e2e: deps-test all $(BUILD)/e2e-tests
	$(Q)scripts/ensure-packages $(E2E_PACKAGES)
	$(Q)set -f; KB_BUILD=$(abspath $(BUILD)) KB_SRC=$(CURDIR) scripts/run-tests e2e 1200 $(BUILD)/e2e-tests --jobs 1 $(CRITERION_FLAGS)

# The planted bugs of tests/mutants/*.mut (tests/mutants/README.md), each
# applied alone to a copy of the tree in build-mutants/, where the test it
# names must fail; the runner checks itself first. MUTANTS='GLOB...' runs
# the mutants whose names match, without the self-test. Bounded: see the
# head of scripts/mutants.
mutants: deps-test
	$(Q)$(if $(MUTANTS),,scripts/mutants --self-test && )KB_E2E_PACKAGES='$(E2E_PACKAGES)' \
		MUTANTS='$(MUTANTS)' scripts/mutants

# The mutant files checked against this tree, in a second: each `from`
# found exactly once, each test named there. First in `make check`, so
# that an edit that leaves a mutant stale fails at once.
mutants-list: deps-test $(BUILD)/unit-tests $(BUILD)/preload-tests $(BUILD)/e2e-tests
	$(Q)KB_BUILD=$(abspath $(BUILD)) scripts/mutants --list

check: mutants-list unit preload e2e
test: check

demo: all
	$(Q)scripts/demo $(BUILD)
	$(Q)for log in $(BUILD)/demo/q181350-reset.log $(BUILD)/demo/q236565.log $(BUILD)/demo/q298486.log; do \
		$(CLI) report "$$log" >/dev/null || { echo "demo: $$log was not kept" >&2; exit 1; }; done

# The example gates of docs/ci/gates.kbg, run as the project's own CI runs
# them: nginx and redis under two recipes, a JUnit file checked by xmllint,
# and an HTML timeline per gate, all in $(BUILD)/gates.
GATE_PACKAGES := nginx-light redis-server redis-tools curl libxml2-utils
gates: all
	$(Q)scripts/ensure-packages $(GATE_PACKAGES)
	$(Q)rm -rf $(BUILD)/gates
	$(Q)$(CLI) gate -f docs/ci/gates.kbg --junit $(BUILD)/gates/junit.xml --out $(BUILD)/gates
	$(Q)xmllint --noout $(BUILD)/gates/junit.xml
	$(Q)for log in $(BUILD)/gates/*/kbfault.log; do \
		$(CLI) report --html "$${log%/kbfault.log}/report.html" "$$log" >/dev/null || exit 1; done
	@echo "gates: JUnit in $(BUILD)/gates/junit.xml, timelines in $(BUILD)/gates/*/report.html"

# The same tests, instrumented, each flavour in its own build directory.
# The helpers are instrumented executables, so the sanitizer runtime is
# theirs and libkbfault.so (preloaded ahead of it) is instrumented too.
SAN_ASAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_TSAN := -fsanitize=thread

# Leaks are hunted in every program the tests start (and so in the shim
# inside it); the test runners themselves are short-lived processes.
ASAN_BASE := verify_asan_link_order=0:abort_on_error=1:exitcode=86
check-asan:
	$(Q)KB_SANITIZER=asan ASAN_OPTIONS=$(ASAN_BASE):detect_leaks=0 KB_CHILD_ASAN_OPTIONS=$(ASAN_BASE):detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g" SAN="$(SAN_ASAN)" unit preload

# Benchmarks (bench/README.md): installs valgrind, nginx, wrk, redis,
# libfiu and strace from Debian when missing; writes bench/results.md and
# bench/results.svg.
bench: all
	$(Q)CC="$(CC)" bench/run $(BUILD)

# memcheck: the unit tests, and the preload tests with every host program
# (and the shim in it) under valgrind; the load generator runs natively.
VALGRIND := valgrind -q --error-exitcode=95 --leak-check=full --errors-for-leak-kinds=definite
check-valgrind: deps-test all helpers $(BUILD)/unit-tests $(BUILD)/preload-tests
	$(Q)scripts/ensure-packages valgrind
	$(Q)set -f; timeout 900 $(VALGRIND) --trace-children=yes $(BUILD)/unit-tests --jobs 1 $(CRITERION_FLAGS)
	$(Q)set -f; KB_SANITIZER=valgrind KB_VALGRIND=1 KB_BUILD=$(abspath $(BUILD)) KB_SRC=$(CURDIR) \
		timeout 1800 $(BUILD)/preload-tests --jobs 1 $(CRITERION_FLAGS)

# libFuzzer, with ASan and UBSan, on the recipe parser and the log reader,
# for FUZZ_SECONDS each. New inputs go to build-fuzz/; the seeds in
# tests/fuzz/corpus/ are read, never written; a crash is saved in
# build-fuzz/ and fails the target.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude -Icli -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -DKB_VERSION='"$(VERSION)"' -DKB_RECIPE_DIR='"$(RECIPEDIR)"'
FUZZ_TARGETS := recipe json suite

build-fuzz/fuzz-recipe: tests/fuzz/fuzz_recipe.c $(CORE_SRC)
	@mkdir -p $(dir $@)
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $^
build-fuzz/fuzz-json: tests/fuzz/fuzz_json.c cli/logsum.c $(CORE_SRC)
	@mkdir -p $(dir $@)
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $^
build-fuzz/fuzz-suite: tests/fuzz/fuzz_suite.c cli/gate.c cli/evidence.c cli/locate.c cli/reach.c cli/logsum.c $(CORE_SRC)
	@mkdir -p $(dir $@)
	$(Q)clang $(FUZZ_CFLAGS) -DKB_PKGLIBDIR='"$(PKGLIBDIR)"' -o $@ $^

fuzz:
	$(Q)scripts/ensure-packages clang libclang-rt-dev
	$(Q)$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=build-fuzz/fuzz-%)
	$(Q)for t in $(FUZZ_TARGETS); do \
		mkdir -p build-fuzz/corpus-$$t && \
		echo "fuzzing the $$t reader for $(FUZZ_SECONDS)s" && \
		build-fuzz/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 \
			-artifact_prefix=build-fuzz/crash-$$t- -print_final_stats=1 \
			build-fuzz/corpus-$$t tests/fuzz/corpus/$$t 2>build-fuzz/fuzz-$$t.log || \
			{ tail -40 build-fuzz/fuzz-$$t.log; exit 1; }; \
		grep -E '^stat::number_of_executed_units|^Done' build-fuzz/fuzz-$$t.log; \
	done

# ThreadSanitizer cannot run inside Criterion's own runner (it crashes in
# the uninstrumented library), so the plain test runner drives
# instrumented helpers, servers, CLI and shim - where the threads are. A
# race makes the program exit with 87 and its test fail.
check-tsan: deps-test all $(BUILD)/preload-tests
	$(Q)$(MAKE) --no-print-directory BUILD=build-tsan OPT="-O1 -g" SAN="$(SAN_TSAN)" all helpers
	$(Q)set -f; KB_SANITIZER=tsan TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:exitcode=87 \
		KB_BUILD=$(abspath build-tsan) KB_SRC=$(CURDIR) timeout 900 $(BUILD)/preload-tests $(CRITERION_FLAGS)

install: $(LIB) $(CLI)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGLIBDIR) $(DESTDIR)$(RECIPEDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 0755 $(CLI) $(DESTDIR)$(BINDIR)/kbfault
	install -m 0755 $(LIB) $(DESTDIR)$(PKGLIBDIR)/libkbfault.so
	install -m 0644 recipes/*.kbf recipes/README.md $(DESTDIR)$(RECIPEDIR)/
	install -m 0644 man/kbfault.1 $(DESTDIR)$(MANDIR)/man1/kbfault.1
	install -m 0644 man/kbfault-recipe.5 $(DESTDIR)$(MANDIR)/man5/kbfault-recipe.5

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/kbfault $(DESTDIR)$(PKGLIBDIR)/libkbfault.so \
		$(DESTDIR)$(MANDIR)/man1/kbfault.1 $(DESTDIR)$(MANDIR)/man5/kbfault-recipe.5
	rm -f $(patsubst recipes/%,$(DESTDIR)$(RECIPEDIR)/%,$(wildcard recipes/*.kbf) recipes/README.md)
	-rmdir $(DESTDIR)$(RECIPEDIR) $(DESTDIR)$(DATADIR) $(DESTDIR)$(PKGLIBDIR) 2>/dev/null

clean:
	rm -rf build build-*

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
