# Secret-rotation suite — build, test, lint, bench, demo.
#   make demo   the whole suite on an embedded local stack (moto, PostgreSQL, Lambda RIE)
#   make test   every test: lint, unit and integration (starts and stops its own servers)
SHELL   := /bin/bash
GO      ?= go
GOARCH_LAMBDA ?= arm64
FUNCTIONS := dbrotate jwtrotate apikeyrotate
BUILD   := build
TOOLS   := $(GO) tool -modfile=tools/go.mod
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
VERSION_FLAG := -X github.com/rotation-suite/rotation/internal/buildinfo.version=$(VERSION)
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags='-s -w $(VERSION_FLAG)'
DEVTOOL := $(GO) run ./internal/devtool
# scripts/prereqs.sh installs moto and cfn-lint into .venv when the system
# python3 lacks them; its tools come first on PATH.
export PATH := $(CURDIR)/.venv/bin:$(PATH)
TEST_TIMEOUT ?= 40m

.PHONY: build-DbRotateFunction build-JwtRotateFunction build-ApiKeyRotateFunction build-WebhookRotateFunction
.PHONY: all build rotate test unit lint bench demo invoke clean prereqs $(addprefix build-,$(FUNCTIONS))

all: build

## build: every function as a Lambda bootstrap for linux/$(GOARCH_LAMBDA), stripped, zipped
build: $(addprefix build-,$(FUNCTIONS))

$(addprefix build-,$(FUNCTIONS)): build-%:
	@mkdir -p $(BUILD)/$*
	GOOS=linux GOARCH=$(GOARCH_LAMBDA) CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o $(BUILD)/$*/bootstrap ./functions/$*
	@rm -f $(BUILD)/$*.zip && cd $(BUILD)/$* && python3 -m zipfile -c ../$*.zip bootstrap
	@ls -l $(BUILD)/$*/bootstrap $(BUILD)/$*.zip | awk '{print $$5, $$9}'

## rotate: the operator tool, static and stripped, with the version stamped (bin/rotate)
rotate:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w $(VERSION_FLAG)' -o bin/rotate ./cmd/rotate
	@ls -l bin/rotate | awk '{print $$5, $$9}'

# SAM (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set. SAM does not pass
# the architecture: for an x86_64 stack build with GOARCH_LAMBDA=amd64 sam build.
build-DbRotateFunction:
	GOOS=linux GOARCH=$(GOARCH_LAMBDA) CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/dbrotate
build-JwtRotateFunction:
	GOOS=linux GOARCH=$(GOARCH_LAMBDA) CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/jwtrotate
build-ApiKeyRotateFunction build-WebhookRotateFunction:
	GOOS=linux GOARCH=$(GOARCH_LAMBDA) CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/apikeyrotate

## prereqs: check what the tests and the demo need, and say how to install what is missing
prereqs:
	@bash scripts/prereqs.sh

## test: the whole suite — lint, then unit and integration tests against real moto, PostgreSQL and the Lambda RIE
test: prereqs lint
	CI=$${CI:-true} $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## unit: the tests without CI strictness (missing servers skip with the install command)
unit:
	$(GO) test ./...

## lint: gofmt, go vet, staticcheck, go mod tidy
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS) staticcheck ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }

## bench: benchmarks on the local stack; results written to docs/BENCHMARKS.md
bench:
	bash scripts/bench.sh

## demo: the whole suite on an embedded local stack, in one command
demo: prereqs
	@echo "building the developer tool (the first run on a cold Go cache takes a minute or two)..."
	$(DEVTOOL) demo

## invoke FUNCTION=dbrotate|jwtrotate|apikeyrotate [STEP=createSecret|setSecret|testSecret|finishSecret|all]:
##   seed a local stack with the sample events' secret and run events/<fn>/<step>.json through the function
##   under the Lambda RIE (earlier steps first; STEP defaults to all), showing the labels after each step.
##   EVENT=file (with AWS_ENDPOINT_URL set) runs one event file against a stack you started yourself.
invoke:
	@test -n "$(FUNCTION)" || { echo "usage: make invoke FUNCTION=dbrotate|jwtrotate|apikeyrotate [STEP=createSecret|setSecret|testSecret|finishSecret|all]"; exit 2; }
	@echo "building the developer tool..."
	@if [ -n "$(EVENT)" ]; then $(DEVTOOL) invoke --function $(FUNCTION) --event $(EVENT); \
	else $(DEVTOOL) invoke --function $(FUNCTION) --step $(or $(STEP),all); fi

clean:
	rm -rf $(BUILD)
