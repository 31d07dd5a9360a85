package store_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/presencegw/presencegw/internal/store"
)

func open(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// backends opens an in-memory and a file database.
func backends(t *testing.T) map[string]*store.DB {
	return map[string]*store.DB{
		"memory": open(t, ":memory:"),
		"file":   open(t, filepath.Join(t.TempDir(), "state.db")),
	}
}

// dump returns a bucket's content, copying the values.
func dump(t *testing.T, db *store.DB, bucket string) map[string]string {
	t.Helper()
	m := map[string]string{}
	if err := db.ForEach(bucket, func(k string, v []byte) error {
		m[k] = string(v)
		return nil
	}); err != nil {
		t.Fatalf("ForEach(%q): %v", bucket, err)
	}
	return m
}

func TestPutGetDelete(t *testing.T) {
	type step struct {
		op          string // put, get, del
		bucket, key string
		value       []byte // put: stored; get: expected
		notFound    bool   // get: expect ErrNotFound
	}
	steps := []step{
		{op: "get", bucket: "people", key: "alice", notFound: true},
		{op: "put", bucket: "people", key: "alice", value: []byte("v1")},
		{op: "get", bucket: "people", key: "alice", value: []byte("v1")},
		{op: "get", bucket: "people", key: "Alice", notFound: true}, // keys are case-sensitive
		{op: "get", bucket: "cursors", key: "alice", notFound: true},
		{op: "put", bucket: "people", key: "alice", value: []byte("v2")}, // overwrite
		{op: "get", bucket: "people", key: "alice", value: []byte("v2")},
		{op: "put", bucket: "cursors", key: "alice", value: []byte("c")},
		{op: "get", bucket: "people", key: "alice", value: []byte("v2")},
		{op: "get", bucket: "cursors", key: "alice", value: []byte("c")},
		{op: "put", bucket: "people", key: "", value: []byte("empty key")},
		{op: "get", bucket: "people", key: "", value: []byte("empty key")},
		{op: "put", bucket: "people", key: "bin", value: []byte{0, 1, 0xff, 0}},
		{op: "get", bucket: "people", key: "bin", value: []byte{0, 1, 0xff, 0}},
		{op: "put", bucket: "people", key: "nil", value: nil},
		{op: "get", bucket: "people", key: "nil", value: []byte{}},
		{op: "put", bucket: "people", key: "blank", value: []byte{}},
		{op: "get", bucket: "people", key: "blank", value: []byte{}},
		{op: "del", bucket: "people", key: "alice"},
		{op: "get", bucket: "people", key: "alice", notFound: true},
		{op: "get", bucket: "cursors", key: "alice", value: []byte("c")}, // other bucket untouched
		{op: "del", bucket: "people", key: "alice"},                      // deleting twice is fine
		{op: "del", bucket: "nobucket", key: "x"},
	}
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			for i, s := range steps {
				switch s.op {
				case "put":
					if err := db.Put(s.bucket, s.key, s.value); err != nil {
						t.Fatalf("step %d: Put(%q, %q): %v", i, s.bucket, s.key, err)
					}
				case "del":
					if err := db.Delete(s.bucket, s.key); err != nil {
						t.Fatalf("step %d: Delete(%q, %q): %v", i, s.bucket, s.key, err)
					}
				case "get":
					v, err := db.Get(s.bucket, s.key)
					if s.notFound {
						if !errors.Is(err, store.ErrNotFound) {
							t.Errorf("step %d: Get(%q, %q) = %q, %v; want ErrNotFound", i, s.bucket, s.key, v, err)
						}
						continue
					}
					if err != nil || string(v) != string(s.value) {
						t.Errorf("step %d: Get(%q, %q) = %q, %v; want %q", i, s.bucket, s.key, v, err, s.value)
					}
				}
			}
		})
	}
}

