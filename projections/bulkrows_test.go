package projections

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"math"
	"path/filepath"
	"testing"
)

// TestBulkRowsRoundTrip writes values with bulkRows and reads them back:
// quotes, NUL bytes, invalid UTF-8, empty text, NULL and extreme integers
// arrive as they were, over several statements and a last shorter one.
func TestBulkRowsRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE t (i INTEGER PRIMARY KEY, s TEXT, n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	texts := []string{"", "'", "''", "O'Brien", "a\x00b", "\x00", "thiếu giấy tờ", "\xff\xfe", `"; DROP TABLE t; --`, "\\", "(),"}
	ints := []int64{0, -1, 1, math.MaxInt64, math.MinInt64, math.MinInt64 + 1, -42}
	var rows int
	err = rawTx(ctx, db, func(conn driver.Conn) error {
		w := newBulkRows(ctx, conn, `INSERT INTO t (i, s, n)`, 3, "")
		rows = 5*w.per + 7
		for i := range rows {
			w.row().int(int64(i)).str(texts[i%len(texts)])
			if i%7 == 0 {
				w.null()
			} else {
				w.int(ints[i%len(ints)])
			}
			if err := w.end(); err != nil {
				return err
			}
		}
		return w.flush()
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Query(`SELECT i, CAST(s AS BLOB), n FROM t ORDER BY i`)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	seen := 0
	for got.Next() {
		var i int
		var s []byte
		var n sql.NullInt64
		if err := got.Scan(&i, &s, &n); err != nil {
			t.Fatal(err)
		}
		if want := texts[i%len(texts)]; string(s) != want {
			t.Errorf("row %d: text %q, want %q", i, s, want)
		}
		if i%7 == 0 {
			if n.Valid {
				t.Errorf("row %d: %d, want NULL", i, n.Int64)
			}
		} else if want := ints[i%len(ints)]; !n.Valid || n.Int64 != want {
			t.Errorf("row %d: %v, want %d", i, n, want)
		}
		seen++
	}
	if err := got.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != rows {
		t.Fatalf("%d rows read, want %d", seen, rows)
	}
}
