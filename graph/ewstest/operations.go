package ewstest

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

var requestedViews = []string{"None", "MergedOnly", "FreeBusy", "FreeBusyMerged", "Detailed", "DetailedMerged"}

var weekdayNames = map[string]bool{"Sunday": true, "Monday": true, "Tuesday": true, "Wednesday": true, "Thursday": true, "Friday": true, "Saturday": true}

// checkUTC accepts the request's SerializableTimeZone if it is a valid
// one with no offset at all: the fake answers in UTC only, as the
// gateway asks.
func checkUTC(tz *tzTime) bool {
	return tz != nil && tz.Bias != nil && *tz.Bias == 0 && tz.Month >= 1 && tz.Month <= 12 &&
		tz.DayOrder >= 1 && tz.DayOrder <= 5 && weekdayNames[tz.DayOfWeek] && tz.Time != ""
}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02T15:04:05", s, time.UTC)
}

// getUserAvailability answers as Exchange does, per mailbox in the order
// asked.
func (s *Server) getUserAvailability(w http.ResponseWriter, req *availabilityRequest, rec *Request) int {
	if req.Array != nil {
		for _, d := range req.Array.Data {
			rec.Mailboxes = append(rec.Mailboxes, d.Address)
		}
	}
	tz := req.TimeZone
	switch {
	case tz == nil || tz.Bias == nil || tz.Standard == nil || tz.Daylight == nil:
		return fault(w, "ErrorSchemaValidation", "The request failed schema validation: TimeZone needs Bias, StandardTime and DaylightTime.", 0)
	case *tz.Bias != 0 || !checkUTC(tz.Standard) || !checkUTC(tz.Daylight):
		return fault(w, "ErrorTimeZone", "ewstest answers in UTC only (bias 0 in standard and daylight time, valid rules).", 0)
	case req.Array == nil || len(req.Array.Data) == 0:
		return fault(w, "ErrorSchemaValidation", "The request failed schema validation: MailboxDataArray is empty.", 0)
	case len(req.Array.Data) > 100:
		return fault(w, "ErrorMailboxDataArrayTooBig", fmt.Sprintf("Microsoft.Exchange.InfoWorker.Common.Availability.IdentityArrayTooBigException: The number of mailboxes requested is too big: %d; maximum allowed: 100.", len(req.Array.Data)), 0)
	case req.Options == nil:
		return fault(w, "ErrorSchemaValidation", "The request failed schema validation: FreeBusyViewOptions is missing.", 0)
	}
	start, err1 := parseTime(req.Options.Start)
	end, err2 := parseTime(req.Options.End)
	interval := req.Options.Interval
	if interval == 0 {
		interval = 30
	}
	view := req.Options.View
	if view == "" {
		view = "FreeBusy"
	}
	switch {
	case err1 != nil || err2 != nil:
		return fault(w, "ErrorSchemaValidation", fmt.Sprintf("The request failed schema validation: TimeWindow %v %v", err1, err2), 0)
	case !end.After(start):
		return fault(w, "ErrorInvalidTimeInterval", "The end of the time window is not after its start.", 0)
	case end.Sub(start) > 42*24*time.Hour:
		return fault(w, "ErrorTimeIntervalTooBig", "The time window is longer than 42 days.", 0)
	case interval < 5 || interval > 1440:
		return fault(w, "ErrorInvalidArgument", "MergedFreeBusyIntervalInMinutes must be between 5 and 1440.", 0)
	case !slices.Contains(requestedViews, view):
		return fault(w, "ErrorSchemaValidation", "The request failed schema validation: RequestedView "+view, 0)
	}
	for _, d := range req.Array.Data {
		if d.AttendeeType != "Required" && d.AttendeeType != "Optional" && d.AttendeeType != "Organizer" && d.AttendeeType != "Room" && d.AttendeeType != "Resource" {
			return fault(w, "ErrorSchemaValidation", "The request failed schema validation: AttendeeType "+d.AttendeeType, 0)
		}
	}
	rec.Start, rec.End = start, end
	s.mu.Lock()
	defer s.mu.Unlock()
	return writeXML(w, http.StatusOK, s.renderAvailability(rec.Mailboxes, start, end, time.Duration(interval)*time.Minute, view))
}

// AvailabilityBody is the answer the fake gives to a DetailedMerged
// GetUserAvailability request (for parser benchmarks).
func (s *Server) AvailabilityBody(mailboxes []string, start, end time.Time, interval time.Duration) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renderAvailability(mailboxes, start, end, interval, "DetailedMerged")
}

