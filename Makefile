# kmatrix. The two commands a newcomer needs:
#   make matrix   run the default kernel matrix; the report lands in report/
#   make test     run everything CI runs (vet, unit tests, the VM tests, the matrix tests)
# Both install what they need first (`make deps`).
GO       ?= go
# go run stamps no VCS revision unless asked: in a checkout, ask, so that
# reports (host.kmatrix) name the commit that made them.
KMATRIX  := $(GO) run $(if $(wildcard .git),-buildvcs=true) ./matrix/cmd/kmatrix
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)
REPORT   ?= report
KERNELS  ?=
# GUEST_ARCH=arm64: make matrix runs Debian's arm64 kernels (kernels/arm64.yaml).
# Not ARCH: make hands command-line variables to the kernel's own make.
GUEST_ARCH ?=
FLOAT    ?=
SHARDS   ?= shards
BASELINE ?=
# ALLOW_MISSING_BASELINE=1: a missing $(BASELINE) is a first run, not an error (make merge).
ALLOW_MISSING_BASELINE ?=
ACTIONLINT  := github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Guest binaries must be static: the guest has no libc.
export CGO_ENABLED = 0

.PHONY: deps browser generate-deps test vet lint matrix series bench generate plan merge summary ci-setup report-check install shard-plan

# Debian/Ubuntu packages the project needs; only the missing ones are installed.
# qemu-system-arm has qemu-system-aarch64, for arm64 kernels (kmatrix run --arch arm64).
DEB_DEPS := qemu-system-x86 qemu-system-arm gcc make mmdebstrap debian-archive-keyring ca-certificates
deps:
	@./.ci/apt-install $(DEB_DEPS)

# A headless browser for the HTML report's rendering test: Debian's chromium
# unless one is already there (GitHub's Ubuntu runners have google-chrome;
# Ubuntu's chromium package is only a snap stub).
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
		|| ./.ci/apt-install chromium

# binutils-aarch64-linux-gnu: the linker of the arm64 kmatrix-child (vmtest/execchild).
generate-deps:
	@./.ci/apt-install clang llvm libbpf-dev binutils-aarch64-linux-gnu

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	cd examples/tracer && $(GO) vet ./...

