package hoso

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// decodeStoredCanonical parses data when it is exactly what MarshalStored
// writes: the fields in their order, no whitespace, strings without
// escapes, times as UTC RFC 3339 with at most nine fraction digits, a plain
// integer version. That is every event of the ledger, and reading them is
// most of the work of a rebuild or a verification, where encoding/json's
// reflection costs several times the parse. Anything else answers ok false
// and UnmarshalStored parses it with encoding/json; where both parse, they
// give the same event (FuzzUnmarshalStored).
func decodeStoredCanonical(data []byte) (e *Event, ok bool) {
	p := storedParser{b: data}
	e = &Event{}
	var typ string
	ok = p.lit(`{"id":`) && p.str(&e.ID) &&
		p.lit(`,"type":`) && p.known(&typ, eventTypeNames) &&
		p.lit(`,"dossier":`) && p.str(&e.Dossier) &&
		p.lit(`,"unit":`) && p.str(&e.Unit) &&
		p.lit(`,"at":`) && p.time(&e.At)
	if !ok {
		return nil, false
	}
	e.Type = EventType(typ)
	var s string
	if p.lit(`,"procedure":`) && !p.str(&e.Procedure) {
		return nil, false
	}
	if p.lit(`,"channel":`) {
		if !p.known(&s, channelNames) {
			return nil, false
		}
		e.Channel = Channel(s)
	}
	if p.lit(`,"due":`) {
		b, ok := p.raw()
		if !ok {
			return nil, false
		}
		if len(b) > 0 {
			var due time.Time
			if due, ok = parseUTC(b); !ok {
				return nil, false
			}
			e.Due = due
		}
	}
	if p.lit(`,"days":`) && !p.float(&e.Days) {
		return nil, false
	}
	if p.lit(`,"to_unit":`) && !p.str(&e.ToUnit) {
		return nil, false
	}
	if p.lit(`,"outcome":`) {
		if !p.known(&s, outcomeNames) {
			return nil, false
		}
		e.Outcome = Outcome(s)
	}
	if p.lit(`,"reason":`) && !p.str(&e.Reason) {
		return nil, false
	}
	ok = p.lit(`,"version":`) && p.int(&e.Version) &&
		p.lit(`,"recorded_at":`) && p.time(&e.RecordedAt)
	if !ok {
		return nil, false
	}
	if p.lit(`,"by":`) && !p.str(&e.By) {
		return nil, false
	}
	if !p.lit(`}`) || p.i != len(p.b) {
		return nil, false
	}
	return e, true
}

// The values of the stored events' enumerations, which the parser gives
// as these strings rather than a copy of the input for each event.
var (
	eventTypeNames = []string{string(EventReceived), string(EventTransferred), string(EventSupplementRequested),
		string(EventSupplementReceived), string(EventExtended), string(EventOverdue), string(EventResolved),
		string(EventReturned), string(EventWithdrawn)}
	channelNames = []string{string(ChannelDirect), string(ChannelOnline), string(ChannelPostal)}
	outcomeNames = []string{string(OutcomeApproved), string(OutcomeRejected)}
)

type storedParser struct {
	b []byte
	i int
}

// lit consumes s if the input continues with it.
func (p *storedParser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// str consumes a JSON string without escapes whose content is valid UTF-8
// without control characters (what encoding/json would take as is).
func (p *storedParser) str(dst *string) bool {
	b, ok := p.raw()
	if ok {
		*dst = string(b)
	}
	return ok
}

// known is str giving the element of values equal to the string, if any:
// no copy.
func (p *storedParser) known(dst *string, values []string) bool {
	b, ok := p.raw()
	if !ok {
		return false
	}
	for _, v := range values {
		if string(b) == v {
			*dst = v
			return true
		}
	}
	*dst = string(b)
	return true
}

// raw consumes a string as str does and returns its content, a part of
// the input.
func (p *storedParser) raw() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	ascii := true
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := p.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			p.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// int consumes a non-negative JSON integer of at most 9 digits.
func (p *storedParser) int(dst *int) bool {
	n, j := 0, p.i
	for ; j < len(p.b) && j-p.i < 10 && p.b[j] >= '0' && p.b[j] <= '9'; j++ {
		n = n*10 + int(p.b[j]-'0')
	}
	digits := j - p.i
	if digits == 0 || digits > 9 || (digits > 1 && p.b[p.i] == '0') {
		return false
	}
	*dst, p.i = n, j
	return true
}

// float consumes a JSON number, read as encoding/json reads one into a
// float64: the literal, checked against JSON's grammar, by
// strconv.ParseFloat. Out of range, encoding/json fails: so does float.
func (p *storedParser) float(dst *float64) bool {
	j := p.i
	digits := func() int {
		n := 0
		for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
			j, n = j+1, n+1
		}
		return n
	}
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	intStart := j
	if n := digits(); n == 0 || (n > 1 && p.b[intStart] == '0') {
		return false
	}
	if j < len(p.b) && p.b[j] == '.' {
		j++
		if digits() == 0 {
			return false
		}
	}
	if j < len(p.b) && (p.b[j] == 'e' || p.b[j] == 'E') {
		j++
		if j < len(p.b) && (p.b[j] == '+' || p.b[j] == '-') {
			j++
		}
		if digits() == 0 {
			return false
		}
	}
	f, err := strconv.ParseFloat(string(p.b[p.i:j]), 64)
	if err != nil {
		return false
	}
	*dst, p.i = f, j
	return true
}

