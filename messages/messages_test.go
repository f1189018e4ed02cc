package messages

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestExamplesDecode(t *testing.T) {
	for _, ex := range loadExamples(t) {
		t.Run(ex.name, func(t *testing.T) {
			cmd, err := Decode(ex.commandType, ex.body)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if cmd.CommandType() != ex.commandType {
				t.Fatalf("type %q, want %q", cmd.CommandType(), ex.commandType)
			}
		})
	}
}

func TestDecodeExamplesValues(t *testing.T) {
	cmd, err := Decode(CmdProvisionGroup, []byte(`{"id":"prov-1","group":{"name":"Yoga Monday","privacyStatus":"PRIVATE"},"people":[{"email":"ann@example.com"},{"phone":"+1 555 0100"},{"contactId":"<id>"},{"name":"Ann Lee"}],"membership":"add"}`))
	if err != nil {
		t.Fatal(err)
	}
	pg := cmd.(*ProvisionGroup)
	want := &ProvisionGroup{
		CommandMeta: CommandMeta{ID: "prov-1"},
		Group:       GroupSpec{Name: "Yoga Monday", PrivacyStatus: PrivacyPrivate},
		People:      []Person{{Email: "ann@example.com"}, {Phone: "+1 555 0100"}, {ContactID: "<id>"}, {Name: "Ann Lee"}},
		Membership:  MembershipAdd,
	}
	if !reflect.DeepEqual(pg, want) {
		t.Fatalf("got %+v\nwant %+v", pg, want)
	}
	if pg.Meta().ID != "prov-1" {
		t.Fatal("Meta().ID")
	}

	cmd, err = Decode(CmdSendCampaign, []byte(`{"id":"camp-2","campaignId":"pilates","groupIds":["<id>"],"audience":{"type":"interest","keywords":["pilates","\"hot yoga\""],"match":"any"},"content":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	sc := cmd.(*SendCampaign)
	if got := sc.Audience.Keywords; !reflect.DeepEqual(got, []string{"pilates", `"hot yoga"`}) {
		t.Fatalf("keywords %q", got)
	}
	if string(sc.Content) != "{}" {
		t.Fatalf("content %s", sc.Content)
	}

	cmd, err = Decode(CmdSendCampaign, []byte(`{"campaignId":"spring","groupIds":["g"],"content":{ "templateId" : "spring-offer" }}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(cmd.(*SendCampaign).Content); got != `{ "templateId" : "spring-offer" }` {
		t.Fatalf("content not passed through untouched: %s", got)
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		typ, body string
		want      Command
	}{
		{CmdGenerateReport, `{}`, &GenerateReport{Top: 10, Idle: 10}},
		{CmdGenerateReport, `{"id":"r-1"}`, &GenerateReport{CommandMeta: CommandMeta{ID: "r-1"}, Top: 10, Idle: 10}},
		{CmdGenerateReport, `{"top":3,"idle":0,"idleDays":30}`, &GenerateReport{Top: 3, Idle: 10, IdleDays: 30}},
		{CmdGenerateReport, `{"timeZone":"Europe/Berlin","allGroups":true,"largeGroup":50,"smallGroup":5}`,
			&GenerateReport{Top: 10, Idle: 10, TimeZone: "Europe/Berlin", AllGroups: true, LargeGroup: 50, SmallGroup: 5}},
		{CmdProvisionGroup, `{"group":{"name":"G"},"people":[],"questions":[],"rules":[]}`,
			&ProvisionGroup{Group: GroupSpec{Name: "G", PrivacyStatus: PrivacyPublic}, Membership: MembershipAdd}},
		{CmdSendCampaign, `{"campaignId":"c","groupIds":["g"],"content":null}`,
			&SendCampaign{CampaignID: "c", GroupIDs: []string{"g"}, Audience: Audience{Type: AudienceAll, Match: MatchAny}}},
		{CmdSendCampaign, `{"campaignId":"c","groupIds":["g"],"audience":{"type":"interest","keywords":["k"]}}`,
			&SendCampaign{CampaignID: "c", GroupIDs: []string{"g"}, Audience: Audience{Type: AudienceInterest, Keywords: []string{"k"}, Match: MatchAny}}},
		{CmdPropagateRules, `{"rules":[{"title":"Be kind"}],"targets":{"namePrefix":"Yoga"}}`,
			&PropagateRules{Rules: []Rule{{Title: "Be kind"}}, Targets: Targets{NamePrefix: "Yoga"}}},
		{CmdSetMembershipQuestions, `{"groupIds":["g"],"questions":[]}`,
			&SetMembershipQuestions{GroupIDs: []string{"g"}, Questions: []Question{}}},
		// meta fields and unknown fields
		{CmdGenerateReport, `{"id":"x","siteId":"s","correlationId":"c","futureField":{"a":[1]}}`,
			&GenerateReport{CommandMeta: CommandMeta{ID: "x", SiteID: "s", CorrelationID: "c"}, Top: 10, Idle: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.body, func(t *testing.T) {
			got, err := Decode(tt.typ, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// validationCase is a command body that fails validation on field.
type validationCase struct {
	name, typ, body string
	field, msg      string // msg: substring of the field's message
}

// validationCases lists one invalid body per validation rule.
func validationCases() []validationCase {
	long := func(n int) string { return strings.Repeat("é", n) }
	many := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = f(i)
		}
		return strings.Join(parts, ",")
	}
	itoa := func(i int) string { b, _ := json.Marshal(i); return string(b) }
	return []validationCase{
		{"name missing", CmdProvisionGroup, `{}`, "group.name", "required"},
		{"name blank", CmdProvisionGroup, `{"group":{"name":"  "}}`, "group.name", "required"},
		{"name too long", CmdProvisionGroup, `{"group":{"name":"` + long(101) + `"}}`, "group.name", "at most 100"},
		{"privacy", CmdProvisionGroup, `{"group":{"name":"G","privacyStatus":"private"}}`, "group.privacyStatus", "PUBLIC, PRIVATE, SECRET"},
		{"membership", CmdProvisionGroup, `{"group":{"name":"G"},"membership":"replace"}`, "membership", "add, sync"},
		{"too many people", CmdProvisionGroup, `{"group":{"name":"G"},"people":[` + many(MaxPeople+1, func(int) string { return "{}" }) + `]}`, "people", "at most 10000"},
		{"too many questions", CmdProvisionGroup, `{"group":{"name":"G"},"questions":[` + many(51, func(int) string { return `{"text":"q"}` }) + `]}`, "questions", "at most 50"},
		{"question empty", CmdProvisionGroup, `{"group":{"name":"G"},"questions":[{"text":"q"},{"text":""}]}`, "questions[1].text", "required"},
		{"question long", CmdProvisionGroup, `{"group":{"name":"G"},"questions":[{"text":"` + long(301) + `"}]}`, "questions[0].text", "at most 300"},
		{"rule title", CmdProvisionGroup, `{"group":{"name":"G"},"rules":[{"description":"d"}]}`, "rules[0].title", "required"},
		{"too many rules", CmdProvisionGroup, `{"group":{"name":"G"},"rules":[` + many(101, func(i int) string { return `{"title":"r` + itoa(i) + `"}` }) + `]}`, "rules", "at most 100"},
		{"duplicate rule", CmdProvisionGroup, `{"group":{"name":"G"},"rules":[{"title":"A"},{"title":"A "}]}`, "rules[1].title", "duplicate of rules[0].title"},

		// Strings that become NATS subjects, keys, object names or headers are bounded (issue 12).
		{"id too long", CmdGenerateReport, `{"id":"` + strings.Repeat("i", 3100) + `"}`, "id", "at most 200 characters"},
		{"id space", CmdGenerateReport, `{"id":"a b"}`, "id", "whitespace"},
		{"id control", CmdGenerateReport, `{"id":"a\u0007b"}`, "id", "control characters"},
		{"site too long", CmdGenerateReport, `{"siteId":"` + strings.Repeat("s", 5000) + `"}`, "siteId", "at most 100 characters"},
		{"site chars", CmdProvisionGroup, `{"siteId":"a/b","group":{"name":"G"}}`, "siteId", "[A-Za-z0-9._-]"},
		{"correlation too long", CmdSendCampaign, `{"correlationId":"` + long(201) + `","campaignId":"c","groupIds":["g"]}`, "correlationId", "at most 200 characters"},
		{"correlation control", CmdSetMembershipQuestions, `{"correlationId":"a\u0000","groupIds":["g"],"questions":[]}`, "correlationId", "control characters"},
		{"meta on propagate", CmdPropagateRules, `{"id":"` + strings.Repeat("p", 201) + `","sourceGroupId":"s","targets":{"all":true}}`, "id", "at most 200"},
		// Control characters in free text (issue 12 item 9).
		{"name control", CmdProvisionGroup, `{"group":{"name":"G\u001b[31m"}}`, "group.name", "control characters"},
		{"description control", CmdProvisionGroup, `{"group":{"name":"G","description":"a\u0000"}}`, "group.description", "control characters"},
		{"teaser control", CmdProvisionGroup, `{"group":{"name":"G","teaser":"t\u0085"}}`, "group.teaser", "control characters"},
		{"teaser long", CmdProvisionGroup, `{"group":{"name":"G","teaser":"` + long(1001) + `"}}`, "group.teaser", "at most 1000"},
		{"member title control", CmdProvisionGroup, `{"group":{"name":"G","memberTitle":"m\n"}}`, "group.memberTitle", "control characters"},
		{"question control", CmdProvisionGroup, `{"group":{"name":"G"},"questions":[{"text":"q\u0008"}]}`, "questions[0].text", "control characters"},
		{"rule title control", CmdProvisionGroup, `{"group":{"name":"G"},"rules":[{"title":"r\u007f"}]}`, "rules[0].title", "control characters"},
		{"rule description control", CmdProvisionGroup, `{"group":{"name":"G"},"rules":[{"title":"r","description":"d\u0001"}]}`, "rules[0].description", "control characters"},
		{"group id control", CmdSendCampaign, `{"campaignId":"c","groupIds":["g\u0000"]}`, "groupIds[0]", "control characters"},

		{"campaign missing", CmdSendCampaign, `{"groupIds":["g"]}`, "campaignId", "required"},
		{"campaign space", CmdSendCampaign, `{"campaignId":"a b","groupIds":["g"]}`, "campaignId", "whitespace"},
		{"campaign long", CmdSendCampaign, `{"campaignId":"` + strings.Repeat("c", 201) + `","groupIds":["g"]}`, "campaignId", "at most 200"},
		{"groupIds missing", CmdSendCampaign, `{"campaignId":"c"}`, "groupIds", "required"},
		{"groupIds empty", CmdSendCampaign, `{"campaignId":"c","groupIds":[]}`, "groupIds", "required"},
		{"groupIds blank", CmdSendCampaign, `{"campaignId":"c","groupIds":["g",""]}`, "groupIds[1]", "empty"},
		{"groupIds dup", CmdSendCampaign, `{"campaignId":"c","groupIds":["g","h","g"]}`, "groupIds[2]", "duplicate of groupIds[0]"},
		{"groupIds too many", CmdSendCampaign, `{"campaignId":"c","groupIds":[` + many(101, func(i int) string { return `"g` + itoa(i) + `"` }) + `]}`, "groupIds", "at most 100"},
		{"audience type", CmdSendCampaign, `{"campaignId":"c","groupIds":["g"],"audience":{"type":"some"}}`, "audience.type", "all, interest"},
		{"audience match", CmdSendCampaign, `{"campaignId":"c","groupIds":["g"],"audience":{"type":"interest","keywords":["k"],"match":"most"}}`, "audience.match", "any, all"},
		{"interest no keywords", CmdSendCampaign, `{"campaignId":"c","groupIds":["g"],"audience":{"type":"interest"}}`, "audience.keywords", "required"},
		{"interest blank keyword", CmdSendCampaign, `{"campaignId":"c","groupIds":["g"],"audience":{"type":"interest","keywords":["k","\"\""]}}`, "audience.keywords[1]", "required"},
		{"keywords without interest", CmdSendCampaign, `{"campaignId":"c","groupIds":["g"],"audience":{"keywords":["k"]}}`, "audience.keywords", "only allowed with type interest"},
		{"content array", CmdSendCampaign, `{"campaignId":"c","groupIds":["g"],"content":[1]}`, "content", "JSON object"},
		{"content string", CmdSendCampaign, `{"campaignId":"c","groupIds":["g"],"content":"x"}`, "content", "JSON object"},

		{"questions missing", CmdSetMembershipQuestions, `{"groupIds":["g"]}`, "questions", "required"},
		{"questions null", CmdSetMembershipQuestions, `{"groupIds":["g"],"questions":null}`, "questions", "required"},
		{"questions groupIds", CmdSetMembershipQuestions, `{"questions":[]}`, "groupIds", "required"},
		{"questions text", CmdSetMembershipQuestions, `{"groupIds":["g"],"questions":[{"required":true}]}`, "questions[0].text", "required"},
		{"questions too many", CmdSetMembershipQuestions, `{"groupIds":["g"],"questions":[` + many(51, func(int) string { return `{"text":"q"}` }) + `]}`, "questions", "at most 50"},

		{"no source", CmdPropagateRules, `{"targets":{"all":true}}`, "sourceGroupId", "required unless rules"},
		{"no targets", CmdPropagateRules, `{"sourceGroupId":"s"}`, "targets", "required"},
		{"all false", CmdPropagateRules, `{"sourceGroupId":"s","targets":{"all":false}}`, "targets", "required"},
		{"two targets", CmdPropagateRules, `{"sourceGroupId":"s","targets":{"all":true,"namePrefix":"Y"}}`, "targets", "exactly one"},
		{"empty target ids", CmdPropagateRules, `{"sourceGroupId":"s","targets":{"groupIds":[]}}`, "targets.groupIds", "required"},
		{"source in targets", CmdPropagateRules, `{"sourceGroupId":"s","targets":{"groupIds":["a","s"]}}`, "targets.groupIds[1]", "source group"},
		{"blank prefix", CmdPropagateRules, `{"sourceGroupId":"s","targets":{"namePrefix":" "}}`, "targets.namePrefix", "required"},
		{"source id control", CmdPropagateRules, `{"sourceGroupId":"s\u001b[2J","targets":{"all":true}}`, "sourceGroupId", "control characters"},
		{"source id long", CmdPropagateRules, `{"sourceGroupId":"` + strings.Repeat("s", 201) + `","targets":{"all":true}}`, "sourceGroupId", "at most 200"},
		{"source id dot segment", CmdPropagateRules, `{"sourceGroupId":"..","targets":{"all":true}}`, "sourceGroupId", "path segment"},
		{"target id dot segment", CmdPropagateRules, `{"rules":[{"title":"r"}],"targets":{"groupIds":["g","."]}}`, "targets.groupIds[1]", "path segment"},
		{"group id dot segment", CmdSetMembershipQuestions, `{"groupIds":[".."],"questions":[]}`, "groupIds[0]", "path segment"},
		{"campaign group id dot segment", CmdSendCampaign, `{"campaignId":"c","groupIds":[".."]}`, "groupIds[0]", "path segment"},
		{"creator id space", CmdProvisionGroup, `{"group":{"name":"G"},"creatorId":"a b"}`, "creatorId", "whitespace"},
		{"inline rule title", CmdPropagateRules, `{"rules":[{"title":""}],"targets":{"all":true}}`, "rules[0].title", "required"},

		{"top negative", CmdGenerateReport, `{"top":-1}`, "top", "between 0 and 1000"},
		{"top big", CmdGenerateReport, `{"top":1001}`, "top", "between 0 and 1000"},
		{"idle big", CmdGenerateReport, `{"idle":5000}`, "idle", "between 0 and 1000"},
		{"idleDays negative", CmdGenerateReport, `{"idleDays":-3}`, "idleDays", "between 0"},
		{"timeZone unknown", CmdGenerateReport, `{"timeZone":"Mars/Olympus"}`, "timeZone", "not a known IANA"},
		{"timeZone path", CmdGenerateReport, `{"timeZone":"../../etc/passwd"}`, "timeZone", "IANA time zone name"},
		{"timeZone local", CmdGenerateReport, `{"timeZone":"Local"}`, "timeZone", "IANA time zone name"},
		{"timeZone long", CmdGenerateReport, `{"timeZone":"` + strings.Repeat("A", 65) + `"}`, "timeZone", "at most 64"},
		{"smallGroup negative", CmdGenerateReport, `{"smallGroup":-1}`, "smallGroup", "between 0"},
		{"largeGroup big", CmdGenerateReport, `{"largeGroup":1000001}`, "largeGroup", "between 0"},
	}
}

func TestValidation(t *testing.T) {
	tests := validationCases()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.typ, []byte(tt.body))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want *ValidationError, got %T %v", err, err)
			}
			if ve.CommandType != tt.typ {
				t.Errorf("CommandType %q", ve.CommandType)
			}
			msg, ok := ve.Field(tt.field)
			if !ok {
				t.Fatalf("no error for %q in %v", tt.field, ve.Fields)
			}
			if !strings.Contains(msg, tt.msg) {
				t.Errorf("%s: %q does not contain %q", tt.field, msg, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "invalid "+tt.typ+": ") || !strings.Contains(err.Error(), tt.field+": ") {
				t.Errorf("Error() = %q", err.Error())
			}
			if !isPermanent(err) {
				t.Error("not permanent")
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	_, err := Decode(CmdProvisionGroup, []byte(`{"group":{"privacyStatus":"OPEN"},"membership":"x"}`))
	want := "invalid provision_group: group.name: required; group.privacyStatus: must be one of PUBLIC, PRIVATE, SECRET; membership: must be one of add, sync"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	ve := &ValidationError{CommandType: "x"}
	for i := 0; i < 12; i++ {
		ve.Fields = append(ve.Fields, FieldError{Field: "f", Message: "m"})
	}
	if !strings.HasSuffix(ve.Error(), "; and 2 more") {
		t.Fatalf("truncation: %s", ve.Error())
	}
}

func TestValidateWithoutDefaults(t *testing.T) {
	// Producers may Validate before publishing, without Decode's defaults.
	cmds := []Command{
		&ProvisionGroup{Group: GroupSpec{Name: "G"}},
		&SendCampaign{CampaignID: "c", GroupIDs: []string{"g"}},
		&SetMembershipQuestions{GroupIDs: []string{"g"}, Questions: []Question{}},
		&PropagateRules{SourceGroupID: "s", Targets: Targets{All: true}},
		&GenerateReport{},
	}
	for _, c := range cmds {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", c.CommandType(), err)
		}
	}
}

func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, typ, body string
		offset          int64
		field, want     string
	}{
		{"syntax", CmdGenerateReport, `{"top": 1,}`, 11, "", "malformed generate_report: invalid character '}'"},
		{"truncated", CmdGenerateReport, `{"top": 1`, 9, "", "malformed generate_report: unexpected end of JSON input"},
		{"empty", CmdGenerateReport, ``, -1, "", "body is empty"},
		{"array body", CmdGenerateReport, ` [1]`, 1, "", "want object, got array"},
		{"null body", CmdGenerateReport, `null`, 0, "", "want object, got null"},
		{"wrong type", CmdSendCampaign, `{"campaignId":"c","groupIds":"g"}`, 32, "groupIds", "groupIds: want array, got string"},
		{"nested wrong type", CmdProvisionGroup, `{"group":{"name":5}}`, 18, "group.name", "group.name: want string, got number"},
		{"float for int", CmdGenerateReport, `{"top":1.5}`, 10, "top", "top: want integer, got number 1.5"},
		{"bool", CmdProvisionGroup, `{"group":{"name":"G"},"allowDuplicateName":"yes"}`, 48, "allowDuplicateName", "want boolean, got string"},
		{"trailing", CmdGenerateReport, `{} {}`, 4, "", "invalid character '{' after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.typ, []byte(tt.body))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("want *DecodeError, got %T %v", err, err)
			}
			if de.Offset != tt.offset || de.Field != tt.field {
				t.Errorf("offset %d field %q, want %d %q", de.Offset, de.Field, tt.offset, tt.field)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Error() = %q, want it to contain %q", err.Error(), tt.want)
			}
			if !isPermanent(err) {
				t.Error("not permanent")
			}
		})
	}
	var se *json.SyntaxError
	_, err := Decode(CmdGenerateReport, []byte(`{x}`))
	if !errors.As(err, &se) {
		t.Fatalf("DecodeError does not unwrap to *json.SyntaxError: %v", err)
	}
	big := make([]byte, MaxCommandBytes+1)
	if _, err := Decode(CmdGenerateReport, big); !errors.As(err, new(*DecodeError)) {
		t.Fatalf("oversized body: %v", err)
	}
}

func TestUnknownCommand(t *testing.T) {
	_, err := Decode("delete_everything", []byte(`{}`))
	var ue *UnknownCommandError
	if !errors.As(err, &ue) || ue.CommandType != "delete_everything" {
		t.Fatalf("got %T %v", err, err)
	}
	if !isPermanent(err) || !strings.Contains(err.Error(), `"delete_everything"`) {
		t.Fatalf("%v", err)
	}
	if _, ok := NewCommand(""); ok {
		t.Fatal("empty type known")
	}
}

func TestCommandTypesRegistry(t *testing.T) {
	types := CommandTypes()
	if len(types) != 5 {
		t.Fatalf("%v", types)
	}
	types[0] = "mutated"
	if CommandTypes()[0] != CmdProvisionGroup {
		t.Fatal("CommandTypes shares its slice")
	}
	for _, ct := range CommandTypes() {
		c, ok := NewCommand(ct)
		if !ok || c.CommandType() != ct || !IsCommandType(ct) {
			t.Errorf("%s: registry mismatch", ct)
		}
	}
	for _, et := range EventTypes() {
		e, ok := NewEvent(et)
		if !ok || e.EventType() != et || !IsEventType(et) {
			t.Errorf("%s: registry mismatch", et)
		}
	}
	if len(EventTypes()) != 9 {
		t.Fatal(EventTypes())
	}
}

func TestSubjects(t *testing.T) {
	tests := []struct {
		s                               Subjects
		cmd, evt, dlq, cmds, evts, dlqs string
		cmdStream, evtStream, dlqStream string
	}{
		{Subjects{}, "groups.cmd.provision_group", "groups.evt.group_provisioned", "groups.dlq.provision_group",
			"groups.cmd.>", "groups.evt.>", "groups.dlq.>", "GROUPS_COMMANDS", "GROUPS_EVENTS", "GROUPS_DLQ"},
		{Subjects{Prefix: "acme"}, "acme.cmd.provision_group", "acme.evt.group_provisioned", "acme.dlq.provision_group",
			"acme.cmd.>", "acme.evt.>", "acme.dlq.>", "ACME_COMMANDS", "ACME_EVENTS", "ACME_DLQ"},
		{Subjects{Prefix: "acme.prod-eu"}, "acme.prod-eu.cmd.provision_group", "acme.prod-eu.evt.group_provisioned", "acme.prod-eu.dlq.provision_group",
			"acme.prod-eu.cmd.>", "acme.prod-eu.evt.>", "acme.prod-eu.dlq.>", "ACME_PROD_EU_COMMANDS", "ACME_PROD_EU_EVENTS", "ACME_PROD_EU_DLQ"},
	}
	for _, tt := range tests {
		s := tt.s
		got := []string{s.Command(CmdProvisionGroup), s.Event(EvtGroupProvisioned), s.DLQ(CmdProvisionGroup),
			s.Commands(), s.Events(), s.DLQs(), s.CommandStream(), s.EventStream(), s.DLQStream()}
		want := []string{tt.cmd, tt.evt, tt.dlq, tt.cmds, tt.evts, tt.dlqs, tt.cmdStream, tt.evtStream, tt.dlqStream}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("prefix %q:\n got %q\nwant %q", s.Prefix, got, want)
		}
		for _, ct := range CommandTypes() {
			if typ, ok := s.CommandTypeOf(s.Command(ct)); !ok || typ != ct {
				t.Errorf("CommandTypeOf(Command(%q)) = %q %v", ct, typ, ok)
			}
			if typ, ok := s.DLQTypeOf(s.DLQ(ct)); !ok || typ != ct {
				t.Errorf("DLQTypeOf(DLQ(%q)) = %q %v", ct, typ, ok)
			}
		}
		for _, et := range EventTypes() {
			if typ, ok := s.EventTypeOf(s.Event(et)); !ok || typ != et {
				t.Errorf("EventTypeOf(Event(%q)) = %q %v", et, typ, ok)
			}
		}
	}
	if got := (Subjects{Prefix: "ünï"}).CommandStream(); got != "_N__COMMANDS" {
		t.Errorf("non-ASCII stream name %q", got)
	}
	var s Subjects
	for _, bad := range []string{"groups.cmd.", "groups.cmd.a.b", "groups.evt.x", "acme.cmd.x", "groups.cmd.>", "groups.cmd.*", "groupscmd.x", ""} {
		if typ, ok := s.CommandTypeOf(bad); ok {
			t.Errorf("CommandTypeOf(%q) = %q, true", bad, typ)
		}
	}
	if typ, ok := s.CommandTypeOf("groups.cmd.not_known_yet"); !ok || typ != "not_known_yet" {
		t.Errorf("CommandTypeOf unknown type: %q %v", typ, ok)
	}
}

