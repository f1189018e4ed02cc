package schedule_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshotDir is where screenshots go: docs/screenshots with
// GROUPFLOW_WRITE_SCREENSHOTS=1 (to refresh the README's), else a temp dir.
func screenshotDir(t *testing.T) string {
	if os.Getenv("GROUPFLOW_WRITE_SCREENSHOTS") == "1" {
		dir := filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// chromium returns the browser, or skips the test with the reason.
func chromium(t *testing.T) string {
	for _, p := range []string{os.Getenv("CHROMIUM_BIN"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	t.Skip("no headless Chromium (apt-get install -y chromium, or set CHROMIUM_BIN): screenshots not taken")
	return ""
}

// shoot loads url in headless Chromium width pixels wide, waits until
// the JavaScript expression ready is true, and saves a full-page PNG as
// name; it checks the PNG decodes, is a page (not a blank strip) and stays
// under 300 KB.
func shoot(t *testing.T, url, ready string, width int, name string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.WindowSize(width, 900),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("hide-scrollbars", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](ready, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("%s: page not ready (%s): %v", name, ready, err)
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: a PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	if b := img.Bounds(); b.Dx() < width*9/10 || b.Dy() < 400 {
		t.Errorf("screenshot %s is %v", name, b)
	}
	if len(buf) > 300<<10 {
		t.Errorf("screenshot %s is %d KB, want < 300 KB", name, len(buf)>>10)
	}
	path := filepath.Join(screenshotDir(t), name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s: %d KB", path, len(buf)>>10)
}
