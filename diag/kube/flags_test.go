package kube_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// TestNamespaceImpersonationProgress runs the source against a real API
// server: --namespace scopes the pod list and the description says so;
// --as impersonates (a user with no grants is refused, and the error names
// the context it tried); and list progress counts pages against the
// server's remainingItemCount.
func TestNamespaceImpersonationProgress(t *testing.T) {
	lab := kubelab.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	nsA, nsB := "flags-a-"+suffix, "flags-b-"+suffix
	for ns, pods := range map[string]int{nsA: 7, nsB: 3} {
		if _, err := lab.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for i := range pods {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: ns},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1"}}}}
			if _, err := lab.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		for _, ns := range []string{nsA, nsB} {
			_ = lab.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	})

	gather := func(t *testing.T, cfg *kube.Config, fn func(diag.Progress)) (*kube.Snapshot, error) {
		t.Helper()
		cfg.Kubeconfig = lab.Kubeconfig
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		p, err := kube.NewProvider(cfg, diag.Env{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.(interface{ Close() }).Close()
		gctx := ctx
		if fn != nil {
			gctx = diag.WithProgress(ctx, fn)
		}
		v, err := p.Gather(gctx)
		if err != nil {
			return nil, err
		}
		return v.(*kube.Snapshot), nil
	}

	t.Run("namespace", func(t *testing.T) {
		s, err := gather(t, &kube.Config{Namespace: nsB}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Pods) != 3 || !strings.HasSuffix(s.Describe(), "(namespace "+nsB+")") {
			t.Errorf("%d pods, %q; want the 3 pods of %s", len(s.Pods), s.Describe(), nsB)
		}
		for _, p := range s.Pods {
			if p.Namespace != nsB {
				t.Errorf("pod %s/%s outside the namespace", p.Namespace, p.Name)
			}
		}
	})

	t.Run("as", func(t *testing.T) {
		_, err := gather(t, &kube.Config{As: "nobody-" + suffix}, nil)
		if err == nil || !strings.Contains(err.Error(), `"nobody-`+suffix+`" cannot list`) && !strings.Contains(err.Error(), "forbidden") {
			t.Errorf("impersonating a user without grants: %v; want forbidden", err)
		}
	})

	t.Run("progress", func(t *testing.T) {
		var mu sync.Mutex
		var updates []diag.Progress
		s, err := gather(t, &kube.Config{Namespace: nsA, PageSize: 3}, func(p diag.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if p.Kind == diag.SourceUpdate {
				updates = append(updates, p)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		// Pages of 3 of the 7 pods: 3 of an estimated 7, 6 of 7, 7.
		var pods []string
		for _, u := range updates {
			if u.Source != kube.Source.Name() {
				t.Errorf("update of source %q", u.Source)
			}
			_, p, _ := strings.Cut(u.Message, ", ")
			if len(pods) == 0 || pods[len(pods)-1] != p {
				pods = append(pods, p)
			}
		}
		if got := strings.Join(pods, " | "); !strings.Contains(got, "3/7 pods | 6/7 pods | 7 pods") || len(s.Pods) != 7 {
			t.Errorf("pod progress %q (%d pods); want 3/7, 6/7, 7", got, len(s.Pods))
		}
		last := updates[len(updates)-1]
		if last.Done != 7 || last.Total != 7 {
			t.Errorf("last update %+v", last)
		}
	})
}