func TestEventIDs(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	meta := EventMeta{CommandID: "prov-1", OccurredAt: at}
	tests := []struct {
		e    Event
		want string
	}{
		{&GroupProvisioned{EventMeta: meta}, "group_provisioned:prov-1"},
		{&MemberSelected{EventMeta: meta, CampaignID: "spring", MemberID: "m-1"}, "member_selected:spring:m-1"},
		{&MemberSelected{EventMeta: EventMeta{CommandID: "other"}, CampaignID: "spring", MemberID: "m-1"}, "member_selected:spring:m-1"},
		{&CampaignCompleted{EventMeta: meta, CampaignID: "spring"}, "campaign_completed:prov-1:spring"},
		{&MembershipQuestionsSet{EventMeta: meta}, "membership_questions_set:prov-1"},
		{&RulesPropagated{EventMeta: meta}, "rules_propagated:prov-1"},
		{&ReportGenerated{EventMeta: meta}, "report_generated:prov-1"},
		{&CommandFailed{EventMeta: meta}, "command_failed:prov-1"},
		{&EmailSent{SourceEventID: "member_selected:spring:m-1"}, "email_sent:member_selected%3Aspring%3Am-1"},
		{&EmailFailed{SourceEventID: "member_selected:spring:m-1"}, "email_failed:member_selected%3Aspring%3Am-1"},
	}
	for _, tt := range tests {
		if got := tt.e.EventID(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.e.EventType(), got, tt.want)
		}
		if got := tt.e.EventID(); got != tt.e.EventID() {
			t.Errorf("%s: not deterministic", got)
		}
	}
	// Escaping keeps distinct inputs distinct.
	a := EventID(EvtMemberSelected, "", "a:b", "c")
	b := EventID(EvtMemberSelected, "", "a", "b:c")
	if a == b {
		t.Fatalf("collision %q", a)
	}
	if got := EventID("t", "c", "50%", "x\ny"); got != "t:c:50%25:x%0Ay" {
		t.Fatalf("escape: %q", got)
	}
	g := &GroupProvisioned{}
	g.Meta().CommandID = "z"
	if g.EventID() != "group_provisioned:z" {
		t.Fatal("Meta() is not the embedded EventMeta")
	}
	if CEType(EvtGroupProvisioned) != "groupflow.group_provisioned" {
		t.Fatal(CEType(EvtGroupProvisioned))
	}
	cm := &CommandMeta{ID: "c", SiteID: "s", CorrelationID: "k"}
	loc := time.FixedZone("x", 3600)
	if got := MetaFor(cm, at.In(loc)); got != (EventMeta{CommandID: "c", SiteID: "s", CorrelationID: "k", OccurredAt: at}) || got.OccurredAt.Location() != time.UTC {
		t.Fatalf("MetaFor: %+v", got)
	}
}

