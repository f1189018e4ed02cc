// Package browsertest runs tests in a real headless browser (Debian's
// chromium through github.com/chromedp/chromedp) and saves their screenshots.
//
// New (and Require, for a test that starts the browser itself) skips the
// test, naming the missing binary and how to install it, when no chromium is
// found (`make chromium` installs it with apt-get as root).
// Screenshots go to the directory of SCREENSHOT_DIR; else, with
// GROUPFLOW_WRITE_SCREENSHOTS=1 (`make screenshots`), to docs/screenshots at
// the module root, refreshing the README's; else to a temporary directory,
// so that a test run leaves the work tree as it was. Each PNG is kept under
// MaxScreenshotBytes.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"groupflow/internal/testutil"
)

// Candidates are the binaries looked for, in order, when CHROMIUM_BIN is unset.
var Candidates = []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "headless-shell"}

// MaxScreenshotBytes bounds one saved screenshot (larger ones fail the test:
// shrink the viewport).
const MaxScreenshotBytes = 300 << 10

// Find returns the browser binary: CHROMIUM_BIN, else the first of
// Candidates found; "" when none.
func Find() string {
	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
		return ""
	}
	for _, c := range Candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return ""
}

// Require returns the browser binary (Find), or skips the test naming what
// was looked for and how to install it.
func Require(t testing.TB) string {
	t.Helper()
	bin := Find()
	if bin == "" {
		t.Skip("browser test skipped: no chromium binary (looked for $CHROMIUM_BIN, else " + strings.Join(Candidates, ", ") + "); " +
			"install it with `make chromium` (apt-get install -y chromium, as root)")
	}
	return bin
}

// Options tune New.
type Options struct {
	// Width and Height of the window (default 1200x800).
	Width, Height int
	// Timeout bounds the whole browser session (default 60s).
	Timeout time.Duration
}

// New starts a headless browser with a temporary profile and returns its
// context (cancelled, and the browser stopped, at the end of the test). It
// skips the test when no browser is installed.
func New(t testing.TB, opts Options) context.Context {
	t.Helper()
	bin := Require(t)
	if opts.Width == 0 {
		opts.Width, opts.Height = 1200, 800
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI and this machine run as root
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(opts.Width, opts.Height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, opts.Timeout)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", bin, err)
	}
	return ctx
}

// Dir returns the screenshot directory: $SCREENSHOT_DIR; else, with
// GROUPFLOW_WRITE_SCREENSHOTS=1, docs/screenshots under the module root
// (testutil.ModuleRoot; none fails the test); else a temporary directory.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("SCREENSHOT_DIR"); d != "" {
		return d
	}
	if os.Getenv("GROUPFLOW_WRITE_SCREENSHOTS") != "1" {
		return t.TempDir()
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	return filepath.Join(root, "docs", "screenshots")
}

// Screenshot saves a PNG of the current viewport as Dir/name.png.
func Screenshot(ctx context.Context, t testing.TB, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(png) > MaxScreenshotBytes {
		t.Fatalf("screenshot %s is %d bytes, over %d", name, len(png), MaxScreenshotBytes)
	}
	dir := Dir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	t.Logf("screenshot %s (%d bytes)", path, len(png))
	return path
}

// Do runs actions in the browser, failing the test with what names them.
func Do(ctx context.Context, t testing.TB, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// Get runs one action that returns a value (Text, Evaluate, ...).
func Get[T any](ctx context.Context, t testing.TB, what string, action chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// AcceptDialogs accepts every JavaScript dialog (confirm, alert) the page
// opens and returns a func counting them so far.
func AcceptDialogs(ctx context.Context) func() int {
	var mu sync.Mutex
	n := 0
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return func() int { mu.Lock(); defer mu.Unlock(); return n }
}
