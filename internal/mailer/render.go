package mailer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	texttemplate "text/template"
	"unicode"
	"unicode/utf8"

	"groupflow/internal/oneline"
	"groupflow/internal/regularfile"
	"groupflow/messages"
)

// Template file suffixes: <dir>/<templateId><suffix>.
const (
	SuffixSubject = ".subject.tmpl"
	SuffixText    = ".txt.tmpl"
	SuffixHTML    = ".html.tmpl"
)

// Content is the part of MemberSelected.Content (SendCampaign.Content) the
// mailer reads. Other fields are ignored.
type Content struct {
	// TemplateID picks the templates <id>.subject.tmpl, <id>.txt.tmpl and
	// <id>.html.tmpl. Required.
	TemplateID string `json:"templateId"`
	// Subject is offered to the templates as .Subject (the subject template
	// may use it or not).
	Subject string `json:"subject,omitempty"`
	// Variables are offered to the templates under .Variables and, unless a
	// member field has the same name, at the top level.
	Variables map[string]any `json:"variables,omitempty"`
}

// Rendered is one email's rendered parts.
type Rendered struct {
	Subject string
	Text    string // empty when the template has no .txt.tmpl
	HTML    string // empty when the template has no .html.tmpl
}

// MaxTemplateFile bounds the size of one template file, in bytes.
const MaxTemplateFile = 1 << 20

// Bounds of a rendered email's parts, in bytes.
const (
	MaxRenderedSubject = 16 << 10
	MaxRenderedBody    = 4 << 20 // the text body and the HTML body each
)

// ReadTemplateFile reads the template file name in dir. The directory is
// config, not trusted to hold only files: what name opens (symlinks are
// followed: a mounted ConfigMap is made of them) must be a regular file of
// at most MaxTemplateFile bytes, else a permanent ReasonTemplate error
// naming the file. It is opened without blocking, so a FIFO is refused
// rather than waited on for ever, and read no further than the bound, so a
// device (/dev/zero) or a file that grows is refused rather than read into
// memory. A file that is not there is an error wrapping os.ErrNotExist;
// other errors (permissions, I/O) are transient.
func ReadTemplateFile(dir, name string) (string, error) {
	b, err := regularfile.Read(filepath.Join(dir, name), MaxTemplateFile)
	var notRegular *regularfile.NotRegularError
	var tooLarge *regularfile.TooLargeError
	switch {
	case errors.As(err, &notRegular):
		return "", permanentf(ReasonTemplate, "%s is not a regular file (%s) in %s", name, fileKind(notRegular.Mode), dir)
	case errors.As(err, &tooLarge):
		return "", permanentf(ReasonTemplate, "%s is larger than %d bytes in %s", name, MaxTemplateFile, dir)
	case err != nil:
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	return string(b), nil
}

// fileKind names what a file that is not a regular one is.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.Type().String()
}

// templateIDPattern keeps template ids to plain file names (no paths).
var templateIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// Renderer renders emails from the templates in one directory. Parsed
// templates are cached by template id; a missing template is not cached, so
// a template added later is found (and dead letters replayed after adding it
// succeed). Reset drops the cache (the command reloads on SIGHUP).
type Renderer struct {
	dir string

	mu    sync.Mutex
	cache map[string]*templateSet
}

type templateSet struct {
	subject *texttemplate.Template
	text    *texttemplate.Template // nil when absent
	html    *htmltemplate.Template // nil when absent
}

// NewRenderer returns a renderer over dir.
func NewRenderer(dir string) *Renderer {
	return &Renderer{dir: dir, cache: map[string]*templateSet{}}
}

// Dir returns the template directory.
func (r *Renderer) Dir() string { return r.dir }

// Reset drops every cached template.
func (r *Renderer) Reset() {
	r.mu.Lock()
	r.cache = map[string]*templateSet{}
	r.mu.Unlock()
}

// ParseContent reads the content object of a MemberSelected event. Errors are
// permanent.
func ParseContent(raw json.RawMessage) (*Content, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, permanentf(ReasonTemplate, "event has no content: content.templateId is required")
	}
	var c Content
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, permanentf(ReasonTemplate, "content is not a JSON object with templateId/subject/variables: %v", err)
	}
	if c.TemplateID == "" {
		return nil, permanentf(ReasonTemplate, "content.templateId is required")
	}
	if !templateIDPattern.MatchString(c.TemplateID) || strings.Contains(c.TemplateID, "..") {
		return nil, permanentf(ReasonTemplate, "content.templateId %q is not a valid template name (letters, digits, '-', '_', '.')", c.TemplateID)
	}
	return &c, nil
}

