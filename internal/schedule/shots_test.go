package schedule_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"groupflow/internal/browsertest"
)

// shoot loads url in headless Chromium width pixels wide, waits until
// the JavaScript expression ready is true, and saves a full-page PNG as
// name; it checks the PNG decodes, is a page (not a blank strip) and stays
// under browsertest.MaxScreenshotBytes, in browsertest.Dir. It skips the
// test when no chromium is installed (browsertest.Require).
func shoot(t *testing.T, url, ready string, width int, name string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browsertest.Require(t)), chromedp.NoSandbox, chromedp.WindowSize(width, 900),
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
	if len(buf) > browsertest.MaxScreenshotBytes {
		t.Errorf("screenshot %s is %d KB, want < %d KB", name, len(buf)>>10, browsertest.MaxScreenshotBytes>>10)
	}
	dir := browsertest.Dir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s: %d KB", path, len(buf)>>10)
}
