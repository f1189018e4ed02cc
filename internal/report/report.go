// Package report renders groupflow's group report (a ReportGenerated event)
// for people — a self-contained HTML page in the site's local time, with
// groups linked to their pages, what changed since the previous report, the
// groups needing attention with a suggested action, a growth chart (inline
// SVG) and a print stylesheet — and for machines as CSV and JSON with the
// same fields. It stores and loads the rendered files in the JetStream
// Object Store bucket broker.ReportsBucket under "<reportId>.html|csv|json",
// with a per-site pointer to the latest all-groups report (PointerName),
// which the next all-groups report of the site is compared with.
package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/natsname"
	"groupflow/messages"
)

// Formats accepted by Load and ObjectName.
const (
	FormatHTML = "html"
	FormatCSV  = "csv"
	FormatJSON = "json"
)

// ErrNotFound is returned (wrapped) by Load when the report object does not exist.
var ErrNotFound = errors.New("report not found")

// ObjectName returns the object name of a report file:
// natsname.ObjectName(reportID, format), i.e. "<reportID>.<format>" when
// the id is a safe token ([A-Za-z0-9_-], at most 64 long), else
// "h<hash of the id>.<format>". Object names become part of NATS subjects:
// an id as it came would let a long one close the connection.
func ObjectName(reportID, format string) string { return natsname.ObjectName(reportID, format) }

// legacyObjectName is the name reports were stored under before ObjectName
// escaped ids ("<reportID>.<format>"); Load falls back to it when it is
// short enough to be looked up safely.
func legacyObjectName(reportID, format string) (string, bool) {
	n := reportID + "." + format
	return n, n != ObjectName(reportID, format) && len(n) <= maxLegacyName
}

// maxLegacyName bounds a legacy object name Load looks up: ids were never
// longer than messages.MaxIDLen once validated, and the meta subject is
// the name in base64 (4/3 longer).
const maxLegacyName = messages.MaxIDLen + 8

// Objects returns the object names of a report's three files.
func Objects(reportID string) messages.ReportObjects {
	return messages.ReportObjects{
		Bucket: broker.ReportsBucket,
		HTML:   ObjectName(reportID, FormatHTML),
		CSV:    ObjectName(reportID, FormatCSV),
		JSON:   ObjectName(reportID, FormatJSON),
	}
}

// Render returns the report as an HTML page, a CSV file and indented JSON
// (the event itself).
func Render(r *messages.ReportGenerated) (htmlOut, csvOut, jsonOut []byte, err error) {
	if r == nil {
		return nil, nil, nil, errors.New("report: nil report")
	}
	if htmlOut, err = renderHTML(r); err != nil {
		return nil, nil, nil, err
	}
	if csvOut, err = renderCSV(r); err != nil {
		return nil, nil, nil, err
	}
	if jsonOut, err = json.MarshalIndent(r, "", "  "); err != nil {
		return nil, nil, nil, fmt.Errorf("report json: %w", err)
	}
	return htmlOut, csvOut, append(jsonOut, '\n'), nil
}

// Store puts the rendered files into the reports bucket (overwriting a
// previous version, so a retried command stores the same names) and returns
// their names.
func Store(ctx context.Context, js jetstream.JetStream, reportID string, htmlData, csvData, jsonData []byte) (messages.ReportObjects, error) {
	if reportID == "" {
		return messages.ReportObjects{}, errors.New("report: empty report id")
	}
	// Bounded: a reply lost in a broker failover must become a retried
	// error, not a wait as long as the handler's deadline.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	store, err := js.ObjectStore(ctx, broker.ReportsBucket)
	if err != nil {
		return messages.ReportObjects{}, fmt.Errorf("open object store %s: %w", broker.ReportsBucket, err)
	}
	objs := Objects(reportID)
	chunk := broker.ObjectChunkSize(js.Conn().MaxPayload()) // chunks that fit one message
	for _, f := range []struct {
		name, ctype string
		data        []byte
	}{
		{objs.HTML, "text/html; charset=utf-8", htmlData},
		{objs.CSV, "text/csv; charset=utf-8", csvData},
		{objs.JSON, "application/json", jsonData},
	} {
		meta := jetstream.ObjectMeta{Name: f.name, Description: "groupflow report " + describeID(reportID), Headers: map[string][]string{"Content-Type": {f.ctype}},
			Opts: &jetstream.ObjectMetaOptions{ChunkSize: chunk}}
		if _, err := store.Put(ctx, meta, bytes.NewReader(f.data)); err != nil {
			return messages.ReportObjects{}, fmt.Errorf("store %s: %w", f.name, err)
		}
	}
	return objs, nil
}

// describeID is the report id for the object's description, bounded.
func describeID(id string) string {
	if r := []rune(id); len(r) > messages.MaxIDLen {
		return string(r[:messages.MaxIDLen]) + "…"
	}
	return id
}

// Load returns one stored file of a report; format is html, csv or json.
func Load(ctx context.Context, js jetstream.JetStream, reportID, format string) ([]byte, error) {
	format = strings.ToLower(strings.TrimSpace(format))
	switch format {
	case FormatHTML, FormatCSV, FormatJSON:
	default:
		return nil, fmt.Errorf("report: unknown format %q (want html, csv or json)", format)
	}
	store, err := js.ObjectStore(ctx, broker.ReportsBucket)
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", broker.ReportsBucket, err)
	}
	b, err := store.GetBytes(ctx, ObjectName(reportID, format))
	if legacy, ok := legacyObjectName(reportID, format); ok && errors.Is(err, jetstream.ErrObjectNotFound) {
		b, err = store.GetBytes(ctx, legacy)
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ObjectName(reportID, format))
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", ObjectName(reportID, format), err)
	}
	return b, nil
}
