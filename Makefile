# Convenience targets; `scripts/test` is the one test command CI runs.
PREFIX ?= /usr/local

.PHONY: build install test bench demo

build:
	cargo build --release -p kiln

# One binary, plus the kiln-runtime name for tools that want a runtime path.
install:
	cargo install --locked --path bin/kiln --root $(PREFIX)
	ln -sf kiln $(PREFIX)/bin/kiln-runtime

test:
	scripts/test

# The ML workflow end to end: install, bootstrap a Python base, build, train.
demo:
	examples/ml/demo.sh

bench:
	bench/runtime.sh
