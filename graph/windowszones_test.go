package graph

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestLoadZone(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // loc.String()
		alt     string // also accepted: the current name of an old IANA name
		wantErr string // substring of the error; "" for success
		is      error  // errors.Is target, when not nil
	}{
		{name: "windows", in: "W. Europe Standard Time", want: "Europe/Berlin"},
		{name: "windows pacific", in: "Pacific Standard Time", want: "America/Los_Angeles"},
		{name: "windows lower case", in: "pacific standard time", want: "America/Los_Angeles"},
		{name: "windows upper case", in: "ROMANCE STANDARD TIME", want: "Europe/Paris"},
		{name: "windows with spaces", in: "  W. Europe Standard Time\t", want: "Europe/Berlin"},
		{name: "windows with parentheses", in: "Central Standard Time (Mexico)", want: "America/Mexico_City"},
		{name: "windows old IANA alias", in: "India Standard Time", want: "Asia/Calcutta", alt: "Asia/Kolkata"},
		{name: "iana", in: "Europe/Paris", want: "Europe/Paris"},
		{name: "iana with spaces", in: " Asia/Tokyo ", want: "Asia/Tokyo"},
		{name: "utc", in: "UTC", want: "UTC"},
		{name: "microsoft utc", in: "tzone://Microsoft/Utc", want: "UTC"},
		{name: "microsoft custom", in: "tzone://Microsoft/Custom", wantErr: `"tzone://Microsoft/Custom"`, is: ErrCustomZone},
		{name: "customized", in: "Customized Time Zone", wantErr: `"Customized Time Zone"`, is: ErrCustomZone},
		{name: "unknown", in: "Mars Standard Time", wantErr: `"Mars Standard Time"`, is: ErrUnknownZone},
		{name: "local refused", in: "Local", wantErr: `"Local"`, is: ErrUnknownZone},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "blank", in: "   ", wantErr: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := LoadZone(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("LoadZone(%q) = %v, want an error containing %s", tt.in, loc, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("LoadZone(%q) error = %q, want it to contain %s", tt.in, err, tt.wantErr)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("LoadZone(%q) error = %q, want errors.Is %v", tt.in, err, tt.is)
				}
				if tt.name == "customized" && !strings.Contains(err.Error(), "cannot be mapped") {
					t.Errorf("LoadZone(%q) error = %q, want it to say the zone cannot be mapped", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadZone(%q): %v", tt.in, err)
			}
			if got := loc.String(); got != tt.want && (tt.alt == "" || got != tt.alt) {
				t.Errorf("LoadZone(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestLoadZoneCached checks that a second call returns the cached location.
func TestLoadZoneCached(t *testing.T) {
	a, err := LoadZone("Tokyo Standard Time")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadZone("Tokyo Standard Time")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("second LoadZone returned a different *time.Location (%p, %p)", a, b)
	}
}

// TestWindowsZonesAllLoad checks that every table entry resolves: each IANA
// value loads, and LoadZone of each Windows name gives that zone.
func TestWindowsZonesAllLoad(t *testing.T) {
	var failed []string
	for _, win := range sortedKeys(windowsZones) {
		iana := windowsZones[win]
		if _, err := loadIANA(iana); err != nil {
			failed = append(failed, win+" → "+iana+": "+err.Error())
			continue
		}
		loc, err := LoadZone(win)
		if err != nil {
			failed = append(failed, win+": LoadZone: "+err.Error())
			continue
		}
		if _, err := time.LoadLocation(win); err == nil {
			continue // e.g. "UTC": loaded as an IANA name, before the table
		}
		if got := loc.String(); got != iana && got != ianaRenames[iana] {
			failed = append(failed, win+": LoadZone gave "+got+", want "+iana)
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d windowsZones entries do not load:\n%s", len(failed), len(windowsZones), strings.Join(failed, "\n"))
	}
}

// TestLoadIANAFallback checks that an old name missing from the system
// tzdata is loaded under its current name.
func TestLoadIANAFallback(t *testing.T) {
	const old = "Nowhere/Old_Name"
	ianaRenames[old] = "Europe/Berlin"
	t.Cleanup(func() { delete(ianaRenames, old) })
	loc, err := loadIANA(old)
	if err != nil {
		t.Fatalf("loadIANA(%q): %v", old, err)
	}
	if got := loc.String(); got != "Europe/Berlin" {
		t.Errorf("loadIANA(%q) = %q, want Europe/Berlin", old, got)
	}
	if _, err := loadIANA("Nowhere/Else"); err == nil {
		t.Errorf("loadIANA(%q): no error", "Nowhere/Else")
	}
}

func TestWindowsZonesTable(t *testing.T) {
	if n := len(windowsZones); n < 130 {
		t.Errorf("windowsZones has %d entries, want at least 130 (all CLDR territory 001 entries)", n)
	}
	if len(windowsZonesFold) != len(windowsZones) {
		t.Errorf("windowsZonesFold has %d entries, windowsZones %d: names differing only in case", len(windowsZonesFold), len(windowsZones))
	}
	for win, iana := range windowsZones {
		if win != strings.TrimSpace(win) || iana != strings.TrimSpace(iana) || iana == "" {
			t.Errorf("bad entry %q: %q", win, iana)
		}
	}
}

// TestIANARenames checks the fallback names: each renamed zone is a table
// value, and each current name loads with time.LoadLocation.
func TestIANARenames(t *testing.T) {
	values := make(map[string]bool, len(windowsZones))
	for _, v := range windowsZones {
		values[v] = true
	}
	for _, old := range sortedKeys(ianaRenames) {
		if !values[old] {
			t.Errorf("ianaRenames[%q]: not a windowsZones value", old)
		}
		if _, err := time.LoadLocation(ianaRenames[old]); err != nil {
			t.Errorf("ianaRenames[%q] = %q: %v", old, ianaRenames[old], err)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func BenchmarkLoadZoneCached(b *testing.B) {
	if _, err := LoadZone("W. Europe Standard Time"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadZone("W. Europe Standard Time"); err != nil {
			b.Fatal(err)
		}
	}
}
