package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"go.yaml.in/yaml/v3"
)

// SetKeys sets top-level keys of the YAML config file to string values, keeping every other key
// and comment, and writes it with mode 0600 (creating its directory with mode 0700) since it may
// hold a token.
func SetKeys(file string, values map[string]string) error {
	// Editing the file a symlink points at keeps a dotfile manager's link intact.
	if target, err := filepath.EvalSymlinks(file); err == nil {
		file = target
	}
	doc, err := readDocument(file)
	if err != nil {
		return err
	}
	root := doc.Content[0]
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		setKey(root, k, values[k])
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("config file %s: %w", file, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("config file %s: %w", file, err)
	}
	if err := WriteFileAtomic(file, &buf); err != nil {
		return fmt.Errorf("writing config file %s: %w", file, err)
	}
	return nil
}

// readDocument parses file into a YAML document whose root is a mapping; a missing or empty file
// gives an empty mapping.
func readDocument(file string) (*yaml.Node, error) {
	empty := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return empty, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config file %s: %w", file, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("reading config file %s: %w", file, err)
	}
	if doc.Kind == 0 {
		return empty, nil
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s is not a YAML mapping of keys to values", file)
	}
	return &doc, nil
}

// setKey replaces the value of key in mapping m, or appends the key when it is not there.
func setKey(m *yaml.Node, key, value string) {
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v.LineComment = m.Content[i+1].LineComment
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// WriteFileAtomic replaces file with what r yields through a synced temporary file of mode 0600 in
// its directory (created with mode 0700), so that a crash or a failed read leaves the old file or the
// new one, never half of one.
func WriteFileAtomic(file string, r io.Reader) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+"-*")
	if err != nil {
		return err
	}
	// CreateTemp makes the file with mode 0600, the mode the file ends up with.
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