func TestDecodeEvent(t *testing.T) {
	body := []byte(`{"commandId":"c","occurredAt":"2026-11-26T10:00:00Z","campaignId":"spring","memberId":"m","email":"a@b.co","groupIds":["g"],"content":{"t":1},"new":1}`)
	e, err := DecodeEvent(EvtMemberSelected, body)
	if err != nil {
		t.Fatal(err)
	}
	ms := e.(*MemberSelected)
	if ms.EventID() != "member_selected:spring:m" || string(ms.Content) != `{"t":1}` {
		t.Fatalf("%+v", ms)
	}
	if _, err := DecodeEvent("nope", body); err == nil {
		t.Fatal("unknown event type accepted")
	}
	if _, err := DecodeEvent(EvtMemberSelected, []byte(`{`)); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

func TestDiffRules(t *testing.T) {
	r := func(title, desc string) Rule { return Rule{Title: title, Description: desc} }
	tests := []struct {
		name     string
		old, new []Rule
		want     RulesDiff
	}{
		{"both empty", nil, nil, RulesDiff{}},
		{"all added", nil, []Rule{r("A", "a"), r("B", "")}, RulesDiff{Added: []Rule{r("A", "a"), r("B", "")}}},
		{"all removed", []Rule{r("A", "a")}, nil, RulesDiff{Removed: []Rule{r("A", "a")}}},
		{"same, reordered", []Rule{r("A", "a"), r("B", "b")}, []Rule{r("B", "b"), r("A", "a")}, RulesDiff{Unchanged: 2}},
		{"mixed",
			[]Rule{r("Kind", "be kind"), r("Spam", "no spam"), r("Old", "x")},
			[]Rule{r("Kind", "be very kind"), r("New", "n"), r("Spam", "no spam")},
			RulesDiff{Added: []Rule{r("New", "n")}, Removed: []Rule{r("Old", "x")},
				Changed: []RuleChange{{Title: "Kind", From: "be kind", To: "be very kind"}}, Unchanged: 1}},
		{"title whitespace ignored", []Rule{r(" A ", "a")}, []Rule{r("A", "a")}, RulesDiff{Unchanged: 1}},
		{"title case matters", []Rule{r("a", "")}, []Rule{r("A", "")}, RulesDiff{Added: []Rule{r("A", "")}, Removed: []Rule{r("a", "")}}},
		{"duplicates: first wins", []Rule{r("A", "1"), r("A", "2")}, []Rule{r("A", "1"), r("A", "3")}, RulesDiff{Unchanged: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DiffRules(tt.old, tt.new)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			if got.Empty() != (len(tt.want.Added)+len(tt.want.Removed)+len(tt.want.Changed) == 0) {
				t.Fatal("Empty()")
			}
		})
	}
}

func TestPerson(t *testing.T) {
	tests := []struct {
		p                      Person
		kind, problem, display string
	}{
		{Person{Email: "ann@example.com"}, KindEmail, "", "(email)"},
		{Person{Phone: "+1 555 0100"}, KindPhone, "", "(phone)"},
		{Person{ContactID: "c-1"}, KindContactID, "", "(contactId)"},
		{Person{Name: "Ann Lee"}, KindName, "", "(name)"},
		{Person{FirstName: "Ann"}, KindName, "", "(name)"},
		{Person{LastName: "Lee", Ref: "crm-17"}, KindName, "", `ref "crm-17" (name)`},
		{Person{}, "", ProblemNoIdentifier, "(no identifier)"},
		{Person{Email: "  ", Ref: "r"}, "", ProblemNoIdentifier, `ref "r" (no identifier)`},
		{Person{Email: "ann-at-example.com"}, KindEmail, ProblemMalformedEmail, "(email)"},
		{Person{Email: "ann@example"}, KindEmail, ProblemMalformedEmail, "(email)"},
		{Person{Email: "a b@example.com"}, KindEmail, ProblemMalformedEmail, "(email)"},
		{Person{Email: "a@@example.com"}, KindEmail, ProblemMalformedEmail, "(email)"},
		{Person{Phone: "call me"}, KindPhone, ProblemMalformedPhone, "(phone)"},
		{Person{Phone: "12"}, KindPhone, ProblemMalformedPhone, "(phone)"},
		// priority contactId > email > phone > name
		{Person{Email: "ann@example.com", Phone: "+1 555 0100", ContactID: "c", Name: "Ann"}, KindContactID, "", "(contactId)"},
		{Person{Email: "ann@example.com", Phone: "+1 555 0100", Name: "Ann"}, KindEmail, "", "(email)"},
		{Person{Phone: "+1 555 0100", Name: "Ann"}, KindPhone, "", "(phone)"},
		// only the identifier used is checked
		{Person{ContactID: "c", Email: "junk"}, KindContactID, "", "(contactId)"},
		// control characters and invalid UTF-8 (issue 12 item 9)
		{Person{Name: "Ann\x1b[2J"}, KindName, ProblemMalformedName, "(name)"},
		{Person{FirstName: "Ann", LastName: "L\xffee"}, KindName, ProblemMalformedName, "(name)"},
		{Person{Email: "a\x07@example.com"}, KindEmail, ProblemMalformedEmail, "(email)"},
		{Person{ContactID: "c\x00"}, KindContactID, ProblemMalformedContactID, "(contactId)"},
		{Person{Name: "Zoë O'Brien-Łukasz"}, KindName, "", "(name)"},
	}
	for _, tt := range tests {
		if got := tt.p.Kind(); got != tt.kind {
			t.Errorf("%+v Kind %q, want %q", tt.p, got, tt.kind)
		}
		if got := tt.p.Problem(); got != tt.problem {
			t.Errorf("%+v Problem %q, want %q", tt.p, got, tt.problem)
		}
		d := tt.p.Display()
		if d != tt.display {
			t.Errorf("%+v Display %q, want %q", tt.p, d, tt.display)
		}
		for _, secret := range []string{tt.p.Email, tt.p.Phone, tt.p.Name, tt.p.FirstName, tt.p.LastName} {
			if strings.TrimSpace(secret) != "" && strings.Contains(d, secret) {
				t.Errorf("Display %q reveals %q", d, secret)
			}
		}
	}
	if got := (Person{Email: "ann@example.com"}).DisplayRow(3); got != "row 3 (email)" {
		t.Errorf("DisplayRow %q", got)
	}
	if got := (Person{FirstName: " Ann ", LastName: "Lee"}).FullName(); got != "Ann Lee" {
		t.Errorf("FullName %q", got)
	}
	long := Person{Ref: strings.Repeat("r", 100), ContactID: "c"}.Display()
	if len([]rune(long)) > 90 {
		t.Errorf("long ref not truncated: %q", long)
	}
	// A row's problem is not a command error.
	if _, err := Decode(CmdProvisionGroup, []byte(`{"group":{"name":"G"},"people":[{},{"email":"x"}]}`)); err != nil {
		t.Fatalf("per-person problems failed the command: %v", err)
	}
}

// TestMetaLimits: the limits of the metadata hold wherever the values come
// from, and the derived id of an invalid one is itself a valid, stable id.
func TestMetaLimits(t *testing.T) {
	ok := CommandMeta{ID: strings.Repeat("i", MaxIDLen), SiteID: strings.Repeat("s", MaxSiteIDLen-4) + ".a_-", CorrelationID: strings.Repeat("é", MaxCorrelationIDLen)}
	if p := ok.Problems(); len(p) != 0 {
		t.Fatalf("limits themselves rejected: %v", p)
	}
	bad := CommandMeta{ID: strings.Repeat("i", 70000), SiteID: "a b", CorrelationID: strings.Repeat("c", 70000)}
	err := ValidateMeta(CmdProvisionGroup, bad)
	var ve *ValidationError
	if !errors.As(err, &ve) || !ve.Permanent() {
		t.Fatalf("ValidateMeta = %v", err)
	}
	for field, want := range map[string]string{"id": "at most 200 characters", "siteId": "[A-Za-z0-9._-]", "correlationId": "at most 200 characters"} {
		if msg, _ := ve.Field(field); !strings.Contains(msg, want) {
			t.Errorf("%s: %q, want %q", field, msg, want)
		}
	}
	if len(err.Error()) > 1000 {
		t.Errorf("error repeats the oversized values: %d bytes", len(err.Error()))
	}
	if IDProblem("a\xffb") == "" || CorrelationIDProblem("x\xff") == "" {
		t.Error("invalid UTF-8 accepted")
	}
	d := InvalidCommandID(bad.ID)
	if d != InvalidCommandID(bad.ID) || d == InvalidCommandID(bad.ID+"x") || IDProblem(d) != "" || !strings.HasPrefix(d, InvalidCommandIDPrefix) {
		t.Errorf("InvalidCommandID = %q", d)
	}
	// Go callers building a command by hand get the same checks.
	if err := (&GenerateReport{CommandMeta: CommandMeta{ID: "x\xff"}, Top: 1, Idle: 1}).Validate(); err == nil {
		t.Error("invalid UTF-8 id accepted by Validate")
	}
	if err := (&ProvisionGroup{Group: GroupSpec{Name: "G\xff"}}).Validate(); err == nil {
		t.Error("invalid UTF-8 group name accepted by Validate")
	}
}

// TestDerivedIDsAreReserved (review of issue 12): InvalidCommandID("bad id")
// used to be a valid command id, so a producer could send it first; the
// dead letter of "bad id" then announced and updated the completed command.
// Command ids starting with InvalidCommandIDPrefix are reserved; a derived
// id stays itself when derived again (a replayed dead letter keeps its id).
func TestDerivedIDsAreReserved(t *testing.T) {
	derived := InvalidCommandID("bad id")
	if p := CommandIDProblem(derived); p == "" {
		t.Errorf("CommandIDProblem(%q) = \"\", want the reserved prefix refused", derived)
	}
	err := ValidateMeta(CmdGenerateReport, CommandMeta{ID: derived})
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Fields) != 1 || verr.Fields[0].Field != "id" || !strings.Contains(verr.Fields[0].Message, InvalidCommandIDPrefix) {
		t.Errorf("ValidateMeta(id %q) = %v, want id invalid naming the reserved prefix", derived, err)
	}
	if again := InvalidCommandID(derived); again != derived {
		t.Errorf("InvalidCommandID(%q) = %q, want it unchanged", derived, again)
	}
	if got := InvalidCommandID("invalid-x"); got == "invalid-x" || CommandIDProblem(got) == "" {
		t.Errorf("InvalidCommandID(\"invalid-x\") = %q", got)
	}
	if p := CommandIDProblem("cmd-invalid-1"); p != "" {
		t.Errorf("CommandIDProblem(cmd-invalid-1) = %q", p)
	}
}