func (r *Renderer) load(id string) (*templateSet, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.cache[id]; ok {
		return s, nil
	}
	read := func(suffix string, required bool) (string, bool, error) {
		name := id + suffix
		text, err := ReadTemplateFile(r.dir, name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				if required {
					return "", false, permanentf(ReasonTemplate, "template %q: missing file %s in %s", id, name, r.dir)
				}
				return "", false, nil
			}
			// Permanent for a file that is no template file (ReadTemplateFile);
			// an unreadable directory (permissions, I/O) may be fixed
			// without touching the event: transient.
			return "", false, fmt.Errorf("template %q: %w", id, err)
		}
		return text, true, nil
	}
	subj, _, err := read(SuffixSubject, true)
	if err != nil {
		return nil, err
	}
	txt, hasTxt, err := read(SuffixText, false)
	if err != nil {
		return nil, err
	}
	htm, hasHTML, err := read(SuffixHTML, false)
	if err != nil {
		return nil, err
	}
	if !hasTxt && !hasHTML {
		return nil, permanentf(ReasonTemplate, "template %q: missing body: neither %s nor %s in %s", id, id+SuffixText, id+SuffixHTML, r.dir)
	}
	s := &templateSet{}
	if s.subject, err = texttemplate.New(id + SuffixSubject).Option("missingkey=error").Parse(subj); err != nil {
		return nil, permanentf(ReasonTemplate, "template %q: parse %s: %v", id, id+SuffixSubject, err)
	}
	if hasTxt {
		if s.text, err = texttemplate.New(id + SuffixText).Option("missingkey=error").Parse(txt); err != nil {
			return nil, permanentf(ReasonTemplate, "template %q: parse %s: %v", id, id+SuffixText, err)
		}
	}
	if hasHTML {
		if s.html, err = htmltemplate.New(id + SuffixHTML).Option("missingkey=error").Parse(htm); err != nil {
			return nil, permanentf(ReasonTemplate, "template %q: parse %s: %v", id, id+SuffixHTML, err)
		}
	}
	r.cache[id] = s
	return s, nil
}

// TemplateData builds the data the templates see: the member's fields
// (EventID, CampaignID, MemberID, ContactID, Email, FirstName, LastName,
// Name, GroupIDs, MatchedKeywords), Subject (content.subject),
// UnsubscribeURL, Variables (content.variables), and every variable at the
// top level unless a member field has its name. It is a map so that
// missingkey=error turns a missing variable into an error.
func TemplateData(ev *messages.MemberSelected, c *Content, unsubscribeURL string) map[string]any {
	data := make(map[string]any, len(c.Variables)+16)
	for k, v := range c.Variables {
		data[k] = v
	}
	vars := c.Variables
	if vars == nil {
		vars = map[string]any{}
	}
	data["EventID"] = ev.EventID()
	data["CampaignID"] = ev.CampaignID
	data["MemberID"] = ev.MemberID
	data["ContactID"] = ev.ContactID
	data["Email"] = ev.Email
	data["FirstName"] = ev.FirstName
	data["LastName"] = ev.LastName
	data["Name"] = strings.TrimSpace(ev.FirstName + " " + ev.LastName)
	data["GroupIDs"] = ev.GroupIDs
	data["MatchedKeywords"] = ev.MatchedKeywords
	data["Subject"] = c.Subject
	data["UnsubscribeURL"] = unsubscribeURL
	data["Variables"] = vars
	return data
}

// Render renders the email of ev. Errors from a missing template file, a
// template that does not parse, a missing variable or a part rendering
// past its bound (MaxRenderedSubject, MaxRenderedBody) are permanent
// (failure.IsPermanent) and say which template and what is missing.
func (r *Renderer) Render(ev *messages.MemberSelected, c *Content, unsubscribeURL string) (*Rendered, error) {
	s, err := r.load(c.TemplateID)
	if err != nil {
		return nil, err
	}
	data := TemplateData(ev, c, unsubscribeURL)
	var out Rendered
	subject, err := execute(s.subject, data, MaxRenderedSubject)
	if err != nil {
		return nil, permanentf(ReasonTemplate, "template %q: render subject: %v", c.TemplateID, err)
	}
	out.Subject = oneLine(subject)
	if out.Subject == "" {
		return nil, permanentf(ReasonTemplate, "template %q: the subject renders empty", c.TemplateID)
	}
	if s.text != nil {
		if out.Text, err = execute(s.text, data, MaxRenderedBody); err != nil {
			return nil, permanentf(ReasonTemplate, "template %q: render text body: %v", c.TemplateID, err)
		}
	}
	if s.html != nil {
		if out.HTML, err = execute(s.html, data, MaxRenderedBody); err != nil {
			return nil, permanentf(ReasonTemplate, "template %q: render HTML body: %v", c.TemplateID, err)
		}
	}
	return &out, nil
}

