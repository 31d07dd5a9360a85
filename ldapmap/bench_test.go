package ldapmap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/internal/store"
	"github.com/presencegw/presencegw/internal/testenv"
)

// BenchmarkDirectory measures the goals against a real slapd with
// 100,000 users (PRESENCEGW_BENCH_USERS overrides the count):
//
//	full sync ≤ 15 s, incremental sync of 100 changes ≤ 1 s,
//	heap ≤ 1 KiB per user in the index, ≥ 2 million lookups/s on one core.
//
// Run it with scripts/bench (go test -run '^$' -bench Directory -cpu 1).
func BenchmarkDirectory(b *testing.B) {
	n := 100000
	if v := os.Getenv("PRESENCEGW_BENCH_USERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("PRESENCEGW_BENCH_USERS: %v", err)
		}
	}
	ldif := usersFile(b, n, 1)
	slapd := testenv.StartSlapd(b, testenv.SlapdOptions{LDIFFiles: []string{ldif}})
	pw := filepath.Join(b.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(slapd.BindPW), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf(`
ldap:
  - name: ad
    url: %s
    bind_dn: %s
    bind_password_file: %s
    base_dn: ou=Users,dc=example,dc=com
    user_filter: (objectClass=user)
    page_size: 1000
    attributes:
      # Read per person as a hybrid site reads msExchRecipientTypeDetails
      # for calendar routing (every generated user has this one).
      calendar_route: userAccountControl
    jid:
      template: "{{.sAMAccountName}}@chat.example.com"
`, slapd.URL, slapd.BindDN, pw)), CheckLDAPConfig)
	if err != nil {
		b.Fatal(err)
	}
	open := func(b *testing.B) *Directory {
		st, err := store.Open(filepath.Join(b.TempDir(), "state.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		src, err := NewLDAPSource(cfg.LDAP[0], quietLog())
		if err != nil {
			b.Fatal(err)
		}
		dir, err := New([]Source{src}, st, quietLog())
		if err != nil {
			b.Fatal(err)
		}
		return dir
	}
	ctx := context.Background()
	var dir *Directory

	b.Run("FullSync", func(b *testing.B) {
		for b.Loop() {
			dir = open(b)
			res, err := dir.SyncFull(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(res[0].Stats.People), "people")
		}
	})

	b.Run("Resolve", func(b *testing.B) {
		// Lookups as the add-in sends them: a mix of primary addresses,
		// aliases, mixed case and misses.
		queries := make([]string, 4096)
		for i := range queries {
			u := (i * 7919) % n
			switch i % 4 {
			case 0:
				queries[i] = fmt.Sprintf("user%06d@example.com", u)
			case 1:
				queries[i] = fmt.Sprintf("u.%06d@example.com", u)
			case 2:
				queries[i] = fmt.Sprintf("User%06d@Example.com", u)
			default:
				queries[i] = fmt.Sprintf("nobody%06d@example.com", u)
			}
		}
		if dir == nil { // run alone (-bench Directory/Resolve)
			dir = open(b)
			if _, err := dir.SyncFull(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
		ix := dir.Index()
		i := 0
		for b.Loop() {
			_ = ix.Resolve(queries[i&4095])
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})

	b.Run("Incremental100", func(b *testing.B) {
		dir := open(b)
		if _, err := dir.SyncFull(ctx, nil); err != nil {
			b.Fatal(err)
		}
		usn := 10_000_000
		round := 0
		for b.Loop() {
			b.StopTimer()
			var mods strings.Builder
			for i := range 100 {
				usn++
				u := fmt.Sprintf("%06d", (round*100+i)*7%n+1)
				fmt.Fprintf(&mods, "dn: cn=User %s,ou=Users,dc=example,dc=com\nchangetype: modify\nreplace: title\ntitle: Title %d\n-\nreplace: uSNChanged\nuSNChanged: %d\n\n", u, usn, usn)
			}
			round++
			slapd.Modify(b, mods.String())
			b.StartTimer()
			res, err := dir.SyncIncremental(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if res[0].Full || res[0].Changed+res[0].Removed == 0 {
				b.Fatalf("incremental sync = %+v", res[0])
			}
		}
	})

	b.Run("HeapPerUser", func(b *testing.B) {
		for b.Loop() {
			before := testenv.LiveHeap()
			d := open(b)
			if _, err := d.SyncFull(ctx, nil); err != nil {
				b.Fatal(err)
			}
			with := testenv.LiveHeap()
			people, addrs := d.Index().Len()
			runtime.KeepAlive(d)
			b.ReportMetric(float64(with-before)/float64(people), "B/user")
			b.ReportMetric(float64(addrs)/float64(people), "addrs/user")
		}
	})

}
