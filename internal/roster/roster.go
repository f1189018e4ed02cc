// Package roster reads the people of a ProvisionGroup command from a CSV
// file whose header row names the columns: email, phone, contactId, name,
// first name and last name, in any order, spelled loosely ("E-mail",
// "contact_id", "First Name"), extra columns ignored. It accepts a UTF-8 BOM,
// LF, CRLF or CR-only line ends, quoted fields (with commas, quotes and line
// breaks) and blank lines, and reports unusable rows with their line numbers
// instead of sending them.
package roster

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"groupflow/messages"
)

// BadRow is a row left out of the roster.
type BadRow struct {
	// Line is the 1-based line number of the row in the file.
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

func (b BadRow) String() string { return fmt.Sprintf("line %d: %s", b.Line, b.Reason) }

// Column names a recognised column.
type Column string

// Recognised columns.
const (
	ColEmail     Column = "email"
	ColPhone     Column = "phone"
	ColContactID Column = "contactId"
	ColName      Column = "name"
	ColFirstName Column = "firstName"
	ColLastName  Column = "lastName"
)

// aliases maps a normalised header (lower case, without spaces, '_', '-'
// and '.') to its column.
var aliases = map[string]Column{
	"email": ColEmail, "emailaddress": ColEmail, "mail": ColEmail,
	"phone": ColPhone, "phonenumber": ColPhone, "mobile": ColPhone, "tel": ColPhone, "telephone": ColPhone,
	"contactid": ColContactID, "contact": ColContactID, "wixcontactid": ColContactID,
	"name": ColName, "fullname": ColName,
	"firstname": ColFirstName, "first": ColFirstName, "givenname": ColFirstName, "forename": ColFirstName,
	"lastname": ColLastName, "last": ColLastName, "surname": ColLastName, "familyname": ColLastName,
}

// ColumnOf returns the column a header cell names, if any.
func ColumnOf(header string) (Column, bool) {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(header)) {
		switch r {
		case ' ', '_', '-', '.', '\t':
			continue
		}
		b.WriteRune(r)
	}
	c, ok := aliases[b.String()]
	return c, ok
}

// Result is a parsed roster.
type Result struct {
	// People are the usable rows, Ref set to the row's line number.
	People []messages.Person
	// Bad are the rows left out, in file order.
	Bad []BadRow
	// Columns maps each recognised column to its header cell.
	Columns map[Column]string
	// Ignored lists header cells naming no column.
	Ignored []string
}

// MaxFileBytes bounds a roster file (64 MiB): far more than MaxPeople
// rows with many extra columns, and a bound on the memory a hostile or
// mistaken file (a database dump, /dev/zero) can take.
const MaxFileBytes = 64 << 20

// ReadFile parses the roster file at path.
func ReadFile(path string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f)
}

// Read parses a roster. Its error is fatal (no header, no identifier
// column, malformed CSV, more than MaxFileBytes); unusable rows are reported in Result.Bad.
func Read(r io.Reader) (*Result, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("roster: file is larger than %d MiB", MaxFileBytes>>20)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if !bytes.ContainsRune(data, '\n') {
		// Classic Mac line ends (CR only): encoding/csv ends a record only at
		// LF, so the whole file would be one header row and every row lost.
		data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true

	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("roster: empty file (want a header row naming the columns)")
	}
	if err != nil {
		return nil, fmt.Errorf("roster: %w", err)
	}
	res := &Result{Columns: map[Column]string{}}
	index := map[Column]int{}
	for i, h := range header {
		c, ok := ColumnOf(h)
		if !ok {
			if strings.TrimSpace(h) != "" {
				res.Ignored = append(res.Ignored, h)
			}
			continue
		}
		if _, dup := index[c]; dup {
			res.Ignored = append(res.Ignored, h)
			continue
		}
		index[c] = i
		res.Columns[c] = h
	}
	if len(index) == 0 {
		return nil, fmt.Errorf("roster: the header row %q names no column (want email, phone, contactId, name, first name or last name)", strings.Join(header, ","))
	}
	field := func(rec []string, c Column) string {
		i, ok := index[c]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("roster: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if blank(rec) {
			continue
		}
		p := messages.Person{
			Email:     field(rec, ColEmail),
			Phone:     field(rec, ColPhone),
			ContactID: field(rec, ColContactID),
			Name:      field(rec, ColName),
			FirstName: field(rec, ColFirstName),
			LastName:  field(rec, ColLastName),
			Ref:       strconv.Itoa(line),
		}
		if reason := problem(p); reason != "" {
			res.Bad = append(res.Bad, BadRow{Line: line, Reason: reason})
			continue
		}
		res.People = append(res.People, p)
	}
	return res, nil
}

// ProblemNotUTF8 is the bad-row reason of a row whose fields are not UTF-8
// text (a roster saved in a legacy encoding, such as Excel's plain "CSV"):
// sent, its bytes would become U+FFFD replacement characters.
const ProblemNotUTF8 = "not UTF-8 text (save the roster as CSV UTF-8)"

// problem says why a row cannot be used, or "".
func problem(p messages.Person) string {
	if p.Kind() == "" {
		return messages.ProblemNoIdentifier
	}
	for _, f := range []string{p.Email, p.Phone, p.ContactID, p.Name, p.FirstName, p.LastName} {
		if !utf8.ValidString(f) {
			return ProblemNotUTF8
		}
	}
	if p.Email != "" && !messages.ValidEmail(p.Email) {
		return fmt.Sprintf("%s %q", messages.ProblemMalformedEmail, p.Email)
	}
	return p.Problem()
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}
