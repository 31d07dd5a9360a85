package graph

// Windows time zone names to IANA locations.
//
// The windowsZones table is derived from the Unicode CLDR data file
// common/supplemental/windowsZones.xml: it holds every <mapZone> entry with
// territory "001" (CLDR's canonical IANA zone for each Windows zone), 139
// entries, copied verbatim. Source read: github.com/unicode-org/cldr at commit
// 062dc06d16b0884bc42b0b04e5408aec6b85eb20, <mapTimezones
// otherVersion="7e11800" typeVersion="2021a">. CLDR data is Copyright ©
// Unicode, Inc. and is used under the Unicode license,
// https://www.unicode.org/copyright.html.
//
// To update it, take the territory="001" lines of a newer windowsZones.xml,
// keep the table sorted by key, and run the tests: they check that every
// value loads.

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// windowsZones maps a Windows time zone name, as Microsoft Graph reports it
// (mailboxSettings, workingHours), to its IANA zone name.
var windowsZones = map[string]string{
	"AUS Central Standard Time":       "Australia/Darwin",
	"AUS Eastern Standard Time":       "Australia/Sydney",
	"Afghanistan Standard Time":       "Asia/Kabul",
	"Alaskan Standard Time":           "America/Anchorage",
	"Aleutian Standard Time":          "America/Adak",
	"Altai Standard Time":             "Asia/Barnaul",
	"Arab Standard Time":              "Asia/Riyadh",
	"Arabian Standard Time":           "Asia/Dubai",
	"Arabic Standard Time":            "Asia/Baghdad",
	"Argentina Standard Time":         "America/Buenos_Aires",
	"Astrakhan Standard Time":         "Europe/Astrakhan",
	"Atlantic Standard Time":          "America/Halifax",
	"Aus Central W. Standard Time":    "Australia/Eucla",
	"Azerbaijan Standard Time":        "Asia/Baku",
	"Azores Standard Time":            "Atlantic/Azores",
	"Bahia Standard Time":             "America/Bahia",
	"Bangladesh Standard Time":        "Asia/Dhaka",
	"Belarus Standard Time":           "Europe/Minsk",
	"Bougainville Standard Time":      "Pacific/Bougainville",
	"Canada Central Standard Time":    "America/Regina",
	"Cape Verde Standard Time":        "Atlantic/Cape_Verde",
	"Caucasus Standard Time":          "Asia/Yerevan",
	"Cen. Australia Standard Time":    "Australia/Adelaide",
	"Central America Standard Time":   "America/Guatemala",
	"Central Asia Standard Time":      "Asia/Bishkek",
	"Central Brazilian Standard Time": "America/Cuiaba",
	"Central Europe Standard Time":    "Europe/Budapest",
	"Central European Standard Time":  "Europe/Warsaw",
	"Central Pacific Standard Time":   "Pacific/Guadalcanal",
	"Central Standard Time":           "America/Chicago",
	"Central Standard Time (Mexico)":  "America/Mexico_City",
	"Chatham Islands Standard Time":   "Pacific/Chatham",
	"China Standard Time":             "Asia/Shanghai",
	"Cuba Standard Time":              "America/Havana",
	"Dateline Standard Time":          "Etc/GMT+12",
	"E. Africa Standard Time":         "Africa/Nairobi",
	"E. Australia Standard Time":      "Australia/Brisbane",
	"E. Europe Standard Time":         "Europe/Chisinau",
	"E. South America Standard Time":  "America/Sao_Paulo",
	"Easter Island Standard Time":     "Pacific/Easter",
	"Eastern Standard Time":           "America/New_York",
	"Eastern Standard Time (Mexico)":  "America/Cancun",
	"Egypt Standard Time":             "Africa/Cairo",
	"Ekaterinburg Standard Time":      "Asia/Yekaterinburg",
	"FLE Standard Time":               "Europe/Kiev",
	"Fiji Standard Time":              "Pacific/Fiji",
	"GMT Standard Time":               "Europe/London",
	"GTB Standard Time":               "Europe/Bucharest",
	"Georgian Standard Time":          "Asia/Tbilisi",
	"Greenland Standard Time":         "America/Godthab",
	"Greenwich Standard Time":         "Atlantic/Reykjavik",
	"Haiti Standard Time":             "America/Port-au-Prince",
	"Hawaiian Standard Time":          "Pacific/Honolulu",
	"India Standard Time":             "Asia/Calcutta",
	"Iran Standard Time":              "Asia/Tehran",
	"Israel Standard Time":            "Asia/Jerusalem",
	"Jordan Standard Time":            "Asia/Amman",
	"Kaliningrad Standard Time":       "Europe/Kaliningrad",
	"Korea Standard Time":             "Asia/Seoul",
	"Libya Standard Time":             "Africa/Tripoli",
	"Line Islands Standard Time":      "Pacific/Kiritimati",
	"Lord Howe Standard Time":         "Australia/Lord_Howe",
	"Magadan Standard Time":           "Asia/Magadan",
	"Magallanes Standard Time":        "America/Punta_Arenas",
	"Marquesas Standard Time":         "Pacific/Marquesas",
	"Mauritius Standard Time":         "Indian/Mauritius",
	"Middle East Standard Time":       "Asia/Beirut",
	"Montevideo Standard Time":        "America/Montevideo",
	"Morocco Standard Time":           "Africa/Casablanca",
	"Mountain Standard Time":          "America/Denver",
	"Mountain Standard Time (Mexico)": "America/Mazatlan",
	"Myanmar Standard Time":           "Asia/Rangoon",
	"N. Central Asia Standard Time":   "Asia/Novosibirsk",
	"Namibia Standard Time":           "Africa/Windhoek",
	"Nepal Standard Time":             "Asia/Katmandu",
	"New Zealand Standard Time":       "Pacific/Auckland",
	"Newfoundland Standard Time":      "America/St_Johns",
	"Norfolk Standard Time":           "Pacific/Norfolk",
	"North Asia East Standard Time":   "Asia/Irkutsk",
	"North Asia Standard Time":        "Asia/Krasnoyarsk",
	"North Korea Standard Time":       "Asia/Pyongyang",
	"Omsk Standard Time":              "Asia/Omsk",
	"Pacific SA Standard Time":        "America/Santiago",
	"Pacific Standard Time":           "America/Los_Angeles",
	"Pacific Standard Time (Mexico)":  "America/Tijuana",
	"Pakistan Standard Time":          "Asia/Karachi",
	"Paraguay Standard Time":          "America/Asuncion",
	"Qyzylorda Standard Time":         "Asia/Qyzylorda",
	"Romance Standard Time":           "Europe/Paris",
	"Russia Time Zone 10":             "Asia/Srednekolymsk",
	"Russia Time Zone 11":             "Asia/Kamchatka",
	"Russia Time Zone 3":              "Europe/Samara",
	"Russian Standard Time":           "Europe/Moscow",
	"SA Eastern Standard Time":        "America/Cayenne",
	"SA Pacific Standard Time":        "America/Bogota",
	"SA Western Standard Time":        "America/La_Paz",
	"SE Asia Standard Time":           "Asia/Bangkok",
	"Saint Pierre Standard Time":      "America/Miquelon",
	"Sakhalin Standard Time":          "Asia/Sakhalin",
	"Samoa Standard Time":             "Pacific/Apia",
	"Sao Tome Standard Time":          "Africa/Sao_Tome",
	"Saratov Standard Time":           "Europe/Saratov",
	"Singapore Standard Time":         "Asia/Singapore",
	"South Africa Standard Time":      "Africa/Johannesburg",
	"South Sudan Standard Time":       "Africa/Juba",
	"Sri Lanka Standard Time":         "Asia/Colombo",
	"Sudan Standard Time":             "Africa/Khartoum",
	"Syria Standard Time":             "Asia/Damascus",
	"Taipei Standard Time":            "Asia/Taipei",
	"Tasmania Standard Time":          "Australia/Hobart",
	"Tocantins Standard Time":         "America/Araguaina",
	"Tokyo Standard Time":             "Asia/Tokyo",
	"Tomsk Standard Time":             "Asia/Tomsk",
	"Tonga Standard Time":             "Pacific/Tongatapu",
	"Transbaikal Standard Time":       "Asia/Chita",
	"Turkey Standard Time":            "Europe/Istanbul",
	"Turks And Caicos Standard Time":  "America/Grand_Turk",
	"US Eastern Standard Time":        "America/Indianapolis",
	"US Mountain Standard Time":       "America/Phoenix",
	"UTC":                             "Etc/UTC",
	"UTC+12":                          "Etc/GMT-12",
	"UTC+13":                          "Etc/GMT-13",
	"UTC-02":                          "Etc/GMT+2",
	"UTC-08":                          "Etc/GMT+8",
	"UTC-09":                          "Etc/GMT+9",
	"UTC-11":                          "Etc/GMT+11",
	"Ulaanbaatar Standard Time":       "Asia/Ulaanbaatar",
	"Venezuela Standard Time":         "America/Caracas",
	"Vladivostok Standard Time":       "Asia/Vladivostok",
	"Volgograd Standard Time":         "Europe/Volgograd",
	"W. Australia Standard Time":      "Australia/Perth",
	"W. Central Africa Standard Time": "Africa/Lagos",
	"W. Europe Standard Time":         "Europe/Berlin",
	"W. Mongolia Standard Time":       "Asia/Hovd",
	"West Asia Standard Time":         "Asia/Tashkent",
	"West Bank Standard Time":         "Asia/Hebron",
	"West Pacific Standard Time":      "Pacific/Port_Moresby",
	"Yakutsk Standard Time":           "Asia/Yakutsk",
	"Yukon Standard Time":             "America/Whitehorse",
}

