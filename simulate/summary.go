package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hoso-ledger/hoso"
)

// Counts is what the generator produced for one unit over the period, under
// the names of the report's columns: dossiers received (by channel),
// resolved (against the statutory due), withdrawn, and open at the end
// (pending).
type Counts struct {
	Received       int64 `json:"received"`
	ReceivedOnline int64 `json:"received_online"`
	ReceivedDirect int64 `json:"received_direct"`
	ReceivedPostal int64 `json:"received_postal"`
	Resolved       int64 `json:"resolved"`
	ResolvedEarly  int64 `json:"resolved_early"`
	ResolvedOnTime int64 `json:"resolved_on_time"`
	ResolvedLate   int64 `json:"resolved_late"`
	Withdrawn      int64 `json:"withdrawn"`
	Pending        int64 `json:"pending"`
}

func (c *Counts) add(o *Counts) {
	c.Received += o.Received
	c.ReceivedOnline += o.ReceivedOnline
	c.ReceivedDirect += o.ReceivedDirect
	c.ReceivedPostal += o.ReceivedPostal
	c.Resolved += o.Resolved
	c.ResolvedEarly += o.ResolvedEarly
	c.ResolvedOnTime += o.ResolvedOnTime
	c.ResolvedLate += o.ResolvedLate
	c.Withdrawn += o.Withdrawn
	c.Pending += o.Pending
}

// SummaryRow is one unit of the summary's level, or the own row of a unit
// above it.
type SummaryRow struct {
	Unit string `json:"unit"`
	Name string `json:"name"`
	Own  bool   `json:"own,omitempty"`
	Counts
}

// Summary is the generator's own account of a run. Each dossier counts for
// the unit that owned it when the event happened (the receiving unit for
// received), taken up to the summary's level with the hierarchy of the
// period's last day, as a report over the same period counts it. Dossiers
// owned above that level are in the own row of their unit, before the
// level's rows (by level, then code) as in a report; Total sums the rows.
type Summary struct {
	Unit      string       `json:"unit"`
	Level     hoso.Level   `json:"level"`
	From      string       `json:"from"`
	To        string       `json:"to"`
	Seed      uint64       `json:"seed"`
	LateShare float64      `json:"late_share"`
	Dossiers  int64        `json:"dossiers"`
	Events    int64        `json:"events"`
	Rows      []SummaryRow `json:"rows"`
	Total     Counts       `json:"total"`
}

// WriteJSON writes the summary as indented JSON.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// WriteText writes the summary as an aligned table, rows with nothing
// left out.
func (s *Summary) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "simulated %d dossiers, %d events, unit %s, %s … %s, seed %d\n",
		s.Dossiers, s.Events, s.Unit, s.From, s.To, s.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join([]string{string(s.Level), "received", "online", "direct", "postal",
		"resolved", "early", "on_time", "late", "withdrawn", "open_at_end", ""}, "\t"))
	line := func(name string, c *Counts) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, c.Received, c.ReceivedOnline,
			c.ReceivedDirect, c.ReceivedPostal, c.Resolved, c.ResolvedEarly, c.ResolvedOnTime, c.ResolvedLate,
			c.Withdrawn, c.Pending)
	}
	for i := range s.Rows {
		if s.Rows[i].Counts != (Counts{}) {
			line(s.Rows[i].Unit, &s.Rows[i].Counts)
		}
	}
	line("total", &s.Total)
	return tw.Flush()
}