// renderAvailability writes the answer as the recorded real-server
// answers (fixture D) and the doc sample lay it out.
func (s *Server) renderAvailability(mailboxes []string, start, end time.Time, interval time.Duration, view string) []byte {
	var b bytes.Buffer
	b.WriteString(head)
	b.WriteString(`    <GetUserAvailabilityResponse xmlns="` + nsMsgs + "\">\n<FreeBusyResponseArray>\n")
	for _, addr := range mailboxes {
		b.WriteString("  <FreeBusyResponse>\n")
		mb, ok := s.mailboxes[strings.ToLower(addr)]
		switch {
		case !ok:
			// As Exchange answers an unknown address (mhewedy/ews's recorded
			// answer).
			fmt.Fprintf(&b, `    <ResponseMessage ResponseClass="Error">
      <MessageText>Microsoft.Exchange.InfoWorker.Common.Availability.MailRecipientNotFoundException: Unable to resolve e-mail address %s to an Active Directory object.&#xD;
. Name of the server where exception originated: EXCH01. LID: 57660</MessageText>
      <ResponseCode>ErrorMailRecipientNotFound</ResponseCode>
      <DescriptiveLinkKey>0</DescriptiveLinkKey>
      <MessageXml>
        <ExceptionType xmlns="%s">MailRecipientNotFoundException</ExceptionType>
        <ExceptionCode xmlns="%s">5009</ExceptionCode>
        <ExceptionServerName xmlns="%s">EXCH01</ExceptionServerName>
      </MessageXml>
    </ResponseMessage>
    <FreeBusyView>
      <FreeBusyViewType xmlns="%s">None</FreeBusyViewType>
    </FreeBusyView>
`, esc(addr), nsErrors, nsErrors, nsErrors, nsTypes)
		case mb.ErrorCode != "":
			fmt.Fprintf(&b, `    <ResponseMessage ResponseClass="Error">
      <MessageText>ewstest: %s for %s</MessageText>
      <ResponseCode>%s</ResponseCode>
      <DescriptiveLinkKey>0</DescriptiveLinkKey>
    </ResponseMessage>
    <FreeBusyView>
      <FreeBusyViewType xmlns="%s">None</FreeBusyViewType>
    </FreeBusyView>
`, esc(mb.ErrorCode), esc(addr), esc(mb.ErrorCode), nsTypes)
		default:
			s.renderView(&b, mb, start, end, interval, view)
		}
		b.WriteString("  </FreeBusyResponse>\n")
	}
	b.WriteString("</FreeBusyResponseArray>\n    </GetUserAvailabilityResponse>\n")
	b.WriteString(tail)
	return b.Bytes()
}

func (s *Server) renderView(b *bytes.Buffer, mb *Mailbox, start, end time.Time, interval time.Duration, asked string) {
	view := asked
	if mb.View != "" {
		view = mb.View
	}
	b.WriteString("    <ResponseMessage ResponseClass=\"Success\">\n      <ResponseCode>NoError</ResponseCode>\n    </ResponseMessage>\n    <FreeBusyView>\n")
	fmt.Fprintf(b, "      <FreeBusyViewType xmlns=\"%s\">%s</FreeBusyViewType>\n", nsTypes, esc(view))
	var events []Event
	for _, e := range mb.Events {
		if e.End.After(start) && e.Start.Before(end) {
			events = append(events, e)
		}
	}
	if strings.Contains(view, "Merged") {
		slots := make([]byte, int(end.Sub(start)/interval))
		for i := range slots {
			slots[i] = '0'
			from := start.Add(time.Duration(i) * interval)
			for _, e := range events {
				d := map[string]byte{"Tentative": '1', "Busy": '2', "OOF": '3', "NoData": '4'}[e.BusyType]
				if d > slots[i] && e.Start.Before(from.Add(interval)) && e.End.After(from) {
					slots[i] = d
				}
			}
		}
		fmt.Fprintf(b, "      <MergedFreeBusy xmlns=\"%s\">%s</MergedFreeBusy>\n", nsTypes, slots)
	}
	if view != "MergedOnly" {
		fmt.Fprintf(b, "      <CalendarEventArray xmlns=\"%s\">\n", nsTypes)
		for i, e := range events {
			fmt.Fprintf(b, "        <CalendarEvent>\n          <StartTime>%s</StartTime>\n          <EndTime>%s</EndTime>\n          <BusyType>%s</BusyType>\n",
				s.wireTime(e.Start), s.wireTime(e.End), esc(e.BusyType))
			if strings.HasPrefix(view, "Detailed") {
				b.WriteString("          <CalendarEventDetails>\n")
				fmt.Fprintf(b, "            <ID>%08X</ID>\n", i+1)
				if !e.IsPrivate {
					fmt.Fprintf(b, "            <Subject>%s</Subject>\n            <Location>%s</Location>\n", esc(e.Subject), esc(e.Location))
				}
				fmt.Fprintf(b, "            <IsMeeting>%s</IsMeeting>\n            <IsRecurring>false</IsRecurring>\n            <IsException>false</IsException>\n"+
					"            <IsReminderSet>false</IsReminderSet>\n            <IsPrivate>%s</IsPrivate>\n          </CalendarEventDetails>\n",
					boolText(e.IsMeeting), boolText(e.IsPrivate))
			}
			b.WriteString("        </CalendarEvent>\n")
		}
		b.WriteString("      </CalendarEventArray>\n")
	}
	if mb.TimeZone != nil {
		fmt.Fprintf(b, "      <WorkingHours xmlns=\"%s\">\n", nsTypes)
		writeTimeZone(b, mb.TimeZone, start.Year())
		b.WriteString("        <WorkingPeriodArray>\n          <WorkingPeriod>\n            <DayOfWeek>Monday Tuesday Wednesday Thursday Friday</DayOfWeek>\n" +
			"            <StartTimeInMinutes>480</StartTimeInMinutes>\n            <EndTimeInMinutes>1020</EndTimeInMinutes>\n          </WorkingPeriod>\n        </WorkingPeriodArray>\n      </WorkingHours>\n")
	}
	b.WriteString("    </FreeBusyView>\n")
}

