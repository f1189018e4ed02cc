package roster_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"groupflow/internal/roster"
	"groupflow/messages"
)

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		people []messages.Person
		bad    []string
	}{
		{
			name: "plain",
			in:   "email,name\nann@example.com,Ann Lee\nbob@example.com,Bob\n",
			people: []messages.Person{
				{Email: "ann@example.com", Name: "Ann Lee", Ref: "2"},
				{Email: "bob@example.com", Name: "Bob", Ref: "3"},
			},
		},
		{
			name: "header variants and order, extra columns ignored",
			in:   "Member Since,E-Mail,First Name,last_name,Contact ID,Phone Number,notes\n2020,ann@example.com,Ann,Lee,c-1,+1 415 555 0100,vip\n",
			people: []messages.Person{
				{Email: "ann@example.com", FirstName: "Ann", LastName: "Lee", ContactID: "c-1", Phone: "+1 415 555 0100", Ref: "2"},
			},
		},
		{
			name:   "contactId camel case, firstName/lastName",
			in:     "contactId,firstName,lastName\nc-9,Zoe,Ng\n",
			people: []messages.Person{{ContactID: "c-9", FirstName: "Zoe", LastName: "Ng", Ref: "2"}},
		},
		{
			name:   "contact_id and upper case",
			in:     "CONTACT_ID,EMAIL\nc-1,\n",
			people: []messages.Person{{ContactID: "c-1", Ref: "2"}},
		},
		{
			name:   "UTF-8 BOM",
			in:     "\ufeffemail\nann@example.com\n",
			people: []messages.Person{{Email: "ann@example.com", Ref: "2"}},
		},
		{
			name: "quoted fields with commas, quotes and a line break",
			in:   "name,email\n\"Lee, Ann \"\"AJ\"\"\",ann@example.com\n\"Two\nLines\",two@example.com\nBob,bob@example.com\n",
			people: []messages.Person{
				{Name: `Lee, Ann "AJ"`, Email: "ann@example.com", Ref: "2"},
				{Name: "Two\nLines", Email: "two@example.com", Ref: "3"},
				{Name: "Bob", Email: "bob@example.com", Ref: "5"},
			},
		},
		{
			name: "blank lines and empty rows skipped, line numbers kept",
			in:   "email,name\n\nann@example.com,Ann\n,\n  \nbob@example.com,Bob\n",
			people: []messages.Person{
				{Email: "ann@example.com", Name: "Ann", Ref: "3"},
				{Email: "bob@example.com", Name: "Bob", Ref: "6"},
			},
		},
		{
			name: "CRLF and short rows",
			in:   "email,phone,name\r\nann@example.com\r\n,,Bob\r\n",
			people: []messages.Person{
				{Email: "ann@example.com", Ref: "2"},
				{Name: "Bob", Ref: "3"},
			},
		},
		{
			name: "CR-only line ends, unquoted",
			in:   "email,name\rann@example.com,Ann\rbob@example.com,Bob",
			people: []messages.Person{
				{Email: "ann@example.com", Name: "Ann", Ref: "2"},
				{Email: "bob@example.com", Name: "Bob", Ref: "3"},
			},
		},
		{
			// Classic Mac line ends (Excel for Mac's "CSV (Macintosh)"):
			// encoding/csv ends lines only at LF, so the whole file was one
			// header row and every person was lost without a word.
			name: "CR-only line ends",
			in:   "email,name\rann@example.com,Ann\rtwo@example.com,\"Two\rLines\"\rbob@example.com,Bob\r",
			people: []messages.Person{
				{Email: "ann@example.com", Name: "Ann", Ref: "2"},
				{Email: "two@example.com", Name: "Two\nLines", Ref: "3"},
				{Email: "bob@example.com", Name: "Bob", Ref: "5"},
			},
		},
		{
			name: "bad rows with line numbers",
			in:   "email,name,notes\nann@example.com,Ann,\nnot-an-email,Bob,\n,,only notes\nann@example,Carl,\nzed@example.com,,\n",
			people: []messages.Person{
				{Email: "ann@example.com", Name: "Ann", Ref: "2"},
				{Email: "zed@example.com", Ref: "6"},
			},
			bad: []string{
				`line 3: malformed email "not-an-email"`,
				"line 4: no email, phone, contactId or name",
				`line 5: malformed email "ann@example"`,
			},
		},
		{
			// Excel's plain "CSV" is Windows-1252: "José" is 4A 6F 73 E9.
			name:   "a row that is not UTF-8 is reported, not sent mangled",
			in:     "email,name\nann@example.com,Ann\njose@example.com,Jos\xe9\n",
			people: []messages.Person{{Email: "ann@example.com", Name: "Ann", Ref: "2"}},
			bad:    []string{"line 3: " + roster.ProblemNotUTF8},
		},
		{
			name:   "malformed email reported even when a contact id is given",
			in:     "contactId,email\nc-1,nope\n",
			bad:    []string{`line 2: malformed email "nope"`},
			people: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := roster.Read(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%#v", res.People) != fmt.Sprintf("%#v", tc.people) {
				t.Errorf("people:\n got %#v\nwant %#v", res.People, tc.people)
			}
			var bad []string
			for _, b := range res.Bad {
				bad = append(bad, b.String())
			}
			if strings.Join(bad, "|") != strings.Join(tc.bad, "|") {
				t.Errorf("bad rows:\n got %q\nwant %q", bad, tc.bad)
			}
		})
	}
}

