package rules

import (
	"fmt"
	"strings"
	"text/template"
	"time"
)

// Texts are the status-message templates and the date format, so an
// organisation can word and localize them ("En réunion jusqu'à 14h30").
// Templates see .Until (a time, or a date when it is not today), .Subject,
// .Location and .Message (the OOF text's first line). Empty fields take
// the English defaults.
type Texts struct {
	Meeting     string // default "In a meeting until {{.Until}}"
	MeetingWith string // with a visible subject; default "In a meeting ({{.Subject}}) until {{.Until}}"
	OOF         string // default "Out of office{{if .Until}} until {{.Until}}{{end}}{{if .Message}}: {{.Message}}{{end}}"
	Elsewhere   string // default "Working elsewhere{{if .Until}} until {{.Until}}{{end}}"
	// TimeLayout formats a time of day (Go layout); default "15:04".
	TimeLayout string
	// DateLayout formats a day (Go layout; "Mon" and "Jan" are replaced
	// by Weekdays and Months); default "Mon 2 Jan".
	DateLayout string
	// Weekdays (Sunday first) and Months (January first) are the short
	// names; default English.
	Weekdays [7]string
	Months   [12]string

	parsed *parsedTexts
}

type parsedTexts struct {
	meeting, meetingWith, oof, elsewhere *template.Template
}

// DefaultTexts returns the English texts.
func DefaultTexts() Texts {
	return Texts{
		Meeting:     "In a meeting until {{.Until}}",
		MeetingWith: "In a meeting ({{.Subject}}) until {{.Until}}",
		OOF:         "Out of office{{if .Until}} until {{.Until}}{{end}}{{if .Message}}: {{.Message}}{{end}}",
		Elsewhere:   "Working elsewhere{{if .Until}} until {{.Until}}{{end}}",
		TimeLayout:  "15:04",
		DateLayout:  "Mon 2 Jan",
		Weekdays:    [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"},
		Months:      [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"},
	}
}

// Compile fills empty fields with the defaults and parses the templates;
// call it once at start-up (config validation) and keep the result in
// Policy.Texts, so Derive never parses a template.
func (t Texts) Compile() (Texts, error) {
	d := DefaultTexts()
	for _, f := range []struct{ v, def *string }{
		{&t.Meeting, &d.Meeting}, {&t.MeetingWith, &d.MeetingWith}, {&t.OOF, &d.OOF},
		{&t.Elsewhere, &d.Elsewhere}, {&t.TimeLayout, &d.TimeLayout}, {&t.DateLayout, &d.DateLayout},
	} {
		if *f.v == "" {
			*f.v = *f.def
		}
	}
	if t.Weekdays == ([7]string{}) {
		t.Weekdays = d.Weekdays
	}
	if t.Months == ([12]string{}) {
		t.Months = d.Months
	}
	p := &parsedTexts{}
	for _, f := range []struct {
		name string
		src  string
		dst  **template.Template
	}{{"meeting", t.Meeting, &p.meeting}, {"meeting_with", t.MeetingWith, &p.meetingWith}, {"oof", t.OOF, &p.oof}, {"elsewhere", t.Elsewhere, &p.elsewhere}} {
		tmpl, err := template.New(f.name).Option("missingkey=error").Parse(f.src)
		if err != nil {
			return t, fmt.Errorf("%s text: %w", f.name, err)
		}
		// Execute once with sample data, so a misspelt field fails now.
		if err := tmpl.Execute(&strings.Builder{}, textData{Until: "14:30", Subject: "s", Location: "l", Message: "m"}); err != nil {
			return t, fmt.Errorf("%s text: %w", f.name, err)
		}
		*f.dst = tmpl
	}
	t.parsed = p
	return t, nil
}

// defaultTexts are the compiled English texts.
var defaultTexts = func() Texts {
	t, err := DefaultTexts().Compile()
	if err != nil {
		panic(err) // the defaults are constants
	}
	return t
}()

// orDefault returns t if compiled, else the default texts: a policy built
// without Compile still derives, in English.
func (t Texts) orDefault() Texts {
	if t.parsed != nil {
		return t
	}
	return defaultTexts
}

// textData is what status templates see.
type textData struct {
	Until, Subject, Location, Message string
}

func (t Texts) render(tmpl *template.Template, d textData) string {
	var b strings.Builder
	if err := tmpl.Execute(&b, d); err != nil {
		return "" // Compile executed it once; nothing else can fail
	}
	return b.String()
}

func (t Texts) meeting(iv *interval, loc *time.Location, now time.Time) string {
	d := textData{Until: t.until(iv.end, loc, now, false), Subject: iv.subject, Location: iv.location}
	if iv.subject != "" {
		return t.render(t.parsed.meetingWith, d)
	}
	return t.render(t.parsed.meeting, d)
}

func (t Texts) oof(until time.Time, message string, loc *time.Location, now time.Time) string {
	d := textData{Message: message}
	if !until.IsZero() {
		d.Until = t.until(until, loc, now, true)
	}
	return t.render(t.parsed.oof, d)
}

func (t Texts) elsewhere(until time.Time, loc *time.Location, now time.Time) string {
	return t.render(t.parsed.elsewhere, textData{Until: t.until(until, loc, now, false)})
}

// until formats an end time in the mailbox's zone: the time of day when
// it is today, else the day (for OOF: "until Mon 1 Dec", read as "back on
// Monday" for an end at Monday 00:00) or the day and time.
func (t Texts) until(end time.Time, loc *time.Location, now time.Time, dateOnly bool) string {
	e, n := end.In(loc), now.In(loc)
	sameDay := e.Year() == n.Year() && e.YearDay() == n.YearDay()
	switch {
	case sameDay:
		return e.Format(t.TimeLayout)
	case dateOnly:
		return t.date(e)
	default:
		return t.date(e) + " " + e.Format(t.TimeLayout)
	}
}

// date formats a day with DateLayout, putting the localized names in for
// Go's "Mon" and "Jan".
func (t Texts) date(d time.Time) string {
	var b strings.Builder
	layout := t.DateLayout
	for layout != "" {
		i := strings.Index(layout, "Mon")
		j := strings.Index(layout, "Jan")
		k, name := -1, ""
		switch {
		case i >= 0 && (j < 0 || i < j):
			k, name = i, t.Weekdays[d.Weekday()]
		case j >= 0:
			k, name = j, t.Months[d.Month()-1]
		}
		if k < 0 {
			b.WriteString(d.Format(layout))
			break
		}
		if k > 0 {
			b.WriteString(d.Format(layout[:k]))
		}
		b.WriteString(name)
		layout = layout[k+3:]
	}
	return b.String()
}
