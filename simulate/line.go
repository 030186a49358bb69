package simulate

import (
	"encoding/json"
	"time"

	"github.com/hoso-ledger/hoso"
)

// wireEvent is an event as a desk system sends it: local times with their
// offset, days instead of a computed due on received.
type wireEvent struct {
	ID        string  `json:"id"`
	Type      string  `json:"type"`
	Dossier   string  `json:"dossier"`
	Unit      string  `json:"unit"`
	At        string  `json:"at"`
	Procedure string  `json:"procedure,omitempty"`
	Channel   string  `json:"channel,omitempty"`
	Days      float64 `json:"days,omitempty"`
	Due       string  `json:"due,omitempty"`
	ToUnit    string  `json:"to_unit,omitempty"`
	Outcome   string  `json:"outcome,omitempty"`
	Reason    string  `json:"reason,omitempty"`
}

// AppendLine appends e as one NDJSON line (with its newline) to b, in the
// form POST /v1/events and hoso.ingest accept.
func AppendLine(b []byte, e *hoso.Event) []byte {
	w := wireEvent{
		ID: e.ID, Type: string(e.Type), Dossier: e.Dossier, Unit: e.Unit, At: local(e.At),
		Procedure: e.Procedure, Channel: string(e.Channel), Days: e.Days, ToUnit: e.ToUnit,
		Outcome: string(e.Outcome), Reason: e.Reason,
	}
	if !e.Due.IsZero() && e.Days == 0 {
		w.Due = local(e.Due)
	}
	data, _ := json.Marshal(w) // cannot fail: strings and a number
	return append(append(b, data...), '\n')
}

func local(t time.Time) string { return t.In(hoso.VietnamZone).Format(time.RFC3339) }
