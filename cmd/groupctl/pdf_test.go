package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"groupflow/internal/report"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestReportGetPDF: --format pdf prints the stored HTML report to an A4 PDF
// with headless Chromium (skipped without one).
func TestReportGetPDF(t *testing.T) {
	if _, err := findChromium(); err != nil {
		t.Skip(err)
	}
	env := testenv.Start(t, testenv.Quiet())
	at := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	r := &messages.ReportGenerated{EventMeta: messages.EventMeta{CommandID: "rep-pdf"}, GeneratedAt: at, TotalGroups: 1,
		Site: messages.ReportSite{Name: "Acme", TimeZone: "Europe/Berlin"}, Top: []messages.GroupStat{{GroupID: "g", Name: "Yoga", MembersCount: 3}}}
	page, csvData, js, err := report.Render(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := report.Store(context.Background(), env.JS, "rep-pdf", page, csvData, js); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "r.pdf")
	mustGroupctl(t, env, "report", "get", "rep-pdf", "--format", "pdf", "-o", path)
	b, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) || len(b) < 1000 {
		t.Fatalf("pdf: %d bytes %.8q %v", len(b), b, err)
	}
	t.Logf("PDF of a one-group report: %d KB", len(b)>>10)
}
