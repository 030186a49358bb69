# hoso: the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
DATA     ?= hoso-data
# A count, not a duration: a duration makes go1.26's fuzz coordinator fail now and then with
# "context deadline exceeded" at the deadline (golang/go#75804, fixed in go1.27).
FUZZTIME ?= 30000x
# DEMO: preload a simulated year of Hà Nội on the first `make run` (DEMO=false skips it).
DEMO     ?= true

.PHONY: run test build lint vet fuzz fuzz-corpus bench clean rules bench-smoke faults

## run: serve the ledger on the embedded default (NATS + SQLite under ./hoso-data)
run:
	$(GO) run ./cmd/hoso serve --data $(DATA) --demo=$(DEMO)

## test: formatting, vet, staticcheck, the whole suite with -race (the event store's tests
## again on a stream laid out in 4 subject buckets), every fuzz target over its committed
## corpus and seeds (reproducible: no random mutation), then hoso bench --quick.
## Mutation fuzzing, which finds new inputs and so can fail on any run, is `make fuzz`.
test: lint rules
	$(GO) test -race -count=1 -timeout 30m ./...
	HOSO_TEST_SUBJECT_BUCKETS=4 $(GO) test -race -count=1 ./eventstore
	$(MAKE) fuzz-corpus
	$(MAKE) bench-smoke

## faults: the fault tests (build tag faults, some minutes): the three-node NATS cluster of
## deploy/nats as child processes, its stream leader and a whole hoso process killed with
## SIGKILL mid-ingest, the node restarted; they log what the senders saw. .ci/run runs it.
faults:
	$(GO) vet -tags faults ./eventstore ./cmd/hoso
	$(GO) tool staticcheck -tags faults ./eventstore/... ./cmd/hoso
	$(GO) test -race -count=1 -tags faults -timeout 30m -v -run '^TestCluster' ./eventstore ./cmd/hoso
	HOSO_TEST_SUBJECT_BUCKETS=4 $(GO) test -race -count=1 -tags faults -timeout 30m -v -run '^TestClusterNode' ./eventstore

## fuzz-corpus: every fuzz target over testdata/fuzz and its f.Add seeds, nothing else
fuzz-corpus:
	$(GO) test -count=1 -run '^Fuzz' ./...

## rules: check the Prometheus alert rules and run their unit tests with promtool
rules:
	@if command -v promtool >/dev/null; then \
	  promtool check rules deploy/prometheus/hoso-alerts.yml && \
	  promtool test rules deploy/prometheus/hoso-alerts_test.yml; \
	elif [ "$${CI:-}" = true ]; then \
	  echo "promtool not found: install Debian's prometheus package (.ci/run does)"; exit 1; \
	else \
	  echo "promtool not found: alert rules NOT checked (with CI=true this fails)"; \
	fi

## build: the one binary, in ./bin/hoso
build:
	$(GO) build -o bin/hoso ./cmd/hoso

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## fuzz: mutation-fuzz every decoder's target for FUZZTIME inputs each; a failure writes
## the input under testdata/fuzz, to be fixed and committed with the fix
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEvent$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePlain$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzParsePayload$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzAppendBatchAnswer$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshalStored$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzMarshalStored$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzLedgerEntryDossier$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzCalendarFile$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzUnitsCSV$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzSubjectToken$$' -fuzztime $(FUZZTIME) ./eventstore
	$(GO) test -run '^$$' -fuzz '^FuzzDeskSubjectOf$$' -fuzztime $(FUZZTIME) ./eventstore
	$(GO) test -run '^$$' -fuzz '^FuzzTokenBucketEntry$$' -fuzztime $(FUZZTIME) ./eventstore
	$(GO) test -run '^$$' -fuzz '^FuzzParseCheckpoint$$' -fuzztime $(FUZZTIME) ./transparency
	$(GO) test -run '^$$' -fuzz '^FuzzOpenCheckpoint$$' -fuzztime $(FUZZTIME) ./transparency
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeDossierProof$$' -fuzztime $(FUZZTIME) ./transparency
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBatchAnswer$$' -fuzztime $(FUZZTIME) ./cmd/hoso
	$(GO) test -run '^$$' -fuzz '^FuzzReadQuery$$' -fuzztime $(FUZZTIME) ./handlers
	$(GO) test -run '^$$' -fuzz '^FuzzDashboardQuery$$' -fuzztime $(FUZZTIME) ./handlers

## bench: Go benchmarks of the write path
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

## bench-smoke: hoso bench --quick, to see that every measurement runs (no timing is asserted)
bench-smoke:
	$(GO) run ./cmd/hoso bench --quick > /dev/null

clean:
	rm -rf bin
