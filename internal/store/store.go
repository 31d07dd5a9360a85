// Package store is the embedded state database: what a restart must not
// lose (directory snapshot, admin overrides, sync cursors, later published
// states). It is a bucketed key-value store on a pure-Go SQLite, so the
// CLI (resolve, override) can read and write while the gateway runs, and
// the same small interface can later sit on PostgreSQL.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned by Get for a key that is not stored.
var ErrNotFound = errors.New("store: not found")

// DB is the state database. It is safe for concurrent use, also by several
// processes on the same file.
type DB struct {
	db *sql.DB
}

// Open opens (creating if needed) the database at path. ":memory:" gives a
// private in-memory database, for the demo and tests.
func Open(path string) (*DB, error) {
	dsn := "file::memory:?_pragma=foreign_keys(1)"
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("store %s: %w", path, err)
		}
		// In a "file:" URI, '%' escapes and '?' and '#' end the path.
		uri := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
		dsn = "file:" + uri + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if path == ":memory:" {
		// Every connection to ":memory:" is its own database: keep one.
		db.SetMaxOpenConns(1)
	}
	const schema = `CREATE TABLE IF NOT EXISTS kv (
		bucket TEXT NOT NULL,
		key    TEXT NOT NULL,
		value  BLOB NOT NULL,
		PRIMARY KEY (bucket, key)
	) WITHOUT ROWID`
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: create schema: %w", path, err)
	}
	return &DB{db: db}, nil
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

// Get returns the value of key in bucket, or ErrNotFound.
func (s *DB) Get(bucket, key string) ([]byte, error) {
	var v []byte
	err := s.db.QueryRow(`SELECT value FROM kv WHERE bucket = ? AND key = ?`, bucket, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store get %s/%s: %w", bucket, key, err)
	}
	return v, nil
}

// Put stores value under key in bucket.
func (s *DB) Put(bucket, key string, value []byte) error {
	return s.Write(bucket, false, map[string][]byte{key: value}, nil)
}

// Delete removes key from bucket; a missing key is not an error.
func (s *DB) Delete(bucket, key string) error {
	return s.Write(bucket, false, nil, []string{key})
}

// ForEach calls fn for every key of bucket in key order. The value slice is
// only valid during the call.
func (s *DB) ForEach(bucket string, fn func(key string, value []byte) error) error {
	rows, err := s.db.Query(`SELECT key, value FROM kv WHERE bucket = ? ORDER BY key`, bucket)
	if err != nil {
		return fmt.Errorf("store list %s: %w", bucket, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return fmt.Errorf("store list %s: %w", bucket, err)
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store list %s: %w", bucket, err)
	}
	return nil
}

// Write changes one bucket atomically: with reset, everything in it is
// removed first (a full snapshot); then puts are stored and deletes removed.
// Either all of it lands or none, so a crash never leaves half a snapshot.
func (s *DB) Write(bucket string, reset bool, puts map[string][]byte, deletes []string) error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store write %s: %w", bucket, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if reset {
		if _, err := tx.Exec(`DELETE FROM kv WHERE bucket = ?`, bucket); err != nil {
			return fmt.Errorf("store write %s: %w", bucket, err)
		}
	}
	if len(deletes) > 0 {
		del, err := tx.Prepare(`DELETE FROM kv WHERE bucket = ? AND key = ?`)
		if err != nil {
			return fmt.Errorf("store write %s: %w", bucket, err)
		}
		defer del.Close()
		for _, k := range deletes {
			if _, err := del.Exec(bucket, k); err != nil {
				return fmt.Errorf("store delete %s/%s: %w", bucket, k, err)
			}
		}
	}
	if len(puts) > 0 {
		put, err := tx.Prepare(`INSERT INTO kv (bucket, key, value) VALUES (?, ?, ?)
			ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value`)
		if err != nil {
			return fmt.Errorf("store write %s: %w", bucket, err)
		}
		defer put.Close()
		// Keys in order: SQLite's B-tree then appends instead of
		// splitting pages all over, which halves a 100,000-entry write.
		for _, k := range slices.Sorted(maps.Keys(puts)) {
			v := puts[k]
			if v == nil {
				v = []byte{} // nil would be NULL, which the schema refuses
			}
			if _, err := put.Exec(bucket, k, v); err != nil {
				return fmt.Errorf("store put %s/%s: %w", bucket, k, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store write %s: commit: %w", bucket, err)
	}
	return nil
}
