# kmatrix: `make matrix` runs the default kernel matrix, `make test` runs everything CI runs.
# Both install what they need first (see `deps`).
GO ?= go
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
export CGO_ENABLED ?= 0

.PHONY: deps test matrix bench generate lint vet unit

# deps installs the Debian packages kmatrix needs, only those missing.
DEB_DEPS := qemu-system-x86 gcc make mmdebstrap
deps:
	@missing=$$(for p in $(DEB_DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all present ($(DEB_DEPS))"; fi

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

test: deps vet
	$(GO) test -count=1 -timeout 60m ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 3x -timeout 60m ./...
