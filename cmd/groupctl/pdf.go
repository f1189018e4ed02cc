package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPaths are where htmlToPDF looks for a headless browser
// (CHROMIUM_BIN first).
var chromiumPaths = []string{"chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"}

// htmlToPDF prints a report page to PDF with headless Chromium: the page's
// own print stylesheet (A4, links as text) applies. The page is loaded
// from a private temporary file with JavaScript off (a report has none)
// and no network needed (it is self-contained).
func htmlToPDF(ctx context.Context, page []byte) ([]byte, error) {
	bin, err := findChromium()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "groupctl-pdf-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, page, 0o600); err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.Flag("disable-javascript", true),
		chromedp.Flag("blink-settings", "scriptEnabled=false"), chromedp.UserDataDir(filepath.Join(dir, "profile")))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+file)); err != nil {
		return nil, fmt.Errorf("pdf: load the report in %s: %w", bin, err)
	}
	tctx, cancel := context.WithTimeout(bctx, time.Minute)
	defer cancel()
	pdf, err := chromedp.Run(tctx, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFPrintBackground()))
	if err != nil {
		return nil, fmt.Errorf("pdf: print: %w", err)
	}
	return pdf, nil
}

func findChromium() (string, error) {
	for _, p := range append([]string{os.Getenv("CHROMIUM_BIN")}, chromiumPaths...) {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", errors.New("pdf needs headless Chromium (apt-get install -y chromium, or set CHROMIUM_BIN); --format html and print from a browser work too")
}