// time consumes a JSON string holding a UTC time (parseUTC).
func (p *storedParser) time(dst *time.Time) bool {
	b, ok := p.raw()
	if !ok {
		return false
	}
	t, ok := parseUTC(b)
	*dst = t
	return ok
}

// parseUTC parses YYYY-MM-DDTHH:MM:SS[.F{1,9}]Z, a valid date and time,
// which time.Parse with RFC 3339 reads the same.
func parseUTC[T string | []byte](s T) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for i := from; i < to; i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
			n = n*10 + int(s[i]-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, false
	}
	nsec := 0
	if rest := s[19 : len(s)-1]; len(rest) > 0 {
		digits := len(rest) - 1
		if rest[0] != '.' || digits < 1 || digits > 9 {
			return time.Time{}, false
		}
		f, ok := num(20, 20+digits)
		if !ok {
			return time.Time{}, false
		}
		for range 9 - digits {
			f *= 10
		}
		nsec = f
	}
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 ||
		day > time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// appendStoredCanonical appends the stored form of e as encoding/json
// writes it (MarshalStored), byte for byte, without reflection:
// MarshalStored runs for every event appended (twice for an event sent
// without id), where encoding/json's reflection costs several times the
// writing. It answers ok false for what it does not write itself: text that
// encoding/json escapes, a time outside the years 0 to 9999 (which
// encoding/json refuses), days that it writes with an exponent or refuses.
// MarshalStored then leaves those to encoding/json (FuzzMarshalStored
// checks both write the same).
func appendStoredCanonical(b []byte, e *Event) ([]byte, bool) {
	ok := true
	str := func(name, v string) {
		b = append(b, name...)
		b, ok = appendPlainString(b, v, ok)
	}
	tm := func(name string, t time.Time) {
		b = append(b, name...)
		if b, ok = appendUTC(append(b, '"'), t.UTC(), ok); ok {
			b = append(b, '"')
		}
	}
	str(`{"id":`, e.ID)
	str(`,"type":`, string(e.Type))
	str(`,"dossier":`, e.Dossier)
	str(`,"unit":`, e.Unit)
	tm(`,"at":`, e.At)
	if e.Procedure != "" {
		str(`,"procedure":`, e.Procedure)
	}
	if e.Channel != "" {
		str(`,"channel":`, string(e.Channel))
	}
	if !e.Due.IsZero() {
		tm(`,"due":`, e.Due)
	}
	if e.Days != 0 {
		// encoding/json writes a float64 in 'f' form from 1e-6 to 1e21.
		if abs := math.Abs(e.Days); !(abs >= 1e-6 && abs < 1e21) {
			return nil, false
		}
		b = strconv.AppendFloat(append(b, `,"days":`...), e.Days, 'f', -1, 64)
	}
	if e.ToUnit != "" {
		str(`,"to_unit":`, e.ToUnit)
	}
	if e.Outcome != "" {
		str(`,"outcome":`, string(e.Outcome))
	}
	if e.Reason != "" {
		str(`,"reason":`, e.Reason)
	}
	b = strconv.AppendInt(append(b, `,"version":`...), int64(e.Version), 10)
	tm(`,"recorded_at":`, e.RecordedAt)
	if e.By != "" {
		str(`,"by":`, e.By)
	}
	return append(b, '}'), ok
}

// appendUTC appends t, a UTC time, as t.AppendFormat(b, time.RFC3339Nano)
// does, when its year is within 0 to 9999; otherwise it answers false.
func appendUTC(b []byte, t time.Time, ok bool) ([]byte, bool) {
	year, month, day := t.Date()
	if !ok || year < 0 || year > 9999 {
		return b, false
	}
	hour, minute, sec := t.Clock()
	two := func(n int) { b = append(b, byte('0'+n/10), byte('0'+n%10)) }
	two(year / 100)
	two(year % 100)
	b = append(b, '-')
	two(int(month))
	b = append(b, '-')
	two(day)
	b = append(b, 'T')
	two(hour)
	b = append(b, ':')
	two(minute)
	b = append(b, ':')
	two(sec)
	if ns := t.Nanosecond(); ns != 0 {
		var digits [9]byte
		for i := len(digits) - 1; i >= 0; i-- {
			digits[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := len(digits)
		for digits[n-1] == '0' {
			n--
		}
		b = append(append(b, '.'), digits[:n]...)
	}
	return append(b, 'Z'), true
}

// appendPlainString appends v quoted when encoding/json would write it
// without escapes: valid UTF-8 without control characters, quotes,
// backslashes, the HTML characters < > & and the line separators U+2028
// and U+2029. Otherwise it answers false.
func appendPlainString(b []byte, v string, ok bool) ([]byte, bool) {
	if !ok {
		return b, false
	}
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return b, false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			return b, false
		}
		i += size
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"'), true
}
