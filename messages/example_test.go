package messages_test

import (
	"errors"
	"fmt"

	"groupflow/messages"
)

func ExampleDecode() {
	var s messages.Subjects // default prefix "groups"
	subject := "groups.cmd.generate_report"
	typ, _ := s.CommandTypeOf(subject)
	cmd, err := messages.Decode(typ, []byte(`{"id":"r-1","idleDays":30}`))
	if err != nil {
		panic(err)
	}
	r := cmd.(*messages.GenerateReport)
	fmt.Println(r.ID, r.Top, r.Idle, r.IdleDays)

	_, err = messages.Decode(messages.CmdProvisionGroup, []byte(`{"group":{"privacyStatus":"OPEN"}}`))
	var ve *messages.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			fmt.Println(f.Field+":", f.Message)
		}
	}
	// Output:
	// r-1 10 10 30
	// group.name: required
	// group.privacyStatus: must be one of PUBLIC, PRIVATE, SECRET
}

func ExampleSubjects() {
	s := messages.Subjects{Prefix: "acme"}
	fmt.Println(s.Command(messages.CmdProvisionGroup))
	fmt.Println(s.Event(messages.EvtGroupProvisioned))
	fmt.Println(s.Commands(), s.CommandStream(), s.DLQStream())
	// Output:
	// acme.cmd.provision_group
	// acme.evt.group_provisioned
	// acme.cmd.> ACME_COMMANDS ACME_DLQ
}

func ExampleEventID() {
	fmt.Println(messages.EventID(messages.EvtGroupProvisioned, "prov-1"))
	fmt.Println(messages.EventID(messages.EvtMemberSelected, "", "spring", "member-7"))
	// Output:
	// group_provisioned:prov-1
	// member_selected:spring:member-7
}
