package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"groupflow/internal/broker"
	"groupflow/internal/report"
	"groupflow/messages"
)

func (a *app) reportCmd() *cobra.Command {
	c := &cobra.Command{Use: "report", Short: "Fetch generated group reports"}
	var format, out string
	get := &cobra.Command{
		Use:   "get REPORT_ID [--format html|csv|json|pdf] [-o FILE]",
		Short: "Fetch a report rendered by generate_report (the report id is its command id); pdf prints the HTML with headless Chromium",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			pdf := strings.EqualFold(strings.TrimSpace(format), "pdf")
			if pdf {
				format = "html"
			}
			b, err := a.loadReport(c.Context(), args[0], format)
			if err != nil {
				return err
			}
			if pdf {
				if b, err = htmlToPDF(c.Context(), b); err != nil {
					return err
				}
			}
			if out == "" || out == "-" {
				_, err = a.stdout.Write(b)
				return err
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return err
			}
			a.errf("wrote %s (%d bytes)\n", out, len(b))
			return nil
		},
	}
	get.Flags().StringVar(&format, "format", "html", "html, csv, json or pdf (needs chromium)")
	get.Flags().StringVarP(&out, "output", "o", "", "write to this file (default stdout)")
	c.AddCommand(get)
	return c
}

// loadReport reads a report file from the reports object store, named as
// internal/report names it (report.ObjectName).
func (a *app) loadReport(ctx context.Context, id, format string) ([]byte, error) {
	format = strings.ToLower(strings.TrimSpace(format))
	switch format {
	case "html", "csv", "json":
	default:
		return nil, fmt.Errorf("unknown format %q (want html, csv or json)", format)
	}
	js, err := a.connect()
	if err != nil {
		return nil, err
	}
	store, err := js.ObjectStore(ctx, broker.ReportsBucket)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", broker.ReportsBucket, err)
	}
	b, err := store.GetBytes(ctx, report.ObjectName(id, format))
	if errors.Is(err, jetstream.ErrObjectNotFound) && report.ObjectName(id, format) != id+"."+format && len(id) <= messages.MaxIDLen {
		b, err = store.GetBytes(ctx, id+"."+format) // stored before ids were escaped
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("no report %s.%s in %s (groupctl status %s tells whether it was generated)", id, format, broker.ReportsBucket, id)
	}
	return b, err
}
