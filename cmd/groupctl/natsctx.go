package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// natsContext is the part of a nats CLI context
// (~/.config/nats/context/<name>.json) groupctl uses.
type natsContext struct {
	URL         string `json:"url"`
	User        string `json:"user"`
	Password    string `json:"password"`
	Token       string `json:"token"`
	Creds       string `json:"creds"`
	NKey        string `json:"nkey"`
	Cert        string `json:"cert"`
	Key         string `json:"key"`
	CA          string `json:"ca"`
	InboxPrefix string `json:"inbox_prefix"`
}

// maxContextBytes bounds a context file.
const maxContextBytes = 64 << 10

// loadNATSContext reads the nats CLI context name from
// $XDG_CONFIG_HOME/nats/context (default ~/.config/nats/context).
func loadNATSContext(name string, getenv func(string) string) (*natsContext, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("--context %q: not a context name", name)
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("--context %s: %w", name, err)
		}
		dir = filepath.Join(home, ".config")
	}
	path := filepath.Join(dir, "nats", "context", name+".json")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--context %s: %w", name, err)
	}
	defer f.Close()
	var c natsContext
	dec := json.NewDecoder(&limitReader{r: f, n: maxContextBytes})
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("--context %s: %s: %w", name, path, err)
	}
	return &c, nil
}

type limitReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("over %d bytes", maxContextBytes)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
