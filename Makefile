# scptrace — every target the README and CI use.
CARGO  ?= cargo
prefix ?= /usr/local
DESTDIR ?=
BIN    := target/release/scptrace

.PHONY: all build release test test-deps lint demo bench install uninstall clean man completions

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
	$(CARGO) clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --quiet

# A traced scp transfer on this machine, no remote host needed.
demo: build
	bash scripts/demo.sh $(BIN)

bench: build
	bash scripts/bench.sh $(BIN)

# Generated from the CLI definition (clap), never written by hand.
man: build
	mkdir -p target/man
	$(BIN) generate man > target/man/scptrace.1

completions: build
	mkdir -p target/completions
	$(BIN) generate bash > target/completions/scptrace.bash
	$(BIN) generate zsh > target/completions/_scptrace
	$(BIN) generate fish > target/completions/scptrace.fish

install: build man completions
	install -Dm755 $(BIN) $(DESTDIR)$(prefix)/bin/scptrace
	install -Dm644 target/man/scptrace.1 $(DESTDIR)$(prefix)/share/man/man1/scptrace.1
	install -Dm644 target/completions/scptrace.bash $(DESTDIR)$(prefix)/share/bash-completion/completions/scptrace
	install -Dm644 target/completions/_scptrace $(DESTDIR)$(prefix)/share/zsh/site-functions/_scptrace
	install -Dm644 target/completions/scptrace.fish $(DESTDIR)$(prefix)/share/fish/vendor_completions.d/scptrace.fish

uninstall:
	rm -f $(DESTDIR)$(prefix)/bin/scptrace $(DESTDIR)$(prefix)/share/man/man1/scptrace.1
	rm -f $(DESTDIR)$(prefix)/share/bash-completion/completions/scptrace
	rm -f $(DESTDIR)$(prefix)/share/zsh/site-functions/_scptrace $(DESTDIR)$(prefix)/share/fish/vendor_completions.d/scptrace.fish

clean:
	$(CARGO) clean
