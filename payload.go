package hoso

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// Payload is a decoded ingest request: the events, in order, each decoded or
// with its own decode error, and whether the sender asked for a batch answer.
type Payload struct {
	Batch  bool
	Events []*Event
	Errs   []error // Errs[i] is the decode error of the i-th item, or nil
}

// ParsePayload splits an ingest body into events. The body is one JSON
// object (a single answer), a JSON array of objects, or NDJSON — one object
// per line — (batch answers). ndjson forces the NDJSON reading, as the
// application/x-ndjson content type does; otherwise several concatenated
// objects are read as NDJSON too. A body that cannot be split at all is an
// EINVALID error; an item that fails to decode only fails that item.
func ParsePayload(body []byte, ndjson bool) (*Payload, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, Errorf(EINVALID, "empty body: send one event object, a JSON array of events, or NDJSON")
	}
	if !ndjson && trimmed[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, jsonError(err)
		}
		if len(items) == 0 {
			return nil, Errorf(EINVALID, "empty array: send at least one event")
		}
		return decodeItems(items, true), nil
	}
	if !ndjson && trimmed[0] == '{' {
		// The usual single event, read in one pass rather than split off
		// first and decoded after.
		var w wireEvent
		if w.decodePlain(trimmed) {
			e, err := w.event()
			return &Payload{Events: []*Event{e}, Errs: []error{err}}, nil
		}
	}
	if ndjson {
		var items []json.RawMessage
		for line := range bytes.SplitSeq(trimmed, []byte("\n")) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				items = append(items, json.RawMessage(line))
			}
		}
		return decodeItems(items, true), nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var items []json.RawMessage
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if len(items) == 0 {
				return nil, jsonError(err)
			}
			// Keep what was read; the unreadable rest fails as one item.
			items = append(items, json.RawMessage(trimmed[dec.InputOffset():]))
			break
		}
		items = append(items, raw)
	}
	return decodeItems(items, len(items) > 1), nil
}

func decodeItems(items []json.RawMessage, batch bool) *Payload {
	p := &Payload{Batch: batch, Events: make([]*Event, len(items)), Errs: make([]error, len(items))}
	for i, item := range items {
		p.Events[i], p.Errs[i] = DecodeEvent(item)
	}
	return p
}

// ErrorBody is the JSON error answer of every door (HTTP and NATS).
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what was wrong, and with which field.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// NewErrorBody returns the error answer for err.
func NewErrorBody(err error) ErrorBody {
	var e *Error
	d := ErrorDetail{Code: ErrorCode(err), Message: ErrorMessage(err)}
	if errors.As(err, &e) {
		d.Field = e.Field
	}
	return ErrorBody{Error: d}
}

// BatchAnswer is the answer to a batch: one item per event, in order.
type BatchAnswer struct {
	Results []BatchItem `json:"results"`
}

// BatchItem is either a result or an error.
type BatchItem struct {
	*AppendResult
	Error *ErrorDetail `json:"error,omitempty"`
}

// RejectionRecorder is implemented by an EventService that also counts the
// events refused before they reach it, because they did not decode; Ingest
// tells it of each.
type RejectionRecorder interface {
	RecordRejected(err error)
}

// Ingest runs a parsed payload through svc: events that failed to decode
// keep their error, the others are appended in order.
func Ingest(ctx context.Context, svc EventService, p *Payload) []BatchResult {
	results := make([]BatchResult, len(p.Events))
	var todo []*Event
	var at []int
	recorder, _ := svc.(RejectionRecorder)
	for i, e := range p.Events {
		if p.Errs[i] != nil {
			results[i].Err = p.Errs[i]
			if recorder != nil {
				recorder.RecordRejected(p.Errs[i])
			}
			continue
		}
		todo = append(todo, e)
		at = append(at, i)
	}
	if len(todo) > 0 {
		for j, r := range svc.AppendBatch(ctx, todo) {
			results[at[j]] = r
		}
	}
	return results
}

// NewBatchAnswer renders batch results.
func NewBatchAnswer(results []BatchResult) BatchAnswer {
	a := BatchAnswer{Results: make([]BatchItem, len(results))}
	for i, r := range results {
		if r.Err != nil {
			d := NewErrorBody(r.Err).Error
			a.Results[i].Error = &d
			continue
		}
		res := r.Result
		a.Results[i].AppendResult = &res
	}
	return a
}

// AppendJSON appends r as encoding/json writes it, without reflection.
func (r AppendResult) AppendJSON(b []byte) []byte {
	b = appendJSONString(append(b, `{"dossier":`...), r.Dossier)
	b = strconv.AppendInt(append(b, `,"version":`...), int64(r.Version), 10)
	b = strconv.AppendUint(append(b, `,"seq":`...), r.Seq, 10)
	b = strconv.AppendBool(append(b, `,"duplicate":`...), r.Duplicate)
	return append(b, '}')
}

// AppendBatchAnswer appends the answer to a batch, NewBatchAnswer(results),
// as encoding/json writes it, without reflection: a batch of 1,000 events
// is answered with 1,000 items.
func AppendBatchAnswer(b []byte, results []BatchResult) []byte {
	b = append(b, `{"results":[`...)
	for i, r := range results {
		if i > 0 {
			b = append(b, ',')
		}
		if r.Err == nil {
			b = r.Result.AppendJSON(b)
			continue
		}
		d := NewErrorBody(r.Err).Error
		b = appendJSONString(append(b, `{"error":{"code":`...), d.Code)
		b = appendJSONString(append(b, `,"message":`...), d.Message)
		if d.Field != "" {
			b = appendJSONString(append(b, `,"field":`...), d.Field)
		}
		b = append(b, "}}"...)
	}
	return append(b, "]}"...)
}

// appendJSONString appends v as encoding/json writes a string: by hand when
// nothing in it needs escaping, by encoding/json when something does.
func appendJSONString(b []byte, v string) []byte {
	if out, ok := appendPlainString(b, v, true); ok {
		return out
	}
	quoted, _ := json.Marshal(v) // cannot fail: any string encodes
	return append(b, quoted...)
}