// ianaRenames maps the table values that are old IANA names, kept by the
// tzdata "backward" file as links, to their current names. LoadZone falls back
// to the current name when the system tzdata lacks the old link (for example
// Debian 13 without the tzdata-legacy package).
var ianaRenames = map[string]string{
	"America/Buenos_Aires": "America/Argentina/Buenos_Aires",
	"America/Godthab":      "America/Nuuk",
	"America/Indianapolis": "America/Indiana/Indianapolis",
	"Asia/Calcutta":        "Asia/Kolkata",
	"Asia/Katmandu":        "Asia/Kathmandu",
	"Asia/Rangoon":         "Asia/Yangon",
	"Europe/Kiev":          "Europe/Kyiv",
}

// windowsZonesFold is windowsZones keyed by the lower-cased Windows name, for
// case-insensitive lookups. It is built once, at package initialisation.
var windowsZonesFold = func() map[string]string {
	m := make(map[string]string, len(windowsZones))
	for k, v := range windowsZones {
		m[strings.ToLower(k)] = v
	}
	return m
}()

// zoneCache maps a (trimmed) zone name as passed to LoadZone to its
// *time.Location. Only successful lookups are cached.
var zoneCache sync.Map

// ErrUnknownZone is wrapped by LoadZone's error for a name that is neither an
// IANA zone nor a known Windows zone.
var ErrUnknownZone = errors.New("unknown time zone")