func TestForEachKeyOrder(t *testing.T) {
	keys := []string{"m", "b", "a/2", "a", "B", "a/10", "z", "", "é", "a b", "0"}
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			puts := map[string][]byte{}
			for _, k := range keys {
				puts[k] = []byte("v" + k)
			}
			if err := db.Write("people", false, puts, nil); err != nil {
				t.Fatal(err)
			}
			// Buckets whose names share a prefix stay apart.
			if err := db.Put("people2", "a", []byte("other")); err != nil {
				t.Fatal(err)
			}
			if err := db.Put("peopl", "a", []byte("other")); err != nil {
				t.Fatal(err)
			}
			var got []string
			err := db.ForEach("people", func(k string, v []byte) error {
				if string(v) != "v"+k {
					t.Errorf("value of %q = %q", k, v)
				}
				got = append(got, k)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(keys)
			slices.Sort(want) // byte order
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ForEach keys = %q, want %q", got, want)
			}

			n := 0
			if err := db.ForEach("empty", func(string, []byte) error { n++; return nil }); err != nil || n != 0 {
				t.Errorf("ForEach on an empty bucket: %d calls, %v", n, err)
			}

			stop := errors.New("stop here")
			var seen []string
			err = db.ForEach("people", func(k string, _ []byte) error {
				seen = append(seen, k)
				if len(seen) == 3 {
					return fmt.Errorf("wrapped: %w", stop)
				}
				return nil
			})
			if !errors.Is(err, stop) || !reflect.DeepEqual(seen, want[:3]) {
				t.Errorf("ForEach stopping after 3: keys %q, err %v; want %q and the callback's error", seen, err, want[:3])
			}
		})
	}
}

func TestWrite(t *testing.T) {
	initial := map[string]map[string]string{
		"people":  {"a": "1", "b": "2", "c": "3"},
		"cursors": {"a": "x", "corp": "usn:42"},
	}
	tests := []struct {
		name    string
		reset   bool
		puts    map[string]string
		deletes []string
		want    map[string]string // people afterwards; cursors never change
	}{
		{
			name: "merge",
			puts: map[string]string{"b": "2'", "d": "4"}, deletes: []string{"a", "missing"},
			want: map[string]string{"b": "2'", "c": "3", "d": "4"},
		},
		{
			name: "only deletes", deletes: []string{"a", "c"},
			want: map[string]string{"b": "2"},
		},
		{
			name: "nothing", want: initial["people"],
		},
		{
			name: "reset replaces the bucket", reset: true,
			puts: map[string]string{"b": "new", "z": "26"},
			want: map[string]string{"b": "new", "z": "26"},
		},
		{
			name: "reset empties the bucket", reset: true,
			want: map[string]string{},
		},
		{
			name: "reset then deletes", reset: true,
			puts: map[string]string{"x": "1", "y": "2"}, deletes: []string{"a", "x"},
			want: map[string]string{"x": "1", "y": "2"}, // puts come after deletes
		},
	}
	for _, tt := range tests {
		for name, db := range backends(t) {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				for b, kv := range initial {
					puts := map[string][]byte{}
					for k, v := range kv {
						puts[k] = []byte(v)
					}
					if err := db.Write(b, true, puts, nil); err != nil {
						t.Fatal(err)
					}
				}
				puts := map[string][]byte{}
				for k, v := range tt.puts {
					puts[k] = []byte(v)
				}
				if err := db.Write("people", tt.reset, puts, tt.deletes); err != nil {
					t.Fatalf("Write: %v", err)
				}
				if got := dump(t, db, "people"); !maps.Equal(got, tt.want) {
					t.Errorf("people = %v, want %v", got, tt.want)
				}
				if got := dump(t, db, "cursors"); !maps.Equal(got, initial["cursors"]) {
					t.Errorf("cursors = %v, want them untouched: %v", got, initial["cursors"])
				}
			})
		}
	}
}

