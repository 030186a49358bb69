package projections

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"
	"github.com/pressly/goose/v3"
)

// SchemaVersion is the version of what the projection computes. A file
// built with another version must be rebuilt from the stream (NeedsRebuild);
// bump it whenever a change makes existing rows wrong or incomplete, such as
// a new aggregate table that needs history to fill.
const SchemaVersion = 1

//go:embed migrations/*.sql
var migrations embed.FS

// Meta keys.
const (
	metaSchemaVersion = "schema_version"
	metaAppliedSeq    = "applied_seq"
	metaAppliedTime   = "applied_time"
)

// DB is the SQLite read model: one writer connection, used by the
// projector, and a pool of read-only connections for queries. WAL lets
// readers see the last committed batch while the writer writes the next.
type DB struct {
	path string
	// bulk opens the writer with its rollback journal in memory and
	// without syncs: for a file being rebuilt, which nobody reads and a
	// crash throws away.
	bulk bool

	// mu is held shared by every query and write, and exclusively while a
	// rebuilt file is swapped in, so nothing runs against a closed pool.
	mu  sync.RWMutex
	w   *sql.DB
	r   *sql.DB
	gen uint64 // incremented by every swap; the projector reloads on change

	unitMaps unitMaps // reports' unit mappings, per registry and day
}

// Open opens (creating if needed) the read model at path and migrates its
// schema. A new or empty file is stamped with SchemaVersion; an existing one
// keeps the version it was built with, so NeedsRebuild can tell.
func Open(path string) (*DB, error) {
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("read model path %q: must not contain '?'", path)
	}
	db := &DB{path: path}
	if err := db.open(); err != nil {
		return nil, err
	}
	return db, nil
}

