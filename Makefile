# custos: make test runs every test with real parts (pcscd with virtual
# cards, SoftHSM tokens, pdftoppm, zbarimg); make demo runs the main job.

GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: all build test demo deps vet fmt bench

all: build

deps:
	bash .ci/deps

build:
	$(GO) build -o bin/custos ./cmd/custos

# Tests run under a private pcscd that .ci/with-pcscd starts and stops.
test: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	bash .ci/with-pcscd $(GO) test -count=1 -timeout 40m ./...

demo: deps build
	bash .ci/with-pcscd bash .ci/demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./shares/ ./hsm/

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
