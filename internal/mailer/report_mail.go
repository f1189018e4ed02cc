package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"text/template"
	"time"

	"github.com/wneessen/go-mail"
	"go.uber.org/zap"

	"groupflow/internal/broker"
	"groupflow/internal/failure"
	"groupflow/internal/oneline"
	"groupflow/internal/report"
	"groupflow/messages"
)

// ReportDurable is the consumer of report_generated events.
const ReportDurable = "groupmail_reports"

// HeaderReportID names the report in a report mail.
const HeaderReportID = "X-Groupflow-Report-Id"

// Report mail: groupmail mails each report_generated event to the site's
// report recipients (ReportGenerated.Recipients, from the processor's site
// configuration) — the stored HTML report as the body, the CSV attached —
// exactly once per report with the protocol of member mails: a
// compare-and-set claim in the send registry (key: the event id), the send
// through the same Sender, the record marked sent, then the ack. A
// redelivery finds the record and acknowledges without sending. groupmail
// rather than the processor sends it because groupmail owns SMTP, its rate,
// its registry and its credentials; the processor never talks SMTP.
//
// The subject is the template report.subject.tmpl of the template directory
// when present (text/template over the event, with .SiteName and .Period),
// else "Groups report · <site name> · <period>".

// reportConsumerSpec is the durable consumer of report mails; Run reads it
// on the same Source and router as member mails.
func (m *Mailer) reportConsumerSpec() broker.ConsumerSpec {
	return broker.ConsumerSpec{
		Durable:       ReportDurable,
		Description:   "groupmail: mails each report_generated to the site's report recipients",
		FilterSubject: m.cfg.Subjects.Event(messages.EvtReportGenerated),
		AckWait:       m.cfg.AckWait,
		MaxDeliver:    m.consumerMaxDeliver(),
		MaxAckPending: 4,
	}
}

// processReport mails one report_generated delivery and decides its
// outcome as member mails do: ack, nak with a delay, abandon, or (a
// permanent failure, or the last delivery's) a dead letter on
// Subjects.DLQ(report_generated) announced by email_failed.
func (m *Mailer) processReport(ctx context.Context, d *delivery) outcome {
	d.log = m.log.Named("reports").With(zap.String("subject", d.subject), zap.Uint64("stream_seq", d.seq), zap.Int("delivery", d.n))
	delay, err := m.mailReport(ctx, d)
	switch {
	case err == nil:
		return ack()
	case failure.IsPermanent(err):
		return m.fail(ctx, d, err)
	case delay > 0 && ctx.Err() == nil && !d.last:
		d.log.Warn("report mail failed; it will be redelivered", zap.Duration("redelivery_in", delay), zap.Error(err))
		return nak(delay)
	}
	return m.transient(ctx, d, err)
}

// mailReport sends one report mail unless the registry says it was sent.
// It returns the redelivery delay with a transient error.
func (m *Mailer) mailReport(ctx context.Context, d *delivery) (time.Duration, error) {
	ev, err := messages.DecodeEvent(messages.EvtReportGenerated, d.msg.Payload)
	if err != nil {
		d.eventID = fallbackID(d.msg)
		return 0, &PermanentError{Reason: ReasonMalformed, Err: err}
	}
	r := ev.(*messages.ReportGenerated)
	d.report = r
	id := r.EventID()
	d.eventID = id
	log := d.log.With(zap.String("event_id", id), zap.String("report_id", r.CommandID))
	d.log = log
	if len(r.Recipients) == 0 {
		log.Info("no report recipients configured for the site; not mailed")
		return 0, nil
	}
	prev, err := m.store.Get(ctx, id)
	if err != nil {
		return time.Second, err
	}
	var rev uint64
	claims := 1
	if prev != nil {
		if prev.Status == StatusSent {
			log.Info("report already mailed", zap.String("message_id", prev.MessageID))
			return 0, nil
		}
		if prev.Status == StatusSending {
			age, err := m.claimAge(ctx, prev)
			if err != nil {
				return time.Second, err
			}
			if age < m.cfg.ClaimTimeout {
				return m.cfg.ClaimTimeout - age + time.Second, fmt.Errorf("%w: by %s", errClaimHeld, prev.Owner)
			}
		}
		rev, claims = prev.Revision, prev.Claims+1
	}
	email, msgID, err := m.buildReport(ctx, r)
	if err != nil {
		return 2 * time.Second, err
	}
	if err := m.waitRate(ctx); err != nil { // the same send rate as member mails
		return time.Second, err
	}
	claim := Record{Status: StatusSending, EventID: id, MessageID: msgID, Owner: m.cfg.Instance, Claims: claims, At: m.cfg.now().UTC()}
	if rev, err = m.store.Write(ctx, id, claim, rev); err != nil {
		return time.Second, err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.SendTimeout)
	err = m.deps.Sender.Send(sctx, email)
	cancel()
	if err != nil {
		// SMTP errors quote the recipients: strip them, as for member mails,
		// before the text goes into logs, the record or a dead letter.
		text := err.Error()
		for _, to := range r.Recipients {
			text = redact(text, to)
		}
		claim.Status, claim.Reason = StatusFailed, text
		_, _ = m.store.Write(context.WithoutCancel(ctx), id, claim, rev)
		if perm, code := ClassifySMTP(err); perm {
			return 0, &PermanentError{Reason: ReasonSMTPPermanent, Err: fmt.Errorf("smtp rejected the report mail (%d): %s", code, text)}
		}
		return 5 * time.Second, errors.New("smtp: " + text)
	}
	claim.Status = StatusSent
	if _, err := m.store.Write(context.WithoutCancel(ctx), id, claim, rev); err != nil {
		log.Error("report mailed but not recorded", zap.Error(err))
	}
	log.Info("report mailed", zap.Int("recipients", len(r.Recipients)), zap.String("message_id", msgID))
	return 0, nil
}

