package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const specURL = "https://groupflow.invalid/asyncapi.json"

// spec is the AsyncAPI document as JSON-compatible values.
type spec struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	var y any
	if err := yaml.Unmarshal(AsyncAPI, &y); err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	raw, err := json.Marshal(y)
	if err != nil {
		t.Fatalf("asyncapi.yaml is not JSON-compatible: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7) // AsyncAPI schemas are a superset of draft-07
	c.AssertFormat()
	if err := c.AddResource(specURL, doc); err != nil {
		t.Fatal(err)
	}
	return &spec{doc: doc.(map[string]any), compiler: c}
}

func obj(t *testing.T, v any, path string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: not an object: %v", path, v)
	}
	return m
}

// at walks a JSON pointer like "components/schemas/ProvisionGroup".
func (s *spec) at(t *testing.T, ptr string) map[string]any {
	t.Helper()
	var v any = s.doc
	for _, tok := range strings.Split(ptr, "/") {
		v = obj(t, v, ptr)[tok]
	}
	return obj(t, v, ptr)
}

// resolve follows a local $ref.
func (s *spec) resolve(t *testing.T, sch map[string]any) map[string]any {
	t.Helper()
	for {
		ref, ok := sch["$ref"].(string)
		if !ok {
			return sch
		}
		sch = s.at(t, strings.TrimPrefix(ref, "#/"))
	}
}

func (s *spec) schema(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	sch, err := s.compiler.Compile(specURL + "#/" + ptr)
	if err != nil {
		t.Fatalf("compile %s: %v", ptr, err)
	}
	return sch
}

// jsonField is one JSON property of a Go struct.
type jsonField struct {
	name     string
	typ      reflect.Type
	optional bool // omitempty or omitzero
}

// jsonFields lists the JSON properties of struct type typ, flattening embedded structs.
func jsonFields(typ reflect.Type) []jsonField {
	var out []jsonField
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		opt := strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
		out = append(out, jsonField{name: name, typ: f.Type, optional: opt})
	}
	return out
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

func stringsOf(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			out = append(out, x.(string))
		}
	}
	sort.Strings(out)
	return out
}

// checkType asserts that schema sch describes Go type typ: same property
// names, required = the fields without omitempty/omitzero, matching JSON types,
// recursively.
func (s *spec) checkType(t *testing.T, path string, typ reflect.Type, sch map[string]any) {
	t.Helper()
	sch = s.resolve(t, sch)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	want := map[reflect.Kind]string{reflect.String: "string", reflect.Bool: "boolean", reflect.Int: "integer",
		reflect.Int64: "integer", reflect.Slice: "array", reflect.Struct: "object", reflect.Map: "object"}
	switch {
	case typ == timeType:
		if sch["type"] != "string" || sch["format"] != "date-time" {
			t.Errorf("%s: time.Time wants type string, format date-time; got %v", path, sch)
		}
		return
	case typ == rawType:
		if sch["type"] != "object" {
			t.Errorf("%s: json.RawMessage is a JSON object; schema type %v", path, sch["type"])
		}
		return
	}
	if w, ok := want[typ.Kind()]; !ok {
		t.Errorf("%s: unexpected Go kind %s", path, typ.Kind())
	} else if sch["type"] != w {
		t.Errorf("%s: schema type %v, Go type %s wants %q", path, sch["type"], typ, w)
	}
	switch typ.Kind() {
	case reflect.Slice:
		items, _ := sch["items"].(map[string]any)
		if items == nil {
			t.Errorf("%s: array without items", path)
			return
		}
		s.checkType(t, path+"[]", typ.Elem(), items)
	case reflect.Map:
		ap, _ := sch["additionalProperties"].(map[string]any)
		if ap == nil {
			t.Errorf("%s: map without additionalProperties schema", path)
			return
		}
		s.checkType(t, path+"{}", typ.Elem(), ap)
	case reflect.Struct:
		props, _ := sch["properties"].(map[string]any)
		var goNames, goRequired, specNames []string
		fields := jsonFields(typ)
		for _, f := range fields {
			goNames = append(goNames, f.name)
			if !f.optional {
				goRequired = append(goRequired, f.name)
			}
		}
		for k := range props {
			specNames = append(specNames, k)
		}
		sort.Strings(goNames)
		sort.Strings(goRequired)
		sort.Strings(specNames)
		if !slices.Equal(goNames, specNames) {
			t.Errorf("%s (%s): properties drift\n  Go:   %v\n  spec: %v", path, typ.Name(), goNames, specNames)
		}
		if got := stringsOf(sch["required"]); !slices.Equal(got, goRequired) {
			t.Errorf("%s (%s): required drift (Go: fields without omitempty)\n  Go:   %v\n  spec: %v", path, typ.Name(), goRequired, got)
		}
		for _, f := range fields {
			if p, ok := props[f.name].(map[string]any); ok {
				s.checkType(t, path+"."+f.name, f.typ, p)
			}
		}
	}
}

