# The data-manager workspace. `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo
NEXTEST := $(shell command -v cargo-nextest >/dev/null 2>&1 && echo yes)

.PHONY: help build test lint fmt bench bench-parse bench-e2e bench-audit bench-analytics bench-failover bench-api test-api demo services images chart test-deploy test-images clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## Build every binary (debug)
	$(CARGO) build --workspace --bins

services: ## Make sure the local services the tests need are running (installs them if absent)
	@deploy/local/ensure-nats.sh
	@deploy/local/ensure-mariadb.sh
	@deploy/local/ensure-mongo.sh

test: services ## Run every test against real local services
	@# The end-to-end test runs other packages' binaries (dm-loadgen, dm-auditor, …): build them all.
	$(CARGO) build --workspace --bins
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --no-fail-fast
else
	$(CARGO) test --workspace --no-fail-fast
endif
	$(CARGO) test --workspace --doc
	tests/deploy/run.sh

# The tests that need no server: every unit test, plus the integration tests that only parse,
# compute or run a binary offline. For a quick loop while editing; `make test` runs everything.
PURE_TESTS := -p events --test fixtures --test never_panics -p analytics --test golden --test properties --test compute

.PHONY: test-unit
test-unit: ## Unit tests and server-free tests: no NATS, MariaDB, MongoDB or API server needed
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --lib --bins --no-fail-fast
	$(CARGO) nextest run $(PURE_TESTS) --no-fail-fast
else
	$(CARGO) test --workspace --lib --bins --no-fail-fast
	$(CARGO) test $(PURE_TESTS) --no-fail-fast
endif

.PHONY: test-faults
test-faults: services ## Slow fault suite: freeze the leading scheduler, kill its Mongo (FREEZE_TRIALS=50 for RELIABILITY.md; default 3)
	FREEZE_TRIALS=$${FREEZE_TRIALS:-3} $(CARGO) test -p auditor --test freeze --test faults -- --ignored --nocapture

lint: ## rustfmt check, clippy and rustdoc with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

fmt: ## Format the code
	$(CARGO) fmt --all

bench: bench-parse bench-e2e bench-audit bench-analytics bench-failover bench-api ## All benchmarks (see BENCHMARKS.md)

bench-parse: ## events::parse vs serde_json IgnoredAny on the realistic mix
	$(CARGO) bench -p events --bench parse

bench-e2e: services ## dm-consumer vs a count-only subscriber through a local nats-server
	$(CARGO) bench -p consumer --bench e2e

bench-audit: services ## dm-auditor: one 30-day audit vs the bare MySQL read (137k rows)
	$(CARGO) bench -p auditor --bench audit

.PHONY: bench-trades
bench-trades: services ## dm-auditor: the trades audit of 1,000,000 trades vs the bare MySQL read, peak RSS
	$(CARGO) bench -p auditor --bench trades

bench-analytics: services ## dm-analytics: one cycle (10 symbols, 90 days of 1h) vs the bare MySQL read
	$(CARGO) bench -p analytics --bench cycle

bench-api: services ## dm-api: GET /v1/datasets (1,000 datasets) vs a static response of the same size, under wrk
	tests/api/bench.sh

.PHONY: bench-scale
bench-scale: services ## dm-auditor cycles at 50/500/2,000 datasets, Mongo direct vs 10 ms RTT, 10 cycles at 2,000; dm-analytics at 50/500/2,000 symbols (not in CI)
	$(CARGO) bench -p auditor --bench scale
	$(CARGO) bench -p analytics --bench scale

.PHONY: bench-scale-rs
bench-scale-rs: services ## bench-scale against secantusd-rs, the faster Rust build of the test server (installs it: ~20 min cold)
	@deploy/local/ensure-mongo-rs.sh
	DM_TEST_MONGOD=$(CURDIR)/.tools/secantus-rs/bin/secantusd-rs $(CARGO) bench -p auditor --bench scale
	DM_TEST_MONGOD=$(CURDIR)/.tools/secantus-rs/bin/secantusd-rs $(CARGO) bench -p analytics --bench scale

bench-failover: ## Lease failover after a crash and hand-over after a release (fake API server)
	$(CARGO) run --release -p leader --example failover

.PHONY: test-k8s bench-failover-real

test-k8s: services ## Lease election against a real kube-apiserver (built once from Debian's source into ~/.cache; see tests/k8s/)
	tests/k8s/run.sh

bench-failover-real: ## The failover benchmark against the fake and then a real kube-apiserver, in one run (tests/k8s/run.sh bench)
	tests/k8s/run.sh bench

.PHONY: fuzz test-fuzz
FUZZ_SECONDS ?= 300

fuzz: ## Coverage-guided fuzzing of events::parse and the redaction routine, FUZZ_SECONDS each (default 300; cargo-fuzz)
	fuzz/run.sh $(FUZZ_SECONDS)

test-fuzz: ## The bounded fuzz run CI does: 60 s per target, fails on any crash
	fuzz/run.sh 60

IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"\(.*\)"/\1/p' helm/Chart.yaml)

images: ## Build the container images: consumer, scheduler, and the demo image compose uses (needs a Docker engine)
	docker build -f Dockerfile.consumer -t ghcr.io/petrosa/data-manager-consumer:$(IMAGE_TAG) .
	docker build -f Dockerfile.scheduler -t ghcr.io/petrosa/data-manager-scheduler:$(IMAGE_TAG) .
	docker build -f Dockerfile.scheduler --target demo -t ghcr.io/petrosa/data-manager-demo:$(IMAGE_TAG) .

chart: ## Lint the Helm chart (strict), render it into rendered/ and validate every manifest
	@tests/deploy/setup.sh
	.venv-helm/bin/python tests/deploy/chart.py $(if $(VALUES),-f $(VALUES))

test-api: services ## dm-api's slow suites: schemathesis against the live server, the status page in headless chromium
	tests/api/run.sh

test-deploy: services build ## The chart, alert (promtool), /metrics and Dockerfile checks (Helm v4 SDK + kubernetes-validate in .venv-helm)
	tests/deploy/run.sh

test-images: services ## Build each image's runtime stage on a locally made base with the release binaries and run it locked down (Docker engine: tests/deploy/ensure-docker.sh)
	tests/deploy/ensure-docker.sh
	tests/deploy/setup.sh
	.venv-helm/bin/python -m pytest -q -p no:cacheprovider tests/deploy/images

demo: ## The whole pipeline on one machine: seeded MySQL, consumer+loadgen, auditor, analytics; a summary, then stop (ARGS=--keep to stay up)
	@deploy/local/demo.sh $(ARGS)

clean: ## Remove build output
	$(CARGO) clean