// wireTime writes an instant in the request's zone (UTC): zone-less as
// recorded servers do, or with its offset as the doc sample does.
func (s *Server) wireTime(t time.Time) string {
	if s.OffsetTimes {
		return t.UTC().Format("2006-01-02T15:04:05-07:00")
	}
	return t.UTC().Format("2006-01-02T15:04:05")
}

// writeTimeZone writes loc as a SerializableTimeZone, from its
// transitions in year: Bias is the standard offset west of UTC,
// DaylightTime's Bias the extra of daylight time, and each change is "the
// DayOrder-th (5: last) DayOfWeek of Month at Time", the clock time in the
// offset before the change, as Windows counts it.
func writeTimeZone(b *bytes.Buffer, loc *time.Location, year int) {
	jan := time.Date(year, time.January, 1, 0, 0, 0, 0, time.UTC).In(loc)
	_, off1 := jan.Zone()
	_, next := jan.ZoneBounds()
	type change struct {
		at         time.Time
		from, to   int
		month, ord int
		day, clock string
	}
	var changes []change
	for cur, off := next, off1; !cur.IsZero() && cur.Year() == year && len(changes) < 2; {
		_, to := cur.In(loc).Zone()
		local := cur.Add(time.Duration(off) * time.Second).UTC()
		ord := (local.Day()-1)/7 + 1
		if local.AddDate(0, 0, 7).Month() != local.Month() {
			ord = 5
		}
		changes = append(changes, change{at: cur, from: off, to: to, month: int(local.Month()), ord: ord,
			day: local.Weekday().String(), clock: local.Format("15:04:05")})
		_, cur = cur.In(loc).ZoneBounds()
		off = to
	}
	std, dst := off1, off1
	var toStd, toDST *change
	if len(changes) == 2 {
		for i := range changes {
			c := &changes[i]
			if c.to > c.from {
				toDST, dst = c, c.to
			} else {
				toStd, std = c, c.to
			}
		}
	}
	rule := func(name string, bias int, c *change) {
		if c == nil {
			fmt.Fprintf(b, "          <%s>\n            <Bias>%d</Bias>\n            <Time>00:00:00</Time>\n            <DayOrder>0</DayOrder>\n            <Month>0</Month>\n            <DayOfWeek>Sunday</DayOfWeek>\n          </%s>\n", name, bias, name)
			return
		}
		fmt.Fprintf(b, "          <%s>\n            <Bias>%d</Bias>\n            <Time>%s</Time>\n            <DayOrder>%d</DayOrder>\n            <Month>%d</Month>\n            <DayOfWeek>%s</DayOfWeek>\n          </%s>\n",
			name, bias, c.clock, c.ord, c.month, c.day, name)
	}
	fmt.Fprintf(b, "        <TimeZone>\n          <Bias>%d</Bias>\n", -std/60)
	rule("StandardTime", 0, toStd)
	rule("DaylightTime", -(dst-std)/60, toDST)
	b.WriteString("        </TimeZone>\n")
}

