package mailer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"groupflow/internal/failure"
	"groupflow/messages"
)

func writeTemplates(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRenderSampleTemplates(t *testing.T) {
	r := NewRenderer(filepath.Join("..", "..", "deploy", "templates"))
	ev := &messages.MemberSelected{CampaignID: "c1", MemberID: "m1", Email: "a@example.com", FirstName: `<b>Ann</b>`}
	c, err := ParseContent(json.RawMessage(`{"templateId":"spring-offer","variables":{"discount":"20%","validUntil":"May 31","code":"X","shopUrl":"https://shop.example"}}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(ev, c, "https://u.example/?m=m1")
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject != "<b>Ann</b>, your spring offer: 20% off" || !strings.Contains(out.Text, "Hi <b>Ann</b>,") ||
		!strings.Contains(out.HTML, "Hi &lt;b&gt;Ann&lt;/b&gt;,") || !strings.Contains(out.HTML, `href="https://u.example/?m=m1"`) {
		t.Errorf("rendered %+v", out)
	}
	// content.subject wins in the sample subject template.
	c.Subject = "Custom\r\nBcc: evil@example.com"
	out, err = r.Render(ev, c, "")
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject != "Custom Bcc: evil@example.com" {
		t.Errorf("subject not folded to one line: %q", out.Subject)
	}
	// Other control characters (NUL, ESC, DEL, C1) are no header's either.
	c.Subject = "Custom\x00Null\x1b[31mRed\x7f\u0085End\u009b"
	if out, err = r.Render(ev, c, ""); err != nil {
		t.Fatal(err)
	}
	if out.Subject != "Custom Null [31mRed End" {
		t.Errorf("control characters left in the subject: %q", out.Subject)
	}
}

func TestRenderErrorsArePermanentAndClear(t *testing.T) {
	dir := writeTemplates(t, map[string]string{
		"a.subject.tmpl":        "Hi {{.FirstName}}",
		"a.txt.tmpl":            "Code {{.code}} / {{.Variables.code}}",
		"nobody.subject.tmpl":   "x",
		"broken.subject.tmpl":   "{{.FirstName",
		"broken.txt.tmpl":       "x",
		"htmlonly.subject.tmpl": "S",
		"htmlonly.html.tmpl":    "<p>{{.FirstName}}</p>",
	})
	r := NewRenderer(dir)
	ev := &messages.MemberSelected{CampaignID: "c", MemberID: "m", FirstName: "Ann"}
	for _, tc := range []struct{ content, want string }{
		{`{"templateId":"a"}`, `template "a": render text body: template: a.txt.tmpl:1:7: executing "a.txt.tmpl" at <.code>: map has no entry for key "code"`},
		{`{"templateId":"zzz"}`, `template "zzz": missing file zzz.subject.tmpl in ` + dir},
		{`{"templateId":"nobody"}`, `template "nobody": missing body: neither nobody.txt.tmpl nor nobody.html.tmpl`},
		{`{"templateId":"broken"}`, `template "broken": parse broken.subject.tmpl`},
	} {
		c, err := ParseContent(json.RawMessage(tc.content))
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Render(ev, c, "")
		if err == nil || !failure.IsPermanent(err) || reasonOf(err) != ReasonTemplate || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want permanent containing %q", tc.content, err, tc.want)
		}
	}
	for _, bad := range []string{``, `null`, `[]`, `{}`, `{"templateId":"../x"}`, `{"templateId":"a/b"}`, `{"templateId":".hidden"}`} {
		if _, err := ParseContent(json.RawMessage(bad)); err == nil || !failure.IsPermanent(err) {
			t.Errorf("ParseContent(%s) = %v, want a permanent error", bad, err)
		}
	}
	// Variables at the top level and under .Variables; an HTML-only template.
	c, _ := ParseContent(json.RawMessage(`{"templateId":"a","variables":{"code":"Z9","FirstName":"spoof"}}`))
	out, err := r.Render(ev, c, "")
	if err != nil || out.Subject != "Hi Ann" || out.Text != "Code Z9 / Z9" || out.HTML != "" {
		t.Errorf("render = %+v, %v", out, err)
	}
	c, _ = ParseContent(json.RawMessage(`{"templateId":"htmlonly"}`))
	if out, err := r.Render(ev, c, ""); err != nil || out.HTML != "<p>Ann</p>" || out.Text != "" {
		t.Errorf("html only = %+v, %v", out, err)
	}
	// A template added after a miss is found; cached ones survive deletion until Reset.
	c, _ = ParseContent(json.RawMessage(`{"templateId":"late"}`))
	if _, err := r.Render(ev, c, ""); err == nil {
		t.Fatal("missing template rendered")
	}
	_ = os.WriteFile(filepath.Join(dir, "late.subject.tmpl"), []byte("L"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "late.txt.tmpl"), []byte("late"), 0o644)
	if out, err := r.Render(ev, c, ""); err != nil || out.Text != "late" {
		t.Fatalf("late template: %+v, %v", out, err)
	}
	_ = os.WriteFile(filepath.Join(dir, "late.txt.tmpl"), []byte("v2"), 0o644)
	if out, _ := r.Render(ev, c, ""); out.Text != "late" {
		t.Errorf("cache not used: %q", out.Text)
	}
	r.Reset()
	if out, _ := r.Render(ev, c, ""); out.Text != "v2" {
		t.Errorf("Reset did not reload: %q", out.Text)
	}
}

func TestUnsubscribeTemplate(t *testing.T) {
	u, err := ParseUnsubscribe("https://x.example/unsub?m={{.MemberID}}&c={{.CampaignID}}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := u.Render(&messages.MemberSelected{CampaignID: "spring 2026&x=1", MemberID: "m/1"})
	if err != nil || got != "https://x.example/unsub?m=m%2F1&c=spring+2026%26x%3D1" {
		t.Errorf("got %q, %v", got, err)
	}
	if u, err := ParseUnsubscribe(""); u != nil || err != nil {
		t.Errorf("empty: %v %v", u, err)
	}
	for _, bad := range []string{"{{.Nope}}", "not a url {{.MemberID}}", "ftp://x/{{.MemberID}}", "{{"} {
		if _, err := ParseUnsubscribe(bad); err == nil {
			t.Errorf("ParseUnsubscribe(%q) accepted", bad)
		}
	}
}

func TestMessageIDAndKeyAreDeterministic(t *testing.T) {
	a := MessageID("member_selected:c:m", "acme.example")
	if a != MessageID("member_selected:c:m", "acme.example") || a == MessageID("member_selected:c:m2", "acme.example") ||
		!strings.HasPrefix(a, "groupmail.") || !strings.HasSuffix(a, "@acme.example") {
		t.Errorf("MessageID %q", a)
	}
	if k := Key("member_selected:c%3A1:m"); len(k) != 64 || strings.ContainsAny(k, ":%") {
		t.Errorf("Key %q", k)
	}
}

func TestRedact(t *testing.T) {
	got := redact("550 5.1.1 <Bob@Example.com>: rejected, affected recipient(s): bob@example.com", "bob@example.com")
	if strings.Contains(strings.ToLower(got), "bob@example.com") || !strings.Contains(got, "550 5.1.1") {
		t.Errorf("redact = %q", got)
	}
}

func TestSMTPConfigValidateAndString(t *testing.T) {
	ok := SMTPConfig{Host: "smtp.example", Port: 587, TLS: TLSStartTLS, Username: "u", Password: "hunter2"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if s := ok.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "auth=plain") {
		t.Errorf("String() = %q", s)
	}
	for _, bad := range []SMTPConfig{
		{Port: 25, TLS: TLSNone},
		{Host: "h", Port: 0, TLS: TLSNone},
		{Host: "h", Port: 25, TLS: "ssl"},
		{Host: "h", Port: 25, TLS: TLSNone, Username: "u", Password: "p"}, // plain auth in clear
		{Host: "h", Port: 25, TLS: TLSStartTLS, Auth: AuthLogin},          // no username
		{Host: "h", Port: 25, TLS: TLSStartTLS, Auth: "cram"},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if err := (SMTPConfig{Host: "h", Port: 1025, TLS: TLSNone, Auth: AuthPlainNoEnc, Username: "u"}).Validate(); err != nil {
		t.Errorf("plain-noenc: %v", err)
	}
}