// open opens both pools on db.path and migrates.
func (db *DB) open() error {
	// The writer takes the write lock when a transaction begins, so a batch
	// never fails half-way on a lock upgrade. Page caches, outside the Go
	// heap: 64 MiB for the writer (a rebuild's too), 16 MiB for each of 8
	// readers; a process's memory budget sets them aside (cmd/hoso).
	dsn := db.path + "?_busy_timeout=10000&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate&_cache_size=-65536&_stmt_cache_size=64"
	if db.bulk {
		dsn = db.path + "?_busy_timeout=10000&_journal_mode=OFF&_synchronous=OFF&_txlock=immediate&_cache_size=-65536&_stmt_cache_size=64"
	}
	w, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return fmt.Errorf("open read model %s: %w", db.path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := migrate(w); err != nil {
		w.Close()
		return fmt.Errorf("read model %s: %w", db.path, err)
	}
	if err := stampVersion(w); err != nil {
		w.Close()
		return fmt.Errorf("read model %s: %w", db.path, err)
	}
	if err := optimize(w); err != nil {
		w.Close()
		return fmt.Errorf("read model %s: %w", db.path, err)
	}
	r, err := sql.Open("sqlite3", db.path+"?_busy_timeout=10000&_query_only=1&_cache_size=-16384&_stmt_cache_size=64")
	if err != nil {
		w.Close()
		return fmt.Errorf("open read model %s: %w", db.path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	// Connections load the planner's statistics when they open; renewing
	// them picks up what optimize gathered since.
	r.SetConnMaxLifetime(time.Hour)
	db.w, db.r = w, r
	return nil
}

func migrate(w *sql.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, w, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(context.Background()); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// stampVersion records SchemaVersion in a file that has no projection yet.
func stampVersion(w *sql.DB) error {
	var seq string
	err := w.QueryRow(`SELECT value FROM meta WHERE key = ?`, metaAppliedSeq).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) || seq == "0" {
		_, err = w.Exec(`INSERT INTO meta (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, metaSchemaVersion, strconv.Itoa(SchemaVersion))
	}
	return err
}

// optimize refreshes the query planner's statistics of the tables whose
// size changed much since they were last gathered: without them SQLite
// picks the listing and backlog indexes badly. analysis_limit keeps it to
// a sample, cheap on a large file.
func optimize(w *sql.DB) error {
	_, err := w.Exec(`PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002`)
	return err
}

// Close closes both pools. Stop the projector first: a batch applied
// after Close fails.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.closePools()
}

func (db *DB) closePools() error {
	var errs []error
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	db.r, db.w = nil, nil
	return errors.Join(errs...)
}

// Path is the file the read model lives in.
func (db *DB) Path() string { return db.path }

var errClosed = errors.New("read model is closed")

// reader returns the read pool with db.mu held shared; call the returned
// function when done.
func (db *DB) reader() (*sql.DB, func(), error) {
	db.mu.RLock()
	if db.r == nil {
		db.mu.RUnlock()
		return nil, nil, errClosed
	}
	return db.r, db.mu.RUnlock, nil
}

// SchemaVersion returns the projection version the file was built with.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	r, done, err := db.reader()
	if err != nil {
		return 0, err
	}
	defer done()
	return readSchemaVersion(ctx, r)
}

func readSchemaVersion(ctx context.Context, q querier) (int, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaSchemaVersion).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("read schema version %q: %w", v, err)
	}
	return n, nil
}

// AppliedSeq returns the stream sequence the committed projection reached.
func (db *DB) AppliedSeq(ctx context.Context) (uint64, error) {
	r, done, err := db.reader()
	if err != nil {
		return 0, err
	}
	defer done()
	return readAppliedSeq(ctx, r)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func readAppliedSeq(ctx context.Context, q querier) (uint64, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaAppliedSeq).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read applied_seq: %w", err)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read applied_seq %q: %w", v, err)
	}
	return n, nil
}

// NeedsRebuild reports whether the read model at path was built with a
// projection version other than SchemaVersion. A missing file needs no
// rebuild: the projector fills a new one from the start of the stream.
func NeedsRebuild(path string) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	c, err := sql.Open("sqlite3", path+"?_busy_timeout=10000&_query_only=1")
	if err != nil {
		return false, err
	}
	defer c.Close()
	var n int
	if err := c.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'`).Scan(&n); err != nil {
		return false, fmt.Errorf("read model %s: %w", path, err)
	}
	if n == 0 {
		// Not a read model of this program (or an empty file): Open would
		// migrate it from scratch, but a rebuild is the safe answer.
		return true, nil
	}
	v, err := readSchemaVersion(context.Background(), c)
	if err != nil {
		return false, fmt.Errorf("read model %s: %w", path, err)
	}
	return v != SchemaVersion, nil
}

// swap replaces the file under db with src, a complete read model, and
// reopens db on it. prepare runs first, with every query and batch held
// off, and is told the sequence the current file reached; it must leave src
// closed. The projector notices the new generation and reloads its
// position from the new file.
func (db *DB) swap(src string, prepare func(seq uint64) error) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.w == nil {
		return errClosed
	}
	seq, err := readAppliedSeq(context.Background(), db.w)
	if err != nil {
		return err
	}
	if err := prepare(seq); err != nil {
		return err
	}
	// Closing every connection checkpoints the WAL into the file and
	// removes it, so the rename below cannot pair the new file with the old
	// file's WAL.
	if err := db.closePools(); err != nil {
		return fmt.Errorf("close read model for swap: %w", err)
	}
	renameErr := replaceFile(src, db.path)
	if err := db.open(); err != nil {
		return errors.Join(renameErr, fmt.Errorf("reopen read model after swap: %w", err))
	}
	db.gen++
	return renameErr
}

// replaceFile renames src over dst, which no connection may have open, and
// makes the rename durable.
func replaceFile(src, dst string) error {
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(dst + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("swap in rebuilt read model: %w", err)
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync() // best effort: not every file system syncs directories
		d.Close()
	}
	return nil
}

// wrapNotFound turns sql.ErrNoRows into the domain's ENOTFOUND.
func wrapNotFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return hoso.Errorf(hoso.ENOTFOUND, format, args...)
	}
	return err
}