// getMailTips answers OutOfOfficeMessage mail tips as the doc sample lays
// them out: the internal reply while automatic replies are on, with
// Duration when scheduled; an empty Message while they are off.
func (s *Server) getMailTips(w http.ResponseWriter, req *mailTipsRequest, rec *Request) int {
	if req.Recipients != nil {
		for _, m := range req.Recipients.Mailboxes {
			rec.Mailboxes = append(rec.Mailboxes, strings.TrimSpace(m.Address))
		}
	}
	if req.SendingAs != nil {
		rec.SendingAs = strings.TrimSpace(req.SendingAs.Address)
	}
	requested := strings.Fields(req.Requested)
	switch {
	case rec.Impersonated != s.RequireImpersonation:
		return fault(w, "ErrorImpersonateUserDenied", fmt.Sprintf("The account does not have permission to impersonate %q (ewstest expects %q).", rec.Impersonated, s.RequireImpersonation), 0)
	case rec.SendingAs == "":
		return fault(w, "ErrorSchemaValidation", "The request failed schema validation: SendingAs is required.", 0)
	case len(rec.Mailboxes) == 0:
		return fault(w, "ErrorSchemaValidation", "The request failed schema validation: Recipients is empty.", 0)
	case !slices.Contains(requested, "OutOfOfficeMessage") && !slices.Contains(requested, "All"):
		return fault(w, "ErrorSchemaValidation", "ewstest serves OutOfOfficeMessage mail tips; asked: "+req.Requested, 0)
	}
	var b bytes.Buffer
	b.WriteString(head)
	if len(rec.Mailboxes) > s.MaxMailTips {
		// The limit's error is not documented; this is the fake's.
		fmt.Fprintf(&b, `    <GetMailTipsResponse ResponseClass="Error" xmlns="%s">
      <MessageText>The number of recipients (%d) exceeds MaxRecipientsPerGetMailTipsRequest (%d).</MessageText>
      <ResponseCode>ErrorInvalidRecipients</ResponseCode>
    </GetMailTipsResponse>
`, nsMsgs, len(rec.Mailboxes), s.MaxMailTips)
		b.WriteString(tail)
		return writeXML(w, http.StatusOK, b.Bytes())
	}
	fmt.Fprintf(&b, "    <GetMailTipsResponse ResponseClass=\"Success\" xmlns=\"%s\">\n      <ResponseCode>NoError</ResponseCode>\n      <ResponseMessages>\n", nsMsgs)
	now := s.Now()
	s.mu.Lock()
	for _, addr := range rec.Mailboxes {
		mb, ok := s.mailboxes[strings.ToLower(addr)]
		if ok && mb.MailTipsErrorCode != "" {
			fmt.Fprintf(&b, "        <MailTipsResponseMessageType ResponseClass=\"Error\">\n        <MessageText>ewstest: %s for %s</MessageText>\n        <ResponseCode>%s</ResponseCode>\n        </MailTipsResponseMessageType>\n",
				esc(mb.MailTipsErrorCode), esc(addr), esc(mb.MailTipsErrorCode))
			continue
		}
		fmt.Fprintf(&b, `        <MailTipsResponseMessageType ResponseClass="Success">
        <ResponseCode>NoError</ResponseCode>
        <m:MailTips xmlns:m="%s">
          <t:RecipientAddress xmlns:t="%s">
          <t:Name/>
          <t:EmailAddress>%s</t:EmailAddress>
          <t:RoutingType>SMTP</t:RoutingType>
          </t:RecipientAddress>
`, nsMsgs, nsTypes, esc(addr))
		switch {
		case ok && mb.PendingMailTips:
			fmt.Fprintf(&b, "          <t:PendingMailTips xmlns:t=\"%s\">OutOfOfficeMessage</t:PendingMailTips>\n", nsTypes)
		default:
			fmt.Fprintf(&b, "          <t:PendingMailTips xmlns:t=\"%s\"/>\n          <t:OutOfOffice xmlns:t=\"%s\">\n            <t:ReplyBody>\n", nsTypes, nsTypes)
			var oof *OOF
			if ok && mb.OOF != nil && (mb.OOF.Start.IsZero() || !now.Before(mb.OOF.Start) && now.Before(mb.OOF.End)) {
				oof = mb.OOF
			}
			if oof == nil {
				b.WriteString("              <t:Message/>\n            </t:ReplyBody>\n")
			} else {
				fmt.Fprintf(&b, "              <t:Message>%s</t:Message>\n            </t:ReplyBody>\n", esc(oof.Message))
				if !oof.Start.IsZero() {
					fmt.Fprintf(&b, "            <t:Duration>\n              <t:StartTime>%s</t:StartTime>\n              <t:EndTime>%s</t:EndTime>\n            </t:Duration>\n",
						s.wireTime(oof.Start), s.wireTime(oof.End))
				}
			}
			b.WriteString("          </t:OutOfOffice>\n")
		}
		if slices.Contains(requested, "InvalidRecipient") || slices.Contains(requested, "All") {
			fmt.Fprintf(&b, "          <t:InvalidRecipient xmlns:t=\"%s\">%s</t:InvalidRecipient>\n", nsTypes, boolText(!ok))
		}
		b.WriteString("        </m:MailTips>\n        </MailTipsResponseMessageType>\n")
	}
	s.mu.Unlock()
	b.WriteString("      </ResponseMessages>\n    </GetMailTipsResponse>\n")
	b.WriteString(tail)
	return writeXML(w, http.StatusOK, b.Bytes())
}
