# scptrace — every target the README and CI use.
CARGO  ?= cargo
prefix ?= /usr/local
DESTDIR ?=
BIN    := target/release/scptrace
# Where `man` and `completions` write (the tests point it elsewhere).
GENDIR ?= target

# static: see below
.PHONY: static all build release test test-deps lint demo bench bench-instructions install uninstall clean man completions fuzz harden-long

all: build

build:
	$(CARGO) build --release

release: build

# Installs what the end-to-end tests need (apt as root, a Python venv), then
# runs every test. .ci/run calls exactly this.
test: test-deps
	$(CARGO) build --release
	$(CARGO) test --release --all-targets

test-deps:
	bash scripts/test-deps.sh

lint:
	$(CARGO) fmt --check
	bash scripts/check-layers.sh
	$(CARGO) clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --quiet

# One fully static x86_64 Linux binary for remote hosts (docs/deploying.md,
# "Copy one file"): glibc's static libc via crt-static, no rustup target to
# download (STATIC_TARGET=x86_64-unknown-linux-musl works too where that
# target is installed). Static glibc cannot load NSS modules reliably, so the
# result must not contain a function that would (getpwuid, initgroups...):
# src/passwd.rs reads the files instead. rust-lld does not print glibc's
# link-time warning about them, so nm checks.
STATIC_TARGET ?= x86_64-unknown-linux-gnu
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
NSS_FUNCS := getpwnam|getpwnam_r|getpwuid|getpwuid_r|getpwent|getgrnam|getgrnam_r|getgrgid|getgrgid_r|getgrent|\
  initgroups|getgrouplist|getaddrinfo|gethostbyname|gethostbyname_r|gethostbyname2|gethostbyaddr|getservbyname|\
  getlogin|getlogin_r|getspnam
static:
	RUSTFLAGS="$(RUSTFLAGS) -C target-feature=+crt-static" \
	  $(CARGO) build --release --target $(STATIC_TARGET) --bin scptrace
	mkdir -p $(TARGET_DIR)/static
	cp $(TARGET_DIR)/$(STATIC_TARGET)/release/scptrace $(TARGET_DIR)/static/scptrace
	@if ldd $(TARGET_DIR)/static/scptrace >/dev/null 2>&1 && ! ldd $(TARGET_DIR)/static/scptrace 2>&1 | grep -q "statically linked"; then \
	  ldd $(TARGET_DIR)/static/scptrace; echo "make static: the binary is dynamically linked"; exit 1; fi
	@nss=$$(nm $(TARGET_DIR)/static/scptrace | awk '$$2 ~ /^[TW]$$/ {print $$3}' | grep -xE '$(NSS_FUNCS)' | tr '\n' ' '); \
	  if [ -n "$$nss" ]; then echo "make static: NSS functions linked in: $$nss(see src/passwd.rs)"; exit 1; fi
	@echo "make static: $(TARGET_DIR)/static/scptrace ($$(du -h $(TARGET_DIR)/static/scptrace | cut -f1), static, no NSS)"

# A traced scp transfer on this machine, no remote host needed.
demo: build
	bash scripts/demo.sh $(BIN)

bench: build
	bash scripts/bench.sh $(BIN)

# Instructions the stand-in executes (valgrind), this build against OLD=BINARY:
# the load-proof way to compare two builds (docs/performance.md).
bench-instructions: build
	bash scripts/bench-instructions.sh $(OLD) $(BIN)

# Fuzzing (docs/fuzzing.md): each cargo-fuzz target for FUZZ_SECONDS (needs a
# nightly toolchain and cargo-fuzz; skipped with a note without them), then
# the tracer round-trip proptest with PROPTEST_CASES cases (stable is enough).
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= decode parse trace sftp
PROPTEST_CASES ?= 200000

fuzz:
	@if $(CARGO) +nightly fuzz --version >/dev/null 2>&1; then \
	  for t in $(FUZZ_TARGETS); do \
	    mkdir -p fuzz/corpus/$$t && cp -n fuzz/seeds/$$t/* fuzz/corpus/$$t/ && \
	    (cd fuzz && $(CARGO) +nightly fuzz run -O -s none $$t corpus/$$t -- \
	      -dict=$$t.dict -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 -print_final_stats=1) || exit 1; \
	  done; \
	else echo "make fuzz: no nightly toolchain or cargo-fuzz: cargo-fuzz targets skipped"; fi
	PROPTEST_CASES=$(PROPTEST_CASES) $(CARGO) test --release --test it harden::tracer_roundtrip -- --ignored

# The long hardening cases (8 GiB of garbage through the tap, ...), which
# make test leaves out; FIGURE lines give peak RSS and throughput.
harden-long:
	$(CARGO) test --release --test it harden:: -- --ignored --nocapture

# Generated from the CLI definition (clap), never written by hand: scptrace.1
# and one page per subcommand, scptrace-COMMAND.1 (stale pages removed first).
man: build
	rm -rf $(GENDIR)/man
	$(BIN) generate man --dir $(GENDIR)/man

completions: build
	mkdir -p $(GENDIR)/completions
	$(BIN) generate bash > $(GENDIR)/completions/scptrace.bash
	$(BIN) generate zsh > $(GENDIR)/completions/_scptrace
	$(BIN) generate fish > $(GENDIR)/completions/scptrace.fish

install: build man completions
	install -Dm755 $(BIN) $(DESTDIR)$(prefix)/bin/scptrace
	install -d $(DESTDIR)$(prefix)/share/man/man1
	install -m644 $(GENDIR)/man/*.1 $(DESTDIR)$(prefix)/share/man/man1/
	install -Dm644 $(GENDIR)/completions/scptrace.bash $(DESTDIR)$(prefix)/share/bash-completion/completions/scptrace
	install -Dm644 $(GENDIR)/completions/_scptrace $(DESTDIR)$(prefix)/share/zsh/site-functions/_scptrace
	install -Dm644 $(GENDIR)/completions/scptrace.fish $(DESTDIR)$(prefix)/share/fish/vendor_completions.d/scptrace.fish

uninstall:
	rm -f $(DESTDIR)$(prefix)/bin/scptrace $(DESTDIR)$(prefix)/share/man/man1/scptrace.1
	rm -f $(DESTDIR)$(prefix)/share/man/man1/scptrace-*.1
	rm -f $(DESTDIR)$(prefix)/share/bash-completion/completions/scptrace
	rm -f $(DESTDIR)$(prefix)/share/zsh/site-functions/_scptrace $(DESTDIR)$(prefix)/share/fish/vendor_completions.d/scptrace.fish

clean:
	$(CARGO) clean