lint: vet
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(ACTIONLINT) .github/workflows/*.yml .github/examples/*.yml

# The matrix tests write their report to $(REPORT) (KMATRIX_REPORT_DIR).
test: deps browser vet
	KMATRIX_REPORT_DIR=$(CURDIR)/$(REPORT) $(GO) test -count=1 -timeout 80m ./...

matrix: deps
	$(KMATRIX) run --out $(REPORT) $(if $(GUEST_ARCH),--arch $(GUEST_ARCH)) $(if $(KERNELS),--kernels $(KERNELS)) $(if $(FLOAT),--float)

# The series lane: one kernel per upstream series (kernels/series.yaml, 11
# today, most without headers in the archive: their module cells skip).
# Not part of make test: cold, it downloads ~400 MB and makes build roots.
# It also bisects a known change (bpf_strcasecmp, new in 6.18) over
# trixie-backports' 29 kernels, and builds modules for the backports and
# experimental kernels outside the default catalog.
series: deps
	$(KMATRIX) run --catalog kernels/series.yaml --out $(REPORT)-series $(if $(KERNELS),--kernels $(KERNELS)) $(if $(FLOAT),--float)
	KMATRIX_SERIES=1 $(GO) test -count=1 -timeout 30m -run 'TestBisectStrcasecmp|TestBuildBackportsAndExperimental' -v ./matrix/cmd/kmatrix/ ./kmod/build/

# The arm64 series lane: kernels/series-arm64.yaml (one cloud-arm64 kernel
# per upstream series, 11 today) under TCG, and the bpf_strcasecmp
# bisection over trixie-backports' 29 arm64 kernels (--arch arm64). Not
# part of make test or make arm64: cold, it downloads a few hundred MB and
# makes a cross build root per suite (here: the 11 kernels in 1m29s, most
# downloaded; the bisection 5 boots in 1m28s). This machine's mirror serves
# no bullseye-security arm64 packages, so linux-5.10-arm64 is an
# infra-error (exit 4) here.
.PHONY: series-arm64
series-arm64: deps
	KMATRIX_SERIES=1 KMATRIX_ARM64=1 $(GO) test -count=1 -timeout 30m -run 'TestBisectStrcasecmpArm64|TestKernelsSeriesArm64' -v ./matrix/cmd/kmatrix/
	$(KMATRIX) run --catalog kernels/series-arm64.yaml --out $(REPORT)-series-arm64 $(if $(KERNELS),--kernels $(KERNELS)) $(if $(FLOAT),--float)

# The arm64 lane: Debian's arm64 cloud kernels (kernels/arm64.yaml) and
# modules cross-built for them with the kernel's gcc major
# (gcc-N-aarch64-linux-gnu in a cross build root of the kernel's suite).
# Not part of make test: cold, each suite's cross build root takes 30-40 s.
# It also boots the arm64 guests (vmtest: the virt board under TCG, a sysrq
# panic) and runs the matrix on them (kmatrix run --arch arm64).
ARM64_TESTS := Arm64|Cross
.PHONY: arm64
arm64: deps
	KMATRIX_ARM64=1 $(GO) test -count=1 -timeout 40m -run '$(ARM64_TESTS)' -v ./kernels/ ./kmod/build/ ./vmtest/ ./matrix/ ./matrix/cmd/kmatrix/

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 3x -timeout 60m ./vmtest/ ./kmod/... ./matrix/

# Fuzz every parser of outside input, each target for $(FUZZTIME), with
# $(FUZZPARALLEL) workers; a crash stops here and leaves its input in the
# package's testdata/fuzz/<Target>/ (commit it as a regression seed). The
# seeds alone run as ordinary tests in make test.
FUZZTIME     ?= 5m
FUZZPARALLEL ?= 1
FUZZ_TARGETS := ./kernels:FuzzInRelease ./kernels:FuzzPackages ./kernels:FuzzUnpackDeb \
	./kernels:FuzzParseCatalog ./kernels:FuzzParseLock ./vmtest/internal/wire:FuzzDecode \
	./vmtest:FuzzConsoleScanner ./matrix/report:FuzzParse
.PHONY: fuzz
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -parallel $(FUZZPARALLEL) $$pkg || exit 1; \
	done

# The fault suite: every way kmatrix was found to hang or to blame the
# payload for its own trouble (stalled or cut downloads, damaged or moved
# caches, killed runs' leftovers, unresolvable kernels, stuck modules,
# corrupted kernels, missing baselines). The fast cases also run in make
# test; KMATRIX_FAULTS=1 adds the slow ones (VMs waiting out watchdogs).
FAULT_TESTS := Mirror|Download|Retries|Backoff|BadTimeoutEnv|Leftover|Killed|Damaged|HeadersMissing|VerifyCache|Legacy|ResolveEach|ResolveSelection|MalformedCatalog|CorruptedKernel|RunStuckModule|RunUnresolvableKernel|ReportDiffMissingBaseline|CacheVerify|HeadersRelocatable|CachedHeadersRepaired
.PHONY: faults
faults: deps
	KMATRIX_FAULTS=1 $(GO) test -count=1 -timeout 40m -run '$(FAULT_TESTS)' -v ./kernels/ ./vmtest/ ./kmod/build/ ./matrix/ ./matrix/cmd/kmatrix/

# Render the sample report in headless Chromium and check the picture
# (matrix/report/html_test.go); it is part of make test too.
report-check: browser
	$(GO) test -count=1 -run TestHTMLScreenshot -v ./matrix/report/

# Regenerate the committed BPF objects (needs clang; installs it when missing)
# and the guest tests' exec child (needs gcc), then the static Go binaries
# embedded in kmatrix (guest init, guest agent): last, as they embed the rest.
generate: generate-deps
	$(GO) generate ./bpf/... ./matrix/guest/... ./vmtest/execchild
	$(GO) generate ./vmtest ./matrix/guestagent

# plan prints the kernels to test as a JSON list, as a GitHub step output when run in Actions.
plan:
	@echo "kernels=$$($(KMATRIX) kernels --names $(if $(FLOAT),--float))" | tee -a "$${GITHUB_OUTPUT:-/dev/null}"

# merge joins shard reports ($(SHARDS)/*/report.json) into $(REPORT) and diffs it against $(BASELINE).
merge:
	$(KMATRIX) report merge --out $(REPORT) $(SHARDS)/*/report.json
	$(KMATRIX) report diff --out $(REPORT)/diff.md $(if $(BASELINE),--baseline $(BASELINE)) $(if $(ALLOW_MISSING_BASELINE),--allow-missing-baseline) $(REPORT)/report.json

# summary appends the report's Markdown table to the GitHub job summary (or prints it).
summary:
	@if [ -f $(REPORT)/report.md ]; then cat $(REPORT)/report.md >> "$${GITHUB_STEP_SUMMARY:-/dev/stdout}"; else echo "no $(REPORT)/report.md: did the matrix run?"; fi
	@if [ -f $(REPORT)/diff.md ]; then cat $(REPORT)/diff.md >> "$${GITHUB_STEP_SUMMARY:-/dev/stdout}"; fi

# install puts the kmatrix command in $(go env GOPATH)/bin (on PATH in
# GitHub Actions after actions/setup-go): what the reusable workflow runs.
install:
	$(GO) install ./matrix/cmd/kmatrix

# shard-plan prints the shard numbers 1..COUNT as a JSON list, as a GitHub
# step output (shards=[1,2,...]) when run in Actions: the reusable
# workflow's job matrix, one job per `kmatrix run --shard i/COUNT`.
COUNT ?= 1
shard-plan:
	@n=$(COUNT); case "$$n" in ''|*[!0-9]*|0) echo "shard-plan: COUNT=$$n: want a whole number of shards, at least 1" >&2; exit 2;; esac; \
		list=$$(seq -s, 1 "$$n"); echo "shards=[$$list]" | tee -a "$${GITHUB_OUTPUT:-/dev/null}"

# ci-setup gives a GitHub runner's user /dev/kvm (the usual udev rule) and
# unprivileged user namespaces (for build roots).
ci-setup:
	echo 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"' | $(SUDO) tee /etc/udev/rules.d/99-kvm4all.rules
	$(SUDO) udevadm control --reload-rules && $(SUDO) udevadm trigger --name-match=kvm || true
	$(SUDO) sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 || true
