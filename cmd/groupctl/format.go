package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/dlq"
	"groupflow/messages"
)

var parseSince = dlq.ParseSince

// completionEvent maps a command type to the event that completes it.
var completionEvent = map[string]string{
	messages.CmdProvisionGroup:         messages.EvtGroupProvisioned,
	messages.CmdSendCampaign:           messages.EvtCampaignCompleted,
	messages.CmdSetMembershipQuestions: messages.EvtMembershipQuestionsSet,
	messages.CmdPropagateRules:         messages.EvtRulesPropagated,
	messages.CmdGenerateReport:         messages.EvtReportGenerated,
}

// age renders a duration compactly: 45s, 12m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

// truncate shortens s to n runes on one line.
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// truncateMiddle shortens s to n runes on one line, cutting the middle: an
// error's context is at its start and its cause (the status) at its end.
func truncateMiddle(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	head := (n - 1) * 2 / 5
	tail := n - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// pretty indents JSON; anything else is returned as is. Either way control
// characters are escaped (safeBlock): bodies come from producers.
func pretty(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") == nil {
		return safeBlock(out.String())
	}
	return safeBlock(string(b))
}

// scanStream calls fn for what stream holds on filter (from since, if set)
// when the scan starts, in order, through an ordered consumer.
func scanStream(ctx context.Context, js jetstream.JetStream, stream, filter string, since time.Time, headersOnly bool,
	fn func(jetstream.Msg, *jetstream.MsgMetadata) error) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, HeadersOnly: headersOnly, InactiveThreshold: 30 * time.Second}
	if !since.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	info := cons.CachedInfo()
	if info == nil {
		return nil
	}
	for remaining := info.NumPending; remaining > 0; {
		batch, err := cons.Fetch(int(min(remaining, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			if err := fn(m, md); err != nil {
				return err
			}
			remaining--
			if md.NumPending == 0 {
				remaining = 0
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if got == 0 {
			return ctx.Err()
		}
	}
	return nil
}

// eventLine renders an event as one readable line.
func eventLine(eventType string, at time.Time, body []byte) string {
	e, err := messages.DecodeEvent(eventType, body)
	if err != nil {
		return safe(fmt.Sprintf("%s %-26s %s", at.UTC().Format(time.RFC3339), eventType, truncate(string(body), 200)))
	}
	meta := e.Meta()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-26s cmd=%s", at.UTC().Format(time.RFC3339), eventType, meta.CommandID)
	switch ev := e.(type) {
	case *messages.GroupProvisioned:
		fmt.Fprintf(&b, " group=%s name=%q reused=%t added=%d already=%d removed=%d not_added=%d", ev.GroupID, ev.Name, ev.Reused, ev.Added, ev.AlreadyMembers, len(ev.Removed), len(ev.NotAdded))
		for _, d := range ev.SettingsDiffer {
			verb := "differs"
			if ev.SettingsUpdated {
				verb = "updated"
			}
			fmt.Fprintf(&b, " %s_%s=%s->%s", d.Setting, verb, d.Group, d.Command)
		}
	case *messages.MemberSelected:
		fmt.Fprintf(&b, " campaign=%s member=%s email=%s groups=%s", ev.CampaignID, ev.MemberID, ev.Email, strings.Join(ev.GroupIDs, ","))
		if len(ev.MatchedKeywords) > 0 {
			fmt.Fprintf(&b, " matched=%s", strings.Join(ev.MatchedKeywords, ","))
		}
	case *messages.CampaignCompleted:
		notSub := 0
		for _, n := range ev.Skipped.NotSubscribed {
			notSub += n
		}
		// seen = selected + already_selected + no_email + not_subscribed + unsubscribed + not_matched
		fmt.Fprintf(&b, " campaign=%s audience=%s seen=%d selected=%d already_selected=%d no_email=%d not_subscribed=%d unsubscribed=%d not_matched=%d", ev.CampaignID, ev.AudienceType, ev.MembersSeen, ev.Selected, ev.AlreadySelected, ev.Skipped.NoEmail, notSub, ev.Skipped.Unsubscribed, ev.Skipped.NotMatched)
		if len(ev.GroupsWithoutQuestions) > 0 {
			fmt.Fprintf(&b, " groups_without_questions=%s", strings.Join(ev.GroupsWithoutQuestions, ","))
		}
	case *messages.MembershipQuestionsSet:
		fmt.Fprintf(&b, " groups=%d", len(ev.Groups))
		for _, g := range ev.Groups {
			fmt.Fprintf(&b, " %s:%s", g.GroupID, g.Outcome)
		}
	case *messages.RulesPropagated:
		fmt.Fprintf(&b, " source=%s dry_run=%t rules=%d targets=%d updated=%d would_update=%d failed=%d", ev.SourceGroupID, ev.DryRun, ev.Rules, len(ev.Targets), ev.Updated, ev.WouldUpdate, ev.Failed)
	case *messages.ReportGenerated:
		fmt.Fprintf(&b, " groups=%d top=%d idle=%d html=%s", ev.TotalGroups, len(ev.Top), len(ev.Idle), ev.Objects.HTML)
	case *messages.CommandFailed:
		fmt.Fprintf(&b, " type=%s kind=%s deliveries=%d reason=%q", ev.CommandType, ev.Kind, ev.Deliveries, truncate(ev.Reason, 160))
	case *messages.EmailSent:
		fmt.Fprintf(&b, " campaign=%s member=%s", ev.CampaignID, ev.MemberID)
	case *messages.EmailFailed:
		fmt.Fprintf(&b, " campaign=%s member=%s permanent=%t reason=%q", ev.CampaignID, ev.MemberID, ev.Permanent, truncate(ev.Reason, 160))
	}
	if note := truncationNote(body); note != "" {
		b.WriteString(" " + note)
	}
	if meta.CorrelationID != "" && meta.CorrelationID != meta.CommandID {
		fmt.Fprintf(&b, " corr=%s", meta.CorrelationID)
	}
	return safe(b.String())
}

// safe renders untrusted text (ids, reasons, headers, bodies written by
// producers) for a terminal on one line: control characters (C0, DEL, C1),
// bidirectional overrides and invalid UTF-8 are shown as Go escapes
// (\x1b, \n, \u009b, \u202e), so no escape sequence reaches the terminal.
func safe(s string) string { return escape(s, false) }

// safeBlock is safe for multi-line text: newlines are kept (a "\r\n" too,
// as "\n"), everything else is escaped like safe does.
func safeBlock(s string) string { return escape(s, true) }

func escape(s string, keepNewlines bool) string {
	if !needsEscape(s, keepNewlines) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keepNewlines && r == '\n':
			b.WriteByte('\n')
		case keepNewlines && r == '\r' && strings.HasPrefix(s[i+size:], "\n"):
			// dropped: the "\n" that follows ends the line
		case unsafeRune(r):
			q := strconv.QuoteRune(r) // '\x1b', '\n', '\u009b'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// truncationNote says where the full outcome of a truncated event is
// (messages.Truncation), or "" for an event that is whole.
func truncationNote(body []byte) string {
	var t messages.Truncation
	if json.Unmarshal(body, &t) != nil || !t.Truncated || t.Full == nil {
		return ""
	}
	return safe(fmt.Sprintf("(truncated, full outcome in %s/%s)", t.Full.Bucket, t.Full.Object))
}

func needsEscape(s string, keepNewlines bool) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if unsafeRune(r) && !(keepNewlines && r == '\n') {
			return true
		}
	}
	return false
}

// unsafeRune reports runes a terminal interprets rather than prints.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true // bidirectional controls
	}
	return false
}

// jsonSafe escapes, inside JSON text, the runes a terminal interprets that
// encoding/json leaves raw (DEL, C1 controls, bidirectional overrides) as
// \uXXXX, which keeps the JSON valid and equal in meaning; text that is not
// valid JSON gets safe.
func jsonSafe(s string) string {
	if !json.Valid([]byte(s)) {
		return safe(s)
	}
	if !needsEscape(s, true) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) && r != '\n' && r != '\t' && r != '\r' {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// writeJSON writes v as indented JSON, terminal-safe (jsonSafe).
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", jsonSafe(string(b)))
	return err
}