func camel(snake string) string {
	var b strings.Builder
	for _, w := range strings.Split(snake, "_") {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

func TestSpecMatchesGoTypes(t *testing.T) {
	s := loadSpec(t)
	if s.doc["asyncapi"] != "3.0.0" {
		t.Fatalf("asyncapi version %v", s.doc["asyncapi"])
	}
	var types []reflect.Type
	for _, ct := range CommandTypes() {
		c, _ := NewCommand(ct)
		types = append(types, reflect.TypeOf(c).Elem())
	}
	for _, et := range EventTypes() {
		e, _ := NewEvent(et)
		types = append(types, reflect.TypeOf(e).Elem())
	}
	for _, typ := range types {
		t.Run(typ.Name(), func(t *testing.T) {
			s.checkType(t, typ.Name(), typ, s.at(t, "components/schemas/"+typ.Name()))
		})
	}
}

func TestSpecChannels(t *testing.T) {
	s := loadSpec(t)
	var subj Subjects
	check := func(channel, address, message, payload string, headers []string) {
		t.Helper()
		ch := s.at(t, "channels/"+channel)
		if ch["address"] != address {
			t.Errorf("%s: address %v, want %s", channel, ch["address"], address)
		}
		msgs := obj(t, ch["messages"], channel+".messages")
		m := s.resolve(t, obj(t, msgs[message], channel+"."+message))
		if got := s.resolve(t, obj(t, m["payload"], message)); !reflect.DeepEqual(got, s.at(t, "components/schemas/"+payload)) {
			t.Errorf("%s: payload is not %s", channel, payload)
		}
		hdr := obj(t, m["headers"], message+".headers")
		var names []string
		if all, ok := hdr["allOf"].([]any); ok {
			for _, part := range all {
				for k := range obj(t, s.resolve(t, obj(t, part, "allOf"))["properties"], "properties") {
					if !slices.Contains(names, k) {
						names = append(names, k)
					}
				}
			}
		} else {
			for k := range obj(t, s.resolve(t, hdr)["properties"], "properties") {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		sort.Strings(headers)
		if !slices.Equal(names, headers) {
			t.Errorf("%s: headers\n  spec: %v\n  Go:   %v", channel, names, headers)
		}
	}
	cmdHeaders := []string{HeaderNatsMsgID, HeaderTraceparent}
	evtHeaders := []string{HeaderCESpecVersion, HeaderCEID, HeaderCEType, HeaderCESource, HeaderCETime, HeaderCESubject, HeaderContentType, HeaderNatsMsgID, HeaderTraceparent}
	dlqHeaders := []string{HeaderDLQReason, HeaderDLQKind, HeaderDLQOriginalSubject, HeaderDLQHandler, HeaderDLQDeliveries,
		HeaderDLQFirstFailure, HeaderDLQLastFailure, HeaderDLQCommandID, HeaderDLQFields, HeaderNatsMsgID, HeaderTraceparent}
	n := 0
	for _, ct := range CommandTypes() {
		check("cmd_"+ct, subj.Command(ct), camel(ct), camel(ct), slices.Clone(cmdHeaders))
		check("dlq_"+ct, subj.DLQ(ct), "DeadLetter"+camel(ct), camel(ct), slices.Clone(dlqHeaders))
		n += 2
	}
	for _, et := range EventTypes() {
		check("evt_"+et, subj.Event(et), camel(et), camel(et), slices.Clone(evtHeaders))
		n++
		// ce-type is pinned per event.
		m := s.at(t, "components/messages/"+camel(et))
		parts := obj(t, m["headers"], "headers")["allOf"].([]any)
		ceType := obj(t, obj(t, obj(t, parts[1], "")["properties"], "")["ce-type"], "")["const"]
		if ceType != CEType(et) {
			t.Errorf("%s: ce-type %v, want %s", et, ceType, CEType(et))
		}
	}
	if got := len(obj(t, s.doc["channels"], "channels")); got != n {
		t.Errorf("spec has %d channels, Go %d", got, n)
	}
	kinds := stringsOf(s.at(t, "components/schemas/DLQHeaders/properties/Groupflow-Dlq-Kind")["enum"])
	want := []string{FailureExhausted, FailureInvalid, FailureMalformed, FailurePermanent}
	sort.Strings(want)
	if !slices.Equal(kinds, want) {
		t.Errorf("DLQ kinds %v, want %v", kinds, want)
	}
}

// TestSpecRequiredMatchesValidation decodes {} as each command: the
// top-level fields Validate reports as required are the schema's required.
func TestSpecRequiredMatchesValidation(t *testing.T) {
	s := loadSpec(t)
	for _, ct := range CommandTypes() {
		var got []string
		_, err := Decode(ct, []byte(`{}`))
		if ve, ok := err.(*ValidationError); ok {
			for _, f := range ve.Fields {
				if f.Message == "required" || strings.HasPrefix(f.Message, "required (") {
					top, _, _ := strings.Cut(f.Field, ".")
					got = append(got, top)
				}
			}
		} else if err != nil {
			t.Fatalf("%s: %v", ct, err)
		}
		sort.Strings(got)
		if spec := stringsOf(s.at(t, "components/schemas/"+camel(ct))["required"]); !slices.Equal(got, spec) {
			t.Errorf("%s: Validate requires %v, spec requires %v", ct, got, spec)
		}
	}
}

func validateJSON(t *testing.T, sch *jsonschema.Schema, body []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return sch.Validate(v)
}

func TestSpecAcceptsExamples(t *testing.T) {
	s := loadSpec(t)
	for _, ex := range loadExamples(t) {
		t.Run(ex.name, func(t *testing.T) {
			sch := s.schema(t, "components/schemas/"+camel(ex.commandType))
			if err := validateJSON(t, sch, ex.body); err != nil {
				t.Fatalf("example rejected by the spec: %v", err)
			}
			// A decoded command (defaults applied) re-encodes to a valid body too.
			cmd, err := Decode(ex.commandType, ex.body)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(cmd)
			if err := validateJSON(t, sch, b); err != nil {
				t.Fatalf("re-encoded %s rejected: %v", b, err)
			}
		})
	}
}

// TestSpecRejectsInvalid: what Validate rejects, the schema rejects too,
// except rules JSON Schema cannot express.
func TestSpecRejectsInvalid(t *testing.T) {
	s := loadSpec(t)
	notExpressible := map[string]bool{
		"source in targets": true, // cross-field comparison
		"duplicate rule":    true, // uniqueness of one property of items
		"timeZone unknown":  true, // the tz database is not in the schema
		"timeZone local":    true, // "Local" has the shape of a zone name
	}
	for _, tc := range validationCases() {
		t.Run(tc.name, func(t *testing.T) {
			err := validateJSON(t, s.schema(t, "components/schemas/"+camel(tc.typ)), []byte(tc.body))
			if notExpressible[tc.name] {
				if err != nil {
					t.Fatalf("listed as not expressible but rejected; drop it from the list: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("spec accepts a body Validate rejects (%s: %s)", tc.field, tc.msg)
			}
		})
	}
}

// sampleEvents returns one fully populated event of each type.
func sampleEvents() []Event {
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	m := EventMeta{CommandID: "cmd-1", CorrelationID: "corr", SiteID: "site", OccurredAt: at}
	diff := DiffRules([]Rule{{Title: "A", Description: "a"}, {Title: "B"}}, []Rule{{Title: "A", Description: "aa"}, {Title: "C"}})
	return []Event{
		&GroupProvisioned{EventMeta: m, GroupID: "g", Slug: "yoga", Name: "Yoga", Reused: true, Added: 2, AlreadyMembers: 1,
			Removed: []string{"m9"}, NotRemoved: []MemberOutcome{{MemberID: "m8", Reason: "403 Forbidden"}},
			NotAdded: []RowOutcome{{Row: 3, Ref: "r", Kind: KindEmail, Reason: ReasonAmbiguous, Detail: "2 contacts", Candidates: 2}}, WixCalls: 7},
		&MemberSelected{EventMeta: m, CampaignID: "spring", MemberID: "m", ContactID: "c", Email: "a@b.co", FirstName: "A", LastName: "B",
			GroupIDs: []string{"g"}, MatchedKeywords: []string{"pilates"}, Content: json.RawMessage(`{"templateId":"t"}`)},
		&CampaignCompleted{EventMeta: m, CampaignID: "spring", GroupIDs: []string{"g"}, AudienceType: AudienceInterest, MembersSeen: 10, Selected: 5,
			Skipped: Skipped{NoEmail: 1, NotSubscribed: map[string]int{SubscriptionPending: 2}, Unsubscribed: 1, NotMatched: 1}, WixCalls: 3},
		&MembershipQuestionsSet{EventMeta: m, Groups: []GroupOutcome{{GroupID: "g", Outcome: OutcomeFailed, Reason: "404", Questions: 0}}, WixCalls: 1},
		&RulesPropagated{EventMeta: m, SourceGroupID: "s", DryRun: true, Rules: 2,
			Targets: []TargetOutcome{{GroupID: "g", Name: "Yoga", Outcome: OutcomeWouldUpdate, Diff: &diff}}, Updated: 1, WixCalls: 2},
		&ReportGenerated{EventMeta: m, GeneratedAt: at, TotalGroups: 3, Top: []GroupStat{{GroupID: "g", Name: "Yoga", Slug: "yoga", MembersCount: 9}},
			Idle: []IdleGroup{{GroupID: "h", Name: "Old", MembersCount: 1, LastActivity: at.AddDate(0, -2, 0), IdleDays: 61}}, IdleDays: 30,
			Objects: ReportObjects{Bucket: "reports", HTML: "r.html", CSV: "r.csv", JSON: "r.json"}, WixCalls: 4,
			Site: ReportSite{Name: "Acme School", URL: "https://acme.example", TimeZone: "Europe/Berlin"}, AllGroups: true,
			Groups: []ReportGroup{{GroupID: "g", Name: "Yoga", Slug: "yoga", URL: "https://acme.example/group/yoga", Privacy: "PUBLIC", MembersCount: 9,
				CreatedDate: at.AddDate(-1, 0, 0), LastActivity: at, MemberChange: -2}, {GroupID: "n", Name: "New", MembersCount: 1, New: true}},
			Flags:      []ReportFlag{{GroupID: "h", Name: "Old", Kind: FlagSmall, MembersCount: 1, IdleDays: 61, Action: "Merge it"}},
			Changes:    &ReportChanges{PreviousReportID: "r-0", PreviousAt: at.AddDate(0, 0, -7), MemberChange: 3, Added: []GroupStat{{GroupID: "n", Name: "New", MembersCount: 1}}, AddedTotal: 1},
			Recipients: []string{"head@acme.example"}},
		&CommandFailed{EventMeta: m, CommandType: CmdProvisionGroup, Subject: "groups.cmd.provision_group", Kind: FailureInvalid, Reason: "invalid",
			Fields: []FieldError{{Field: "group.name", Message: "required"}}, Deliveries: 1, DLQSubject: "groups.dlq.provision_group"},
		&EmailSent{EventMeta: m, SourceEventID: "member_selected:spring:m", CampaignID: "spring", MemberID: "m", MessageID: "<x@y>"},
		&EmailFailed{EventMeta: m, SourceEventID: "member_selected:spring:m", CampaignID: "spring", MemberID: "m", Reason: "550", Permanent: true},
	}
}

func TestSpecAcceptsEvents(t *testing.T) {
	s := loadSpec(t)
	seen := map[string]bool{}
	for _, e := range sampleEvents() {
		seen[e.EventType()] = true
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateJSON(t, s.schema(t, "components/schemas/"+camel(e.EventType())), b); err != nil {
			t.Errorf("%s %s rejected: %v", e.EventType(), b, err)
		}
		back, err := DecodeEvent(e.EventType(), b)
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Errorf("%s does not round-trip: %v\n%+v\n%+v", e.EventType(), err, back, e)
		}
	}
	for _, et := range EventTypes() {
		if !seen[et] {
			t.Errorf("no sample for %s", et)
		}
	}
}

// TestSpecLimitsMatchConstants: the limits the spec documents for strings
// that become subjects, keys, object names or headers are the constants
// Validate enforces (one source of truth, the spec follows it).
func TestSpecLimitsMatchConstants(t *testing.T) {
	s := loadSpec(t)
	for ptr, want := range map[string]int{
		"components/schemas/CommandId":                             MaxIDLen,
		"components/schemas/SiteId":                                MaxSiteIDLen,
		"components/schemas/CorrelationId":                         MaxCorrelationIDLen,
		"components/schemas/CommandHeaders/properties/Nats-Msg-Id": MaxIDLen,
		"components/schemas/GroupSpec/properties/teaser":           MaxGroupTeaserLen,
		"components/schemas/GroupSpec/properties/memberTitle":      MaxMemberTitleLen,
		"components/schemas/SendCampaign/properties/campaignId":    MaxIDLen,
	} {
		if got := fmt.Sprint(s.at(t, ptr)["maxLength"]); got != strconv.Itoa(want) {
			t.Errorf("%s: maxLength %s, want %d", ptr, got, want)
		}
	}
	// At the limit is valid in both.
	body := `{"id":"` + strings.Repeat("i", MaxIDLen) + `","siteId":"` + strings.Repeat("s", MaxSiteIDLen) + `","correlationId":"` + strings.Repeat("é", MaxCorrelationIDLen) + `"}`
	if err := validateJSON(t, s.schema(t, "components/schemas/GenerateReport"), []byte(body)); err != nil {
		t.Errorf("spec rejects values at the limits: %v", err)
	}
	if _, err := Decode(CmdGenerateReport, []byte(body)); err != nil {
		t.Errorf("Decode rejects values at the limits: %v", err)
	}
}