// ErrCustomZone is wrapped by LoadZone's error for an Outlook/Exchange custom
// zone, which has no name that could be mapped to an IANA zone.
var ErrCustomZone = errors.New("custom time zone")

// microsoftZonePrefix starts the zone names Outlook uses for UTC and custom
// zones: "tzone://Microsoft/Utc", "tzone://Microsoft/Custom".
const microsoftZonePrefix = "tzone://microsoft/"

// customZonePrefix starts the name Exchange gives a custom zone
// ("Customized Time Zone", sometimes followed by a number).
const customZonePrefix = "customized time zone"

// LoadZone returns the location for a mailbox time zone name as Microsoft
// Graph reports it. It exists because Graph mostly uses Windows zone names
// ("W. Europe Standard Time"), which time.LoadLocation does not know, and
// only sometimes IANA names ("Europe/Berlin") or "UTC".
//
// The name is trimmed of spaces and then tried, in order, as an IANA name
// (including "UTC"), as a Windows zone name (case-insensitively, mapped through
// CLDR's windowsZones table), and as one of Outlook's "tzone://Microsoft/..."
// names. "Local" is refused: it would mean the server's zone, not the
// mailbox's. Custom zones ("Customized Time Zone") cannot be mapped and give
// an error wrapping ErrCustomZone; other unknown names give an error wrapping
// ErrUnknownZone. Results are cached, so repeated calls are cheap.
func LoadZone(name string) (*time.Location, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, errors.New("empty time zone name")
	}
	if loc, ok := zoneCache.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := resolveZone(name)
	if err != nil {
		return nil, err
	}
	actual, _ := zoneCache.LoadOrStore(name, loc)
	return actual.(*time.Location), nil
}

// resolveZone does LoadZone's work without the cache. name is trimmed and
// not empty.
func resolveZone(name string) (*time.Location, error) {
	if name != "Local" {
		if loc, err := loadIANA(name); err == nil {
			return loc, nil
		}
	}
	lower := strings.ToLower(name)
	if iana, ok := windowsZonesFold[lower]; ok {
		loc, err := loadIANA(iana)
		if err != nil {
			return nil, fmt.Errorf("time zone %q: IANA zone %q: %w", name, iana, err)
		}
		return loc, nil
	}
	if rest, ok := strings.CutPrefix(lower, microsoftZonePrefix); ok {
		switch rest {
		case "utc":
			return time.UTC, nil
		case "custom":
			return nil, fmt.Errorf("time zone %q: %w: it cannot be mapped to an IANA zone", name, ErrCustomZone)
		}
	}
	if strings.HasPrefix(lower, customZonePrefix) {
		return nil, fmt.Errorf("time zone %q: %w: it cannot be mapped to an IANA zone", name, ErrCustomZone)
	}
	return nil, fmt.Errorf("time zone %q: %w: neither an IANA nor a Windows zone name", name, ErrUnknownZone)
}

// loadIANA is time.LoadLocation, retried with the current name when name is an
// old IANA name that the system tzdata no longer links.
func loadIANA(name string) (*time.Location, error) {
	loc, err := time.LoadLocation(name)
	if err != nil {
		if current, ok := ianaRenames[name]; ok {
			if loc, err2 := time.LoadLocation(current); err2 == nil {
				return loc, nil
			}
		}
		return nil, err
	}
	return loc, nil
}
