package kubelab

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// strict decodes the built-in kinds and refuses unknown and duplicate
// fields, as a server-side apply with validation would.
var strict = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// ReadManifests reads every YAML document of a manifest file in the
// repository (deploy/...) into the typed object of its kind
// (*rbacv1.Role, *appsv1.Deployment, ...), strictly.
func ReadManifests(path string) ([]runtime.Object, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []runtime.Object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		// A document of comments only is no object.
		if j, err := utilyaml.ToJSON(doc); err == nil && string(j) == "null" {
			continue
		}
		obj, gvk, err := strict.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if gvk == nil || gvk.Kind == "" {
			return nil, fmt.Errorf("%s: a document without a kind", path)
		}
		out = append(out, obj)
	}
}

// ObjectsOf are the objects of type T among objs.
func ObjectsOf[T runtime.Object](objs []runtime.Object) []T {
	var out []T
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}
