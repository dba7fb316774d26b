# The two commands of the README:
#   make run   - install what is missing, build, run the server on 127.0.0.1:8080 (data in ./data)
#   make test  - install what is missing, run every test (unit, integration, CLI, server,
#                the cvat-sdk/cvat-cli compatibility suite, the Datumaro cross-check, the hostile
#                probes and CVAT's web UI in headless Chromium)
# Benchmarks (not part of `make test`): make bench, make compare

CARGO ?= cargo
DEMO_OUT ?= target/demo
# A build of CVAT's web UI to serve with `make run` (README: "Using CVAT's web UI"); skipped when absent.
UI_DIR ?= ../shared/cvat-ui/dist

.PHONY: deps build run demo test hostile browser compat bench compare compare-chunks compare-formats datumaro-check goldens testmedia fmt lint clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(CARGO) build --release --workspace --locked

run: build
	target/release/frameserver serve --data-dir data --bind 127.0.0.1:8080 --share-dir testdata \
		$(if $(wildcard $(UI_DIR)/index.html),--ui-dir $(UI_DIR))

demo: build
	@echo "== manifest info testdata/videos/h264_bframes.mp4"
	@target/release/manifest info testdata/videos/h264_bframes.mp4
	@echo "== manifest create --output-dir $(DEMO_OUT) testdata/videos/h264_bframes.mp4"
	@target/release/manifest create --verbose --output-dir $(DEMO_OUT) testdata/videos/h264_bframes.mp4
	@cat $(DEMO_OUT)/manifest.jsonl
	@target/release/manifest validate --checksums $(DEMO_OUT) testdata/videos/h264_bframes.mp4

test: deps
	$(CARGO) test --workspace --locked
	FRAMESERVER_BIN=target/debug/frameserver bash tests/compat/run.sh
	FRAMESERVER_BIN=target/debug/frameserver bash tests/formats/datumaro-check.sh
	FRAMESERVER_BIN=target/debug/frameserver python3 tests/hostile/run.py
	FRAMESERVER_BIN=target/debug/frameserver FRAMESERVER_UI_DIR=$(UI_DIR) bash tests/browser/run.sh
	FRAMESERVER_BIN=target/debug/frameserver FRAMESERVER_UI_DIR=$(UI_DIR) bash tests/browser/run.sh paths

# Only the browser test: CVAT's web UI in headless Chromium (tests/browser/README.md).
browser: deps
	$(CARGO) build --bin frameserver
	FRAMESERVER_BIN=target/debug/frameserver FRAMESERVER_UI_DIR=$(UI_DIR) bash tests/browser/run.sh

# Only the hostile-input probes (tests/hostile/: bombs, floods, lockout; each under a minute).
hostile: deps
	$(CARGO) build --bin frameserver
	FRAMESERVER_BIN=target/debug/frameserver python3 tests/hostile/run.py

# Only the cvat-sdk / cvat-cli compatibility suite (against the debug build).
compat: deps
	$(CARGO) build --bin frameserver
	FRAMESERVER_BIN=target/debug/frameserver bash tests/compat/run.sh

# Criterion benches on the 1080p GOP-250 clip (generated on first use, not committed).
bench: deps
	bash testdata/generate.sh --bench target/bench-media
	$(CARGO) bench --bench manifest

# Side by side with CVAT's algorithm in Python (PyAV) and the demux-only floor.
compare: build
	bash benches/compare-manifest.sh

# Chunk server side by side with its floor and CVAT's method (see benches/README.md).
compare-chunks: build
	bash benches/compare-chunks.sh

# Dataset formats against Datumaro 1.13 and the video export floor (see benches/README.md).
compare-formats: build
	bash benches/compare-formats.sh

# Exports and imports cross-checked with PyPI Datumaro 1.13 (tests/formats/README.md; part of `test`).
datumaro-check: build
	bash tests/formats/datumaro-check.sh

# Regenerate testdata/golden with the CVAT-port baseline (needs PyPI).
goldens:
	bash benches/baseline/make-goldens.sh --no-wait

testmedia:
	bash testdata/generate.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
