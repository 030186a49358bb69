package eventstore

import (
	"strings"
	"testing"
)

// FuzzDeskSubjectOf: whatever the server answers to $SYS.REQ.USER.INFO,
// the desk's subject read from it is one that names a valid principal on
// hoso.ingest, or there is an error; it never panics.
func FuzzDeskSubjectOf(f *testing.F) {
	f.Add([]byte(`{"data":{"user":"desk-00127","account":"$G","permissions":{"publish":{"allow":["$SYS.REQ.USER.INFO","$SRV.PING","hoso.ingest.desk-00127"],"deny":["$SYS.REQ.USER.AUTH"]},"subscribe":{"allow":["_INBOX.>"]}}}}`))
	f.Add([]byte(`{"data":{"user":"[REDACTED]","permissions":{"publish":{"allow":["hoso.ingest","hoso.ingest.*","hoso.ingest.a.b"]}}}}`))
	f.Add([]byte(`{"data":{}}`))
	f.Add([]byte(`{"error":{"code":400}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, answer []byte) {
		subj, err := deskSubjectOf(answer)
		if err != nil {
			return
		}
		name, ok := strings.CutPrefix(subj, IngestSubject+".")
		if !ok || CheckPrincipalName(name) != nil || DeskSubject(name) != subj {
			t.Fatalf("subject %q from %s names no desk", subj, answer)
		}
	})
}

func TestDeskSubjectOf(t *testing.T) {
	for _, tt := range []struct{ answer, want string }{
		{`{"data":{"permissions":{"publish":{"allow":["$SYS.REQ.USER.INFO","hoso.ingest.desk-00127"]}}}}`, "hoso.ingest.desk-00127"},
		{`{"data":{"permissions":{"publish":{"allow":["hoso.ingest","hoso.ingest.*","hoso.ingest.>"]}}}}`, ""},
		{`{"data":{"user":"desk"}}`, ""},
		{`not json`, ""},
	} {
		got, err := deskSubjectOf([]byte(tt.answer))
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("deskSubjectOf(%s) = %q, %v; want %q", tt.answer, got, err, tt.want)
		}
	}
}
