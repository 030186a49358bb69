package handlers

import (
	"bytes"
	"mime"
	"net/http"
	"strings"

	"github.com/hoso-ledger/hoso"
)

// handlePostEvents ingests one event (201 with its result), or a JSON array
// or NDJSON batch (200 with one result or error per event, in order).
func (s *Server) handlePostEvents(w http.ResponseWriter, r *http.Request) {
	ndjson, err := ingestMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	payload, err := hoso.ParsePayload(body, ndjson)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	results := hoso.Ingest(r.Context(), s.Events, payload)
	if payload.Batch {
		// Written by hand: the same bytes as writeJSON, without reflecting
		// over one item per event.
		answer := hoso.AppendBatchAnswer(make([]byte, 0, 96*len(results)+16), results)
		writeJSONBody(w, http.StatusOK, append(answer, '\n'))
		return
	}
	if len(results) != 1 {
		s.Error(w, r, hoso.Errorf(hoso.EINVALID, "send one event object, a JSON array of events, or NDJSON"))
		return
	}
	if results[0].Err != nil {
		s.Error(w, r, results[0].Err)
		return
	}
	writeJSONBody(w, http.StatusCreated, append(results[0].Result.AppendJSON(make([]byte, 0, 128)), '\n'))
}

// ingestMediaType accepts application/json (the default when the header is
// absent) and application/x-ndjson, and reports whether the body is NDJSON.
// JSON is UTF-8 by definition, so another declared charset is refused rather
// than misread.
func ingestMediaType(contentType string) (ndjson bool, err error) {
	switch contentType {
	case "application/json":
		return false, nil
	case "application/x-ndjson":
		return true, nil
	}
	if strings.TrimSpace(contentType) == "" {
		return false, nil
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false, hoso.Errorf(hoso.EUNSUPPORTED, "unreadable Content-Type %q: send application/json or application/x-ndjson", contentType)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false, hoso.Errorf(hoso.EUNSUPPORTED, "charset %q is not supported: send UTF-8", cs)
	}
	switch mediaType {
	case "application/json":
		return false, nil
	case "application/x-ndjson":
		return true, nil
	}
	return false, hoso.Errorf(hoso.EUNSUPPORTED, "Content-Type %q is not supported: send application/json or application/x-ndjson", mediaType)
}

// readBody reads the whole body up to the limit. A declared length past the
// limit is refused before reading anything.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := s.maxBodyBytes()
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	// A declared length sizes the buffer once, rather than growing it by
	// copies through a batch of some hundred kilobytes.
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead) // ReadFrom wants MinRead free to look for the end
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		return nil, readError(err)
	}
	return buf.Bytes(), nil
}
