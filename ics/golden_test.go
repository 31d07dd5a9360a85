package ics

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presencegw/presencegw/rules"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// formatEvents writes events one a line: start and end with their
// offsets, what they show, flags, subject and location.
func formatEvents(events []rules.Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "%s  %s  %-16s", e.Start.Format(time.RFC3339), e.End.Format(time.RFC3339), e.ShowAs)
		var flags []string
		if e.AllDay {
			flags = append(flags, "all-day")
		}
		if e.Private {
			flags = append(flags, "private")
		}
		if e.Cancelled {
			flags = append(flags, "cancelled")
		}
		fmt.Fprintf(&b, " %-10s %q", strings.Join(flags, ","), e.Subject)
		if e.Location != "" {
			fmt.Fprintf(&b, " @ %q", e.Location)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestGolden expands real-world-shaped feeds over March and April 2024
// (DST starts in the US on 10 March, in Europe on 31 March, ends in
// Australia on 7 April) and compares every instant with testdata/*.golden.
// The golden files were checked by hand; the comments in TestGoldenFacts
// restate the ones that matter most.
func TestGolden(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	cases := []struct {
		file string
		opt  Options
	}{
		{"google.ics", Options{Owner: "alice@example.com"}},
		{"outlook.ics", Options{Location: berlin}},
		{"nextcloud.ics", Options{Location: berlin}},
		{"fastmail.ics", Options{}},
		{"edge.ics", Options{}},
	}
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			cal, err := Parse(data, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("# %s, %s to %s, zone %v\n", tc.file, start.Format(time.DateOnly), end.Format(time.DateOnly), cal.Zone)
			got += formatEvents(cal.Events(start, end))
			for _, p := range cal.Problems {
				got += "problem: " + p.Error() + "\n"
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(tc.file, ".ics")+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if got != string(want) {
				t.Errorf("expansion differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}
