// Command mailview is the demo's mail viewer: it lists the mails a Mailpit
// server holds, and shows each one, read through Mailpit's API (a Mailpit
// built with `go install` has no web UI). `make demo` starts it.
//
//	mailview --mailpit http://127.0.0.1:8025 --listen 127.0.0.1:8026
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"groupflow/internal/mailview"
	"groupflow/internal/netsafe"
	"groupflow/internal/version"
)

func main() {
	if version.PrintIfAsked("mailview", os.Args[1:], os.Stdout) {
		return
	}
	fs := flag.NewFlagSet("mailview", flag.ContinueOnError)
	api := fs.String("mailpit", "http://127.0.0.1:8025", "Mailpit's HTTP address (its API)")
	listen := fs.String("listen", "127.0.0.1:8026", "address of the viewer's web page")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if err := run(*api, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "mailview:", err)
		os.Exit(1)
	}
}

func run(api, listen string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	h := mailview.New(api)
	if !netsafe.IsLoopbackAddr(listen) {
		// Beyond loopback, clients name the host as they reach it.
		h.AnyHost = true
		fmt.Fprintf(os.Stderr, "mailview: WARNING: %s is beyond loopback: anyone reaching it reads the demo's mails\n", listen)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	fmt.Printf("mailview: the mails of %s at http://%s\n", api, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
