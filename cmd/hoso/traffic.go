package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go"
)

// lineResult is the ledger's answer to one NDJSON line.
type lineResult struct {
	Duplicate bool
	Err       *hoso.ErrorDetail
}

// sender delivers a batch of NDJSON lines (no empty ones) to a ledger and
// answers one result per line, in order. An error means the batch as a
// whole may not have been delivered; re-sending it is safe (ids).
type sender interface {
	send(ctx context.Context, lines [][]byte) ([]lineResult, error)
}

// serviceSender validates and appends in this process, through the same
// ingest service as the HTTP and NATS doors.
type serviceSender struct{ svc hoso.EventService }

func (s serviceSender) send(ctx context.Context, lines [][]byte) ([]lineResult, error) {
	p := &hoso.Payload{Batch: true, Events: make([]*hoso.Event, len(lines)), Errs: make([]error, len(lines))}
	for i, line := range lines {
		p.Events[i], p.Errs[i] = hoso.DecodeEvent(line)
	}
	results := hoso.Ingest(ctx, s.svc, p)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]lineResult, len(results))
	for i, r := range results {
		if r.Err != nil {
			if hoso.ErrorCode(r.Err) == hoso.EINTERNAL {
				return nil, r.Err // the store failed: stop, resumable
			}
			d := hoso.NewErrorBody(r.Err).Error
			out[i].Err = &d
			continue
		}
		out[i].Duplicate = r.Result.Duplicate
	}
	return out, nil
}

// httpSender posts NDJSON batches to a running server's POST /v1/events.
type httpSender struct {
	client *http.Client
	url    string
}

func (s httpSender) send(ctx context.Context, lines [][]byte) ([]lineResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.url, "/")+"/v1/events", bytes.NewReader(bytes.Join(lines, []byte("\n"))))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST /v1/events: %s: %.300s", resp.Status, body)
	}
	return decodeBatchAnswer(body, len(lines))
}

// natsSender requests the ingest service with NDJSON batches: on the desk's
// own subject, or on hoso.ingest with the desk's bearer token for the
// shared desk role.
type natsSender struct {
	nc      *nats.Conn
	subject string
	token   string
	timeout time.Duration
}

func (s natsSender) send(ctx context.Context, lines [][]byte) ([]lineResult, error) {
	msg := nats.NewMsg(s.subject)
	msg.Header.Set("Content-Type", "application/x-ndjson")
	if s.token != "" {
		msg.Header.Set("Authorization", "Bearer "+s.token)
	}
	msg.Data = bytes.Join(lines, []byte("\n"))
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	reply, err := s.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", s.subject, err)
	}
	return decodeBatchAnswer(reply.Data, len(lines))
}

// decodeBatchAnswer reads {"results":[…]} and checks it has n items; a
// whole-request error ({"error":…}) is returned as an error.
func decodeBatchAnswer(body []byte, n int) ([]lineResult, error) {
	var answer struct {
		Results []struct {
			Duplicate bool              `json:"duplicate"`
			Error     *hoso.ErrorDetail `json:"error"`
		} `json:"results"`
		Error *hoso.ErrorDetail `json:"error"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, fmt.Errorf("unreadable answer: %w: %.300s", err, body)
	}
	if answer.Error != nil {
		return nil, fmt.Errorf("batch refused: %s: %s", answer.Error.Code, answer.Error.Message)
	}
	if len(answer.Results) != n {
		return nil, fmt.Errorf("answer has %d results for %d events", len(answer.Results), n)
	}
	out := make([]lineResult, n)
	for i, r := range answer.Results {
		out[i] = lineResult{Duplicate: r.Duplicate, Err: r.Error}
		if r.Error != nil && r.Error.Code == hoso.EINTERNAL {
			return nil, fmt.Errorf("ledger failed: %s", r.Error.Message)
		}
	}
	return out, nil
}

// tally counts what a ledger answered.
type tally struct {
	Appended, Duplicates, Rejected int64
}

func (t *tally) add(results []lineResult) {
	for _, r := range results {
		switch {
		case r.Err != nil:
			t.Rejected++
		case r.Duplicate:
			t.Duplicates++
		default:
			t.Appended++
		}
	}
}

// progress prints a line at most every interval.
type progress struct {
	w        io.Writer
	name     string
	start    time.Time
	last     time.Time
	interval time.Duration
}

func newProgress(w io.Writer, name string) *progress {
	now := time.Now()
	return &progress{w: w, name: name, start: now, last: now, interval: 2 * time.Second}
}

func (p *progress) maybe(done int64, format string, args ...any) {
	if time.Since(p.last) < p.interval {
		return
	}
	p.line(done, format, args...)
}

func (p *progress) line(done int64, format string, args ...any) {
	p.last = time.Now()
	rate := float64(done) / max(time.Since(p.start).Seconds(), 1e-9)
	fmt.Fprintf(p.w, "%s: %s (%.0f/s)\n", p.name, fmt.Sprintf(format, args...), rate)
}

// dial returns the sender for a running ledger: HTTP if url is set,
// otherwise NATS. On NATS the desk whose bearer token is in tokenFile
// connects with it and sends to its own subject; with nkeyFile (the shared
// desk role's NKey seed, DATA/nats-desk.nk on the embedded server) it
// sends to hoso.ingest with the token in a header instead. close releases
// it.
func dial(url, natsURL, nkeyFile, tokenFile string, timeout time.Duration) (s sender, closeFn func(), err error) {
	if url != "" {
		client, err := tokenClient(tokenFile, timeout, nil)
		if err != nil {
			return nil, nil, err
		}
		return httpSender{client: client, url: url}, func() {}, nil
	}
	var token string
	if tokenFile != "" {
		if token, err = readTokenFile(tokenFile); err != nil {
			return nil, nil, err
		}
	}
	opts := []nats.Option{nats.Name("hoso")}
	switch {
	case nkeyFile != "":
		auth, err := nats.NkeyOptionFromSeed(nkeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("nats-nkey: %w", err)
		}
		opts = append(opts, auth)
	case token != "":
		opts = append(opts, nats.Token(token))
	}
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("nats-url %s: %w", natsURL, err)
	}
	if nkeyFile != "" || token == "" {
		return natsSender{nc: nc, subject: eventstore.IngestSubject, token: token, timeout: timeout}, nc.Close, nil
	}
	subject, err := eventstore.LearnDeskSubject(nc, timeout)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("nats-url %s: %w", natsURL, err)
	}
	return natsSender{nc: nc, subject: subject, timeout: timeout}, nc.Close, nil
}