// TestWriteResetAtomic reads a bucket through a second handle while the
// first keeps replacing it: every read sees one whole snapshot.
func TestWriteResetAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	w, r := open(t, path), open(t, path)
	snapshot := func(gen int) map[string][]byte {
		m := map[string][]byte{}
		for i := range 20 + gen%7*10 { // sizes vary, so a half-done reset shows
			m[fmt.Sprintf("k%03d", i)] = []byte(fmt.Sprint(gen))
		}
		return m
	}
	if err := w.Write("snap", true, snapshot(0), nil); err != nil {
		t.Fatal(err)
	}
	const gens = 40
	var wg sync.WaitGroup
	wg.Go(func() {
		for g := 1; g <= gens; g++ {
			if err := w.Write("snap", true, snapshot(g), nil); err != nil {
				t.Errorf("Write gen %d: %v", g, err)
				return
			}
		}
	})
	for range 100 {
		vals := map[string]int{}
		n := 0
		if err := r.ForEach("snap", func(_ string, v []byte) error {
			vals[string(v)]++
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(vals) != 1 {
			t.Fatalf("a read saw several generations at once: %v", vals)
		}
		for v := range vals {
			var g int
			fmt.Sscan(v, &g)
			if want := len(snapshot(g)); n != want {
				t.Fatalf("a read saw %d keys of generation %d, which has %d", n, g, want)
			}
		}
	}
	wg.Wait()
	if got := dump(t, r, "snap"); len(got) != len(snapshot(gens)) || got["k000"] != fmt.Sprint(gens) {
		t.Errorf("after the last write: %d keys, k000=%q", len(got), got["k000"])
	}
}

func TestReopen(t *testing.T) {
	// Directory names with characters that mean something in a SQLite
	// "file:" URI must still name that directory.
	for _, dirName := range []string{"plain", "with space", "hash#dir", "percent%41dir", "question?dir&x=1", "nested/new/dirs"} {
		t.Run(dirName, func(t *testing.T) {
			root := t.TempDir()
			path := filepath.Join(root, dirName, "state.db")
			db, err := store.Open(path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := db.Write("people", true, map[string][]byte{"alice": []byte("A"), "bob": []byte("B")}, nil); err != nil {
				t.Fatal(err)
			}
			if err := db.Put("cursors", "corp", []byte("usn:7")); err != nil {
				t.Fatal(err)
			}
			if err := db.Delete("people", "bob"); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if _, err := db.Get("people", "alice"); err == nil || errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get after Close: %v, want a (non-ErrNotFound) error", err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
				t.Fatalf("database file not at %s: %v", path, err)
			}
			if ents, _ := os.ReadDir(root); len(ents) != 1 || ents[0].Name() != firstElem(dirName) {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("files made next to the database's directory: %q", names)
			}

			db = open(t, path)
			if got := dump(t, db, "people"); !maps.Equal(got, map[string]string{"alice": "A"}) {
				t.Errorf("people after reopen = %v", got)
			}
			if v, err := db.Get("cursors", "corp"); err != nil || string(v) != "usn:7" {
				t.Errorf("cursor after reopen = %q, %v", v, err)
			}
		})
	}
}

// firstElem returns the first element of a slash-separated path.
func firstElem(p string) string {
	for i := range len(p) {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return p
}

func TestTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	gw, cli := open(t, path), open(t, path)

	if err := gw.Put("overrides", "alice@example.com", []byte("alice@chat")); err != nil {
		t.Fatal(err)
	}
	if v, err := cli.Get("overrides", "alice@example.com"); err != nil || string(v) != "alice@chat" {
		t.Errorf("other handle reads %q, %v", v, err)
	}
	if err := cli.Put("overrides", "bob@example.com", []byte("bob@chat")); err != nil {
		t.Fatal(err)
	}
	if err := cli.Delete("overrides", "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, gw, "overrides"); !maps.Equal(got, map[string]string{"bob@example.com": "bob@chat"}) {
		t.Errorf("gateway sees %v after the CLI's writes", got)
	}
	if _, err := gw.Get("overrides", "alice@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted through the other handle: %v, want ErrNotFound", err)
	}

	// Both write at the same time: nothing is lost, nothing fails.
	var wg sync.WaitGroup
	for h, db := range []*store.DB{gw, cli} {
		wg.Go(func() {
			for i := range 50 {
				if err := db.Put("concurrent", fmt.Sprintf("h%d-%02d", h, i), []byte{byte(i)}); err != nil {
					t.Errorf("handle %d put %d: %v", h, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := dump(t, cli, "concurrent"); len(got) != 100 {
		t.Errorf("%d keys after concurrent writes, want 100", len(got))
	}
}

func TestMemory(t *testing.T) {
	a, b := open(t, ":memory:"), open(t, ":memory:")
	if err := a.Put("x", "k", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Get("x", "k"); err != nil || string(v) != "a" {
		t.Errorf("Get = %q, %v", v, err)
	}
	if _, err := b.Get("x", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a second :memory: database shares data: %v", err)
	}
	if _, err := os.Stat(":memory:"); err == nil {
		t.Error(`Open(":memory:") made a file named ":memory:"`)
	}
	// Safe for concurrent use.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				k := fmt.Sprintf("%d-%d", g, i)
				if err := a.Put("c", k, []byte(k)); err != nil {
					t.Error(err)
					return
				}
				if v, err := a.Get("c", k); err != nil || string(v) != k {
					t.Errorf("Get(%s) = %q, %v", k, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := dump(t, a, "c"); len(got) != 100 {
		t.Errorf("%d keys, want 100", len(got))
	}
}