func TestReadColumns(t *testing.T) {
	res, err := roster.Read(strings.NewReader("Email,Notes,email,First Name\n"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Columns[roster.ColEmail] != "Email" || res.Columns[roster.ColFirstName] != "First Name" || len(res.Columns) != 2 {
		t.Errorf("columns: %v", res.Columns)
	}
	if strings.Join(res.Ignored, ",") != "Notes,email" {
		t.Errorf("ignored: %v", res.Ignored)
	}
	if len(res.People) != 0 || len(res.Bad) != 0 {
		t.Errorf("rows: %+v", res)
	}
}

func TestReadErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":            "",
		"only a BOM":       "\ufeff",
		"no known column":  "foo,bar\n1,2\n",
		"unbalanced quote": "email,name\n\"ann@example.com,Ann\n",
	} {
		if _, err := roster.Read(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err := roster.Read(strings.NewReader("email,name\nann@example.com,\"Ann\" Lee\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bare quote: %v", err)
	}
}

func TestReadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(path, []byte("email\nann@example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := roster.ReadFile(path)
	if err != nil || len(res.People) != 1 {
		t.Fatalf("%v %+v", err, res)
	}
	if _, err := roster.ReadFile(path + ".missing"); err == nil {
		t.Fatal("missing file read")
	}
}

func TestColumnOf(t *testing.T) {
	for in, want := range map[string]roster.Column{
		"email": roster.ColEmail, " E-mail ": roster.ColEmail, "Email Address": roster.ColEmail,
		"phone": roster.ColPhone, "Phone number": roster.ColPhone,
		"contactId": roster.ColContactID, "contact id": roster.ColContactID, "contact_id": roster.ColContactID,
		"Name": roster.ColName, "Full Name": roster.ColName,
		"first name": roster.ColFirstName, "firstName": roster.ColFirstName, "first_name": roster.ColFirstName,
		"last name": roster.ColLastName, "LastName": roster.ColLastName, "surname": roster.ColLastName,
	} {
		if got, ok := roster.ColumnOf(in); !ok || got != want {
			t.Errorf("%q: %q %v", in, got, ok)
		}
	}
	if _, ok := roster.ColumnOf("notes"); ok {
		t.Error("notes recognised")
	}
}

// endless yields rows forever, counting the bytes read.
type endless struct{ n int64 }

var endlessRows = []byte(strings.Repeat("ann@example.com\n", 4096))

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, endlessRows)
	e.n += int64(n)
	return n, nil
}

func TestReadBoundsTheFile(t *testing.T) {
	src := &endless{}
	_, err := roster.Read(io.MultiReader(strings.NewReader("email\n"), src))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("endless roster: %v", err)
	}
	if src.n > roster.MaxFileBytes+1<<20 {
		t.Errorf("read %d bytes of an endless roster, bound %d", src.n, roster.MaxFileBytes)
	}
	// One byte over the bound is refused before any parsing.
	over := "email\n" + strings.Repeat(" ", roster.MaxFileBytes-len("email\n")) + "\n"
	if _, err := roster.Read(strings.NewReader(over)); err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Fatalf("roster of %d bytes: %v", len(over), err)
	}
}
