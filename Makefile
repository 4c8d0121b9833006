# callgate - build, run, test, benchmark.
#
#   make run        build, then run the gateway with dialplans/default.yaml
#   make test       install the test peers if missing, build, fmt, clippy, all tests
#   make demo       one call through the gateway: ladder diagram and media counters (bench/demo.sh)
#   make bench      every benchmark below
#   make bench-cps  calls-per-second benchmark: callgate (proxy, B2BUA bypass/anchor) vs Kamailio (bench/cps.sh)
#   make bench-relay RTP relay CPU per packet: callgate vs rtpengine (bench/relay.sh)
#   make bench-media Opus<->PCMU transcoding CPU per call-second: callgate vs rtpengine (bench/media.sh)
#   make deps       install the real-peer test tools (Debian packages)
#   make fuzz       build the fuzz targets (only if cargo-fuzz is installed)

SHELL := /bin/bash
CARGO ?= cargo
DIALPLAN ?= dialplans/default.yaml

# Debian packages the real-peer tests and the benchmark need:
# sip-tester = SIPp, kamailio = reference/upstream proxy, libopus-dev (+ pkg-config)
# for the Opus codec, baresip = headless SIP user agent for the audio tests
# (installed without recommends: baresip-core only, no GTK/GStreamer).
DEB_PACKAGES := sip-tester kamailio pkg-config libopus-dev baresip
# rtpengine-daemon = reference RTP relay for `make bench-relay` (userspace only).
DEB_PACKAGES += rtpengine-daemon

.PHONY: all build run deps test test-unit test-peers lint demo bench bench-cps bench-relay bench-media fuzz

all: build

build:
	$(CARGO) build --release

run: build
	target/release/callgate run --dialplan $(DIALPLAN)

# Installs the packages only if something is missing; silent otherwise.
deps:
	@missing=""; \
	for tool in sipp kamailio pkg-config baresip; do \
	  command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || missing="$$missing $$tool"; \
	done; \
	command -v rtpengine >/dev/null 2>&1 || missing="$$missing rtpengine"; \
	if command -v pkg-config >/dev/null 2>&1 && ! pkg-config --exists opus; then \
	  missing="$$missing opus"; \
	fi; \
	if [ -n "$$missing" ]; then \
	  echo "deps: missing:$$missing; installing $(DEB_PACKAGES)"; \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $(DEB_PACKAGES) </dev/null >/dev/null; \
	fi

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Unit, simulation and other integration tests, in parallel. The real-peer
# tests (tests/peers_*.rs, inside `mod real_peers`) use fixed ports on
# 127.0.0.1, so they are skipped here and run one at a time in test-peers.
test-unit:
	$(CARGO) test --release -- --skip real_peers::

test-peers: deps
	$(CARGO) test --release --no-fail-fast --test 'peers_*' -- --test-threads=1

test: deps
	$(CARGO) build --release
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-peers

demo: deps build
	@bash bench/demo.sh

bench: deps build
	@status=0; \
	bash bench/relay.sh || status=1; \
	bash bench/cps.sh || status=1; \
	bash bench/media.sh || status=1; \
	exit $$status

bench-cps: deps build
	bash bench/cps.sh

bench-relay: deps build
	bash bench/relay.sh

# BENCH_MEDIA_ARGS: calls and seconds of the comparison row (default 50 10); the
# real-time rows take RT_CALLS, e.g. `make bench-media RT_CALLS="200 300"`
bench-media: deps build
	bash bench/media.sh $(BENCH_MEDIA_ARGS)

fuzz:
	@if $(CARGO) fuzz --version >/dev/null 2>&1; then \
	  if [ -d fuzz ]; then \
	    case "$$(rustc --version)" in *nightly*) ;; *) export RUSTC_BOOTSTRAP=1 ;; esac; \
	    $(CARGO) fuzz build; \
	  else \
	    echo "fuzz: no fuzz/ directory"; \
	  fi; \
	else \
	  echo "fuzz: cargo-fuzz is not installed (cargo install cargo-fuzz); nothing built"; \
	fi
