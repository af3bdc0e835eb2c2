package driver

import "encoding/json"

// JSON is the default [Codec]: encoding/json. A Go string is stored as a JSON string, a
// struct as a JSON object, an integer as a bare number.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
