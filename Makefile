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

install: build
	install -Dm755 $(BIN) $(DESTDIR)$(prefix)/bin/scptrace

uninstall:
	rm -f $(DESTDIR)$(prefix)/bin/scptrace

clean:
	$(CARGO) clean
