package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// bareFlag makes this program the bare lister: the least any client must
// pay to read the objects the Kubernetes checks read.
const bareFlag = "-bare-list"

// bareList pages through each resource with limit=500 in the protobuf
// content type, one page at a time, and discards every item as soon as its
// page is decoded: no object is kept, nothing is printed but the count.
func bareList(kubeconfig, resources string) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf"
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.QPS, rc.Burst = 1000, 1000
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	lists := map[string]func(metav1.ListOptions) (runtime.Object, error){
		"nodes": func(o metav1.ListOptions) (runtime.Object, error) { return cs.CoreV1().Nodes().List(ctx, o) },
		"pods":  func(o metav1.ListOptions) (runtime.Object, error) { return cs.CoreV1().Pods("").List(ctx, o) },
		"daemonsets": func(o metav1.ListOptions) (runtime.Object, error) {
			return cs.AppsV1().DaemonSets("").List(ctx, o)
		},
		"deployments": func(o metav1.ListOptions) (runtime.Object, error) {
			return cs.AppsV1().Deployments("").List(ctx, o)
		},
	}
	total := 0
	for _, r := range strings.Split(resources, ",") {
		list, ok := lists[r]
		if !ok {
			return fmt.Errorf("bare lister: no resource %q", r)
		}
		opts := metav1.ListOptions{Limit: 500}
		for {
			l, err := list(opts)
			if err != nil {
				return fmt.Errorf("list %s: %w", r, err)
			}
			m, err := meta.ListAccessor(l)
			if err != nil {
				return err
			}
			total += meta.LenList(l)
			if m.GetContinue() == "" {
				break
			}
			opts.Continue = m.GetContinue()
		}
	}
	fmt.Fprintln(os.Stdout, total)
	return nil
}
