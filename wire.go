package hoso

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// wireFields are the fields of wireEvent in their order, by JSON name.
var wireFields = [...]string{
	"id", "type", "dossier", "unit", "at", "procedure", "channel", "due", "days",
	"to_unit", "outcome", "reason", "expected_version",
}

// decodePlain fills w from data when data is what desk systems send: one
// JSON object whose keys are wireEvent's, each at most once and spelled
// exactly, whose values are strings without escapes (valid UTF-8, no
// control characters) and, for days and expected_version, numbers; with
// nothing around it but whitespace. It reads them in one pass with one
// copy of the text for all fields, where encoding/json reflects field by
// field. For anything else it answers false, and encoding/json reads data
// and, when it is wrong, says how; where both read, they read the same
// (FuzzDecodeEvent).
func (w *wireEvent) decodePlain(data []byte) bool {
	var spans [len(wireFields)][2]int // start and end of each value, end 0 when absent
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			keyStart, keyEnd, ok := plainString(data, i)
			if !ok {
				return false
			}
			field := wireField(data[keyStart:keyEnd])
			if field < 0 || spans[field][1] != 0 {
				return false
			}
			if i = skipSpace(data, keyEnd+1); i == len(data) || data[i] != ':' {
				return false
			}
			i = skipSpace(data, i+1)
			var start, end int
			if name := wireFields[field]; name == "days" || name == "expected_version" {
				start = i
				if end, ok = numberEnd(data, i); !ok {
					return false
				}
				i = end
			} else {
				if start, end, ok = plainString(data, i); !ok {
					return false
				}
				i = end + 1
			}
			spans[field] = [2]int{start, end}
			if i = skipSpace(data, i); i == len(data) {
				return false
			}
			if data[i] == '}' {
				i++
				break
			}
			if data[i] != ',' {
				return false
			}
			i = skipSpace(data, i+1)
		}
	}
	if skipSpace(data, i) != len(data) {
		return false
	}
	text := string(data)
	for field, span := range spans {
		if span[1] == 0 {
			continue
		}
		v := text[span[0]:span[1]]
		w.plain[field] = v
		p := &w.plain[field]
		switch wireFields[field] {
		case "id":
			w.ID = p
		case "type":
			w.Type = p
		case "dossier":
			w.Dossier = p
		case "unit":
			w.Unit = p
		case "at":
			w.At = p
		case "procedure":
			w.Procedure = p
		case "channel":
			w.Channel = p
		case "due":
			w.Due = p
		case "days":
			w.plainDays = data[span[0]:span[1]]
			w.Days = &w.plainDays
		case "to_unit":
			w.ToUnit = p
		case "outcome":
			w.Outcome = p
		case "reason":
			w.Reason = p
		case "expected_version":
			w.plainExpectedVersion = data[span[0]:span[1]]
			w.ExpectedVersion = &w.plainExpectedVersion
		}
	}
	return true
}

func wireField(key []byte) int {
	for i, name := range wireFields {
		if string(key) == name {
			return i
		}
	}
	return -1
}

// skipSpace skips JSON whitespace from i.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// plainString finds the JSON string at i when it has no escapes and its
// content is valid UTF-8 without control characters, which encoding/json
// takes as is: the content is data[start:end] and the closing quote is at
// end.
func plainString(data []byte, i int) (start, end int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, 0, false
	}
	ascii := true
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			if !ascii && !utf8.Valid(data[i+1:j]) {
				return 0, 0, false
			}
			return i + 1, j, true
		case c == '\\' || c < 0x20:
			return 0, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return 0, 0, false
}

// numberEnd finds the end of the JSON number at i, checked against JSON's
// grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(data []byte, i int) (int, bool) {
	digits := func() int {
		n := 0
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i, n = i+1, n+1
		}
		return n
	}
	if i < len(data) && data[i] == '-' {
		i++
	}
	intStart := i
	if n := digits(); n == 0 || (n > 1 && data[intStart] == '0') {
		return 0, false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if digits() == 0 {
			return 0, false
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false
		}
	}
	return i, true
}

// unmarshalFloat reads raw into a float64 as json.Unmarshal does, without
// its machinery for the plain number raw nearly always is.
func unmarshalFloat(raw json.RawMessage) (float64, error) {
	if end, ok := numberEnd(raw, 0); ok && end == len(raw) {
		return strconv.ParseFloat(string(raw), 64)
	}
	return unmarshalJSON[float64](raw)
}

// unmarshalInt reads raw into an int as json.Unmarshal does, likewise.
func unmarshalInt(raw json.RawMessage) (int, error) {
	if end, ok := numberEnd(raw, 0); ok && end == len(raw) {
		n, err := strconv.ParseInt(string(raw), 10, 0)
		return int(n), err
	}
	return unmarshalJSON[int](raw)
}

// unmarshalJSON is json.Unmarshal into a new T, apart so that the fast
// paths above keep their values off the heap.
func unmarshalJSON[T any](raw json.RawMessage) (T, error) {
	var v T
	err := json.Unmarshal(raw, &v)
	return v, err
}