// executor is a parsed text or HTML template.
type executor interface {
	Execute(w io.Writer, data any) error
}

// execute renders t with data, stopping as soon as the output passes limit
// bytes: the templates are the operator's but the data (content.variables)
// the producer's, and a template ranging over a list variable multiplies
// it.
func execute(t executor, data any, limit int) (string, error) {
	w := &boundedWriter{limit: limit}
	if err := t.Execute(w, data); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

// boundedWriter collects up to limit bytes; a write past them fails.
type boundedWriter struct {
	b     strings.Builder
	limit int
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.limit {
		return 0, fmt.Errorf("renders more than %d bytes", w.limit)
	}
	return w.b.Write(p)
}

// oneLine folds a rendered subject or display name to one line of
// printable text (no header injection): control characters (C0, DEL, C1)
// and runs of white space become one space.
func oneLine(s string) string { return oneline.Fold(s) }

// maxDisplayName bounds a recipient's display name, in bytes.
const maxDisplayName = 256

// errRecipient is the reason of a refused recipient address.
var errRecipient = errors.New("the recipient address is not valid")

// recipient builds a member's To address as a structured address, never as
// text to be parsed: the display name may hold anything printable (quotes,
// commas, backslashes, non-ASCII letters; net/mail quotes or RFC 2047-encodes
// it when the header is written), with control characters (CR, LF, NUL...)
// turned to spaces and runs of spaces collapsed, so a name can never start a
// header of its own; the address must be a bare addr-spec (no display name,
// no list, no control character), else errRecipient.
func recipient(firstName, lastName, email string) (*netmail.Address, error) {
	for _, r := range email {
		if r < 0x21 || r == 0x7f || r == ',' || r == '<' || r == '>' {
			return nil, errRecipient
		}
	}
	a, err := netmail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email {
		return nil, errRecipient
	}
	name := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, firstName+" "+lastName)
	name = oneline.Cut(oneLine(name), maxDisplayName)
	return &netmail.Address{Name: name, Address: a.Address}, nil
}

// UnsubscribeTemplate renders the List-Unsubscribe URL. Its data are the
// query-escaped EventID, CampaignID, MemberID and ContactID, so
// "https://example.com/unsub?m={{.MemberID}}&c={{.CampaignID}}" is safe as
// written.
type UnsubscribeTemplate struct {
	t *texttemplate.Template
}

// ParseUnsubscribe parses an unsubscribe URL template; "" gives nil (no
// List-Unsubscribe header).
func ParseUnsubscribe(s string) (*UnsubscribeTemplate, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	t, err := texttemplate.New("unsubscribe").Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fmt.Errorf("unsubscribe url template: %w", err)
	}
	u := &UnsubscribeTemplate{t: t}
	sample, err := u.Render(&messages.MemberSelected{CampaignID: "c", MemberID: "m"})
	if err != nil {
		return nil, err
	}
	pu, err := url.Parse(sample)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http" && pu.Scheme != "mailto") {
		return nil, fmt.Errorf("unsubscribe url template: %q does not render an absolute http(s) or mailto URL", s)
	}
	return u, nil
}

// Render returns the URL for ev.
func (u *UnsubscribeTemplate) Render(ev *messages.MemberSelected) (string, error) {
	if u == nil {
		return "", nil
	}
	var b strings.Builder
	err := u.t.Execute(&b, map[string]string{
		"EventID":    url.QueryEscape(ev.EventID()),
		"CampaignID": url.QueryEscape(ev.CampaignID),
		"MemberID":   url.QueryEscape(ev.MemberID),
		"ContactID":  url.QueryEscape(ev.ContactID),
	})
	if err != nil {
		return "", fmt.Errorf("unsubscribe url template: %w", err)
	}
	return oneLine(b.String()), nil
}