// buildReport makes the mail: the stored HTML as the body, the CSV attached.
func (m *Mailer) buildReport(ctx context.Context, r *messages.ReportGenerated) (*mail.Msg, string, error) {
	page, err := report.Load(ctx, m.deps.JS, r.CommandID, report.FormatHTML)
	if err != nil {
		return nil, "", err
	}
	csvData, err := report.Load(ctx, m.deps.JS, r.CommandID, report.FormatCSV)
	if err != nil {
		return nil, "", err
	}
	subject, err := m.reportSubject(r)
	if err != nil {
		return nil, "", &PermanentError{Reason: ReasonTemplate, Err: err}
	}
	msgID := MessageID(r.EventID(), m.domain)
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	msg.FromMailAddress(m.from)
	for _, to := range r.Recipients {
		if !messages.ValidEmail(to) {
			return nil, "", permanentf(ReasonRecipient, "report recipient is not an email address")
		}
		if err := msg.AddTo(to); err != nil {
			return nil, "", permanentf(ReasonRecipient, "report recipient: %v", err)
		}
	}
	msg.Subject(subject)
	msg.SetMessageIDWithValue(msgID)
	msg.SetDate()
	msg.SetGenHeader(mail.Header(HeaderEventID), r.EventID())
	msg.SetGenHeader(mail.Header(HeaderReportID), r.CommandID)
	msg.SetBodyString(mail.TypeTextHTML, string(page))
	name := "groups-report-" + r.GeneratedAt.In(report.Location(r)).Format("2006-01-02") + ".csv"
	if err := msg.AttachReader(name, bytes.NewReader(csvData), mail.WithFileContentType("text/csv; charset=utf-8")); err != nil {
		return nil, "", fmt.Errorf("attach csv: %w", err)
	}
	return msg, msgID, nil
}

// reportSubject renders report.subject.tmpl (if there is one that reads and
// parses) or the default subject.
func (m *Mailer) reportSubject(r *messages.ReportGenerated) (string, error) {
	// The site name is the producer's: cut so that the default subject is
	// bounded as a rendered one is (MaxRenderedSubject).
	def := "Groups report · " + oneline.Cut(report.SiteName(r), MaxRenderedSubject/2) + " · " + report.Period(r)
	dir := m.renderer.Dir()
	if dir == "" {
		return oneLine(def), nil
	}
	// Read as member templates are (ReadTemplateFile: a FIFO or a device
	// in its place is not waited on nor read whole).
	text, err := ReadTemplateFile(dir, "report.subject.tmpl")
	if err != nil {
		return oneLine(def), nil //nolint:nilerr // no usable template: the default subject
	}
	t, err := template.New("report.subject.tmpl").Parse(text)
	if err != nil {
		return oneLine(def), nil //nolint:nilerr // no usable template: the default subject
	}
	// Bounded as a member mail's subject is: the event is the producer's.
	subject, err := execute(t, map[string]any{"Report": r, "SiteName": report.SiteName(r), "Period": report.Period(r)}, MaxRenderedSubject)
	if err != nil {
		return "", fmt.Errorf("report.subject.tmpl: %w", err)
	}
	return oneLine(subject), nil
}
