package messages

import _ "embed"

// AsyncAPI is the AsyncAPI 3.0.0 document (YAML) describing every command,
// event and dead-letter channel with its headers and payload JSON Schemas
// (under components.schemas, named like the Go types). Tests keep it in step
// with the Go types.
//
//go:embed asyncapi.yaml
var AsyncAPI []byte
