// cloudinit-roundtrip: does coreos-cloudinit read every key of a user data?
//
// Built inside Flatcar's coreos-cloudinit tree (third_party/coreos-cloudinit,
// by tests/consumers/cloudinit.py), so it parses with the parser the servers
// run. coreos-cloudinit.go's main() hands the user data to
// initialize.NewUserData; for a "#cloud-config" document that is
// payloadAsCloudConfigPart (initialize/user_data.go): env.Apply (the
// $private_ipv4-style substitutions), config.NewCloudConfig (yaml.v3 into
// config.CloudConfig; unknown keys are ignored without a word), then Decode.
// This program does the same, marshals the config.CloudConfig back to YAML
// and compares the key trees: every key path of the input that is not in the
// output was dropped by the parser ("lost"); a scalar that came back
// different was misread ("changed"). List items are compared by index.
//
//	cloudinit-roundtrip FILE...
//
// Exit status: 0 when nothing was lost, changed or substituted in any file,
// 1 when something was (one line per path), 2 when a file could not be read
// or parsed at all.
package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/flatcar/coreos-cloudinit/config"
	"github.com/flatcar/coreos-cloudinit/datasource"
	"github.com/flatcar/coreos-cloudinit/initialize"
)

type finding struct {
	kind string // lost, changed, substituted
	path string
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cloudinit-roundtrip FILE...")
		os.Exit(2)
	}
	status := 0
	for _, name := range os.Args[1:] {
		findings, err := check(name)
		if err != nil {
			fmt.Printf("%s: error: %v\n", name, err)
			status = 2
			continue
		}
		for _, f := range findings {
			fmt.Printf("%s: %s: %s\n", name, f.kind, f.path)
		}
		if len(findings) > 0 && status == 0 {
			status = 1
		} else if len(findings) == 0 {
			fmt.Printf("%s: ok\n", name)
		}
	}
	os.Exit(status)
}

func check(name string) ([]finding, error) {
	raw, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	// As coreos-cloudinit.go's decompressIfGzip: gzipped user data is read.
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
	}
	payload := string(raw)
	if !config.IsCloudConfig(payload) {
		return nil, fmt.Errorf("not a #cloud-config document (its first line must be #cloud-config)")
	}

	var findings []finding
	// An empty metadata, as a config drive gives (no addresses): whatever
	// the substitution changes is text the servers would not get as written.
	env := initialize.NewEnvironment("/", "", "", "", datasource.Metadata{})
	userdata := env.Apply(payload)
	if userdata != payload {
		findings = append(findings, finding{"substituted", "the text holds $private_ipv4, $public_ipv4, $private_ipv6 or $public_ipv6, which coreos-cloudinit replaces (initialize/env.go)"})
	}

	cc, err := config.NewCloudConfig(userdata)
	if err != nil {
		// payloadAsCloudConfigPart drops the whole document on this error.
		return nil, fmt.Errorf("config.NewCloudConfig: %v", err)
	}
	encoded := map[string]bool{}
	for i, f := range cc.WriteFiles {
		if f.Encoding != "" {
			encoded[fmt.Sprintf("write_files[%d].content", i)] = true
			encoded[fmt.Sprintf("write_files[%d].encoding", i)] = true
		}
	}
	if err := cc.Decode(); err != nil {
		return nil, fmt.Errorf("CloudConfig.Decode: %v", err)
	}
	out, err := yaml.Marshal(cc)
	if err != nil {
		return nil, fmt.Errorf("marshal: %v", err)
	}

	var in, back interface{}
	// The input as written: a substitution shows as a changed value.
	if err := yaml.Unmarshal([]byte(payload), &in); err != nil {
		return nil, fmt.Errorf("input YAML: %v", err)
	}
	if err := yaml.Unmarshal(out, &back); err != nil {
		return nil, fmt.Errorf("marshalled YAML: %v", err)
	}
	// Decode() turns an encoded write_files content into plain text and
	// clears its encoding: those two come back different by design.
	compare("", in, back, &findings, encoded)
	return findings, nil
}

func compare(path string, in, back interface{}, findings *[]finding, encoded map[string]bool) {
	switch a := in.(type) {
	case map[string]interface{}:
		b, _ := back.(map[string]interface{})
		keys := make([]string, 0, len(a))
		for k := range a {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			v, ok := b[k]
			if !ok {
				*findings = append(*findings, finding{"lost", p})
				continue
			}
			compare(p, a[k], v, findings, encoded)
		}
	case []interface{}:
		b, _ := back.([]interface{})
		for i := range a {
			p := fmt.Sprintf("%s[%d]", path, i)
			if i >= len(b) {
				*findings = append(*findings, finding{"lost", p})
				continue
			}
			compare(p, a[i], b[i], findings, encoded)
		}
	case nil:
		// An empty value: nothing to keep.
	default:
		if _, isMap := back.(map[string]interface{}); isMap {
			*findings = append(*findings, finding{"changed", path})
			return
		}
		if _, isList := back.([]interface{}); isList {
			*findings = append(*findings, finding{"changed", path})
			return
		}
		if fmt.Sprint(in) != fmt.Sprint(back) && !encoded[path] {
			*findings = append(*findings, finding{"changed", path})
		}
	}
}
