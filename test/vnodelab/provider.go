package vnodelab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/vnodediag/vnodediag/test/netlab"
)

// Exec maps a container image to the local command that stands for it (an
// ECI instance pulls the image; the lab runs a binary of this machine).
type Exec func(image string) ([]string, error)

// provider is the lab VNode's virtual-kubelet provider: each pod is one
// process inside the "ECI" network namespace (its pod IP is the namespace's
// address), its stdout and stderr are the container log, and its readiness
// is the pod's TCP readiness probe, run from inside the namespace as a
// kubelet runs it from inside the instance. One container per pod.
type provider struct {
	host       *netlab.Host
	exec       Exec
	dir        string
	configMaps corev1listers.ConfigMapLister

	mu   sync.Mutex
	pods map[string]*podState
	// logReqs are the log requests served, for tests that check a client
	// never asks for the whole log.
	logReqs []api.ContainerLogOpts
	notify  func(*corev1.Pod)
	stop    chan struct{}
}

type podState struct {
	pod     *corev1.Pod
	pid     int
	logFile string
	exited  chan struct{}
	exitErr error
}

var (
	_ node.PodLifecycleHandler = (*provider)(nil)
	_ node.PodNotifier         = (*provider)(nil)
)

func newProvider(host *netlab.Host, exec Exec, dir string, cms corev1listers.ConfigMapLister) *provider {
	return &provider{host: host, exec: exec, dir: dir, configMaps: cms, pods: map[string]*podState{}, stop: make(chan struct{})}
}

func key(ns, name string) string { return ns + "/" + name }

// CreatePod writes the pod's ConfigMap volumes to disk, expands its
// arguments and starts its container in the namespace.
func (p *provider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	if len(pod.Spec.Containers) != 1 {
		return fmt.Errorf("lab VNode runs pods of one container, %s/%s has %d", pod.Namespace, pod.Name, len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	dir := filepath.Join(p.dir, pod.Namespace+"_"+pod.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mounts, err := p.writeVolumes(pod, c, dir)
	if err != nil {
		return err
	}
	argv, err := p.exec(c.Image)
	if err != nil {
		return fmt.Errorf("image %s: %w", c.Image, err)
	}
	env, envList, err := p.resolveEnv(pod, c)
	if err != nil {
		return err
	}
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		argv = append(argv, rewriteMounts(expand(a, env), mounts))
	}
	logFile := filepath.Join(dir, c.Name+".log")
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := p.host.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), envList...)
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start %s in %s: %w", c.Name, p.host.Name, err)
	}
	st := &podState{pod: pod.DeepCopy(), pid: cmd.Process.Pid, logFile: logFile, exited: make(chan struct{})}
	go func() {
		st.exitErr = cmd.Wait()
		lf.Close()
		close(st.exited)
	}()
	now := metav1.Now()
	st.pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, HostIP: "127.0.0.1", PodIP: p.host.HostAddr.String(),
		PodIPs: []corev1.PodIP{{IP: p.host.HostAddr.String()}}, StartTime: &now,
	}
	p.setContainer(st, false)
	p.mu.Lock()
	p.pods[key(pod.Namespace, pod.Name)] = st
	p.mu.Unlock()
	go p.watch(st)
	return nil
}

// writeVolumes writes each ConfigMap volume the container mounts and
// returns mount path -> directory on disk.
func (p *provider) writeVolumes(pod *corev1.Pod, c corev1.Container, dir string) (map[string]string, error) {
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name != vm.Name || v.ConfigMap == nil {
				continue
			}
			cm, err := p.configMaps.ConfigMaps(pod.Namespace).Get(v.ConfigMap.Name)
			if err != nil {
				return nil, fmt.Errorf("volume %s: configmap %s/%s: %w", v.Name, pod.Namespace, v.ConfigMap.Name, err)
			}
			vdir := filepath.Join(dir, "volumes", v.Name)
			if err := os.MkdirAll(vdir, 0o755); err != nil {
				return nil, err
			}
			for k, val := range cm.Data {
				if err := os.WriteFile(filepath.Join(vdir, k), []byte(val), 0o644); err != nil {
					return nil, err
				}
			}
			mounts[vm.MountPath] = vdir
		}
	}
	return mounts, nil
}

// resolveEnv resolves the container's environment, the downward API
// included. The provider does it (SkipDownwardAPIResolution): the pod IP is
// known only once the instance exists, and virtual-kubelet's own resolution
// rejects status.podIP.
func (p *provider) resolveEnv(pod *corev1.Pod, c corev1.Container) (map[string]string, []string, error) {
	env := map[string]string{}
	var list []string
	for _, e := range c.Env {
		v := e.Value
		if f := e.ValueFrom; f != nil {
			switch {
			case f.FieldRef != nil:
				switch f.FieldRef.FieldPath {
				case "metadata.name":
					v = pod.Name
				case "metadata.namespace":
					v = pod.Namespace
				case "spec.nodeName":
					v = pod.Spec.NodeName
				case "spec.serviceAccountName":
					v = pod.Spec.ServiceAccountName
				case "status.podIP":
					v = p.host.HostAddr.String()
				case "status.hostIP":
					v = "127.0.0.1"
				default:
					return nil, nil, fmt.Errorf("env %s: fieldPath %s not supported by the lab VNode", e.Name, f.FieldRef.FieldPath)
				}
			case f.ConfigMapKeyRef != nil:
				cm, err := p.configMaps.ConfigMaps(pod.Namespace).Get(f.ConfigMapKeyRef.Name)
				if err != nil {
					return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
				}
				v = cm.Data[f.ConfigMapKeyRef.Key]
			default:
				return nil, nil, fmt.Errorf("env %s: only fieldRef and configMapKeyRef are supported by the lab VNode", e.Name)
			}
		}
		v = expand(v, env)
		env[e.Name] = v
		list = append(list, e.Name+"="+v)
	}
	return env, list, nil
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand replaces $(VAR) with the container's environment, as a kubelet
// does in command and args.
func expand(s string, env map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// rewriteMounts points a path under a mount at the directory the volume was
// written to: the lab has no mount namespace per pod.
func rewriteMounts(arg string, mounts map[string]string) string {
	for mp, dir := range mounts {
		arg = strings.ReplaceAll(arg, strings.TrimSuffix(mp, "/")+"/", dir+"/")
	}
	return arg
}

// watch keeps the pod's status in step with its process and readiness
// probe, and tells the node when it changes.
func (p *provider) watch(st *podState) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-st.exited:
			p.mu.Lock()
			p.setContainer(st, false)
			pod := st.pod.DeepCopy()
			notify := p.notify
			p.mu.Unlock()
			if notify != nil {
				notify(pod)
			}
			return
		case <-tick.C:
		}
		ready := p.probe(st)
		p.mu.Lock()
		changed := p.setContainer(st, ready)
		pod := st.pod.DeepCopy()
		notify := p.notify
		p.mu.Unlock()
		if changed && notify != nil {
			notify(pod)
		}
	}
}

// probe runs the container's TCP readiness probe from inside the
// namespace; without a probe a running process is ready.
func (p *provider) probe(st *podState) bool {
	c := st.pod.Spec.Containers[0]
	rp := c.ReadinessProbe
	if rp == nil || rp.TCPSocket == nil {
		return true
	}
	port := rp.TCPSocket.Port.IntValue()
	if port == 0 {
		for _, cp := range c.Ports {
			if cp.Name == rp.TCPSocket.Port.String() {
				port = int(cp.ContainerPort)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return dialIn(ctx, p.host.Name, fmt.Sprintf("%s:%d", p.host.HostAddr, port)) == nil
}

// setContainer writes the container status and the pod conditions; it
// reports whether readiness or the process state changed. Callers hold mu
// (or own st alone).
func (p *provider) setContainer(st *podState, ready bool) bool {
	c := st.pod.Spec.Containers[0]
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "lab://" + c.Image, ContainerID: fmt.Sprintf("lab://%d", st.pid)}
	select {
	case <-st.exited:
		code := int32(0)
		var ee *exec.ExitError
		if errors.As(st.exitErr, &ee) {
			code = int32(ee.ExitCode())
		}
		cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: code, Reason: "Error", FinishedAt: metav1.Now()}
		st.pod.Status.Phase = corev1.PodFailed
		ready = false
	default:
		started := true
		cs.Started = &started
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: *st.pod.Status.StartTime}
	}
	cs.Ready = ready
	was := len(st.pod.Status.ContainerStatuses) == 1 && st.pod.Status.ContainerStatuses[0].Ready == ready &&
		(st.pod.Status.ContainerStatuses[0].State.Terminated == nil) == (cs.State.Terminated == nil)
	st.pod.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.Now()}
	}
	st.pod.Status.Conditions = []corev1.PodCondition{
		cond(corev1.PodScheduled, true), cond(corev1.PodInitialized, true),
		cond(corev1.ContainersReady, ready), cond(corev1.PodReady, ready),
	}
	if !ready {
		st.pod.Status.Conditions[3].Reason = "ContainersNotReady"
	}
	return !was
}

// UpdatePod changes nothing: the lab runs what was created.
func (p *provider) UpdatePod(context.Context, *corev1.Pod) error { return nil }

// DeletePod stops the container by PID.
func (p *provider) DeletePod(_ context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	st, ok := p.pods[key(pod.Namespace, pod.Name)]
	delete(p.pods, key(pod.Namespace, pod.Name))
	notify := p.notify
	p.mu.Unlock()
	if !ok {
		return errdefs.NotFoundf("pod %s/%s", pod.Namespace, pod.Name)
	}
	netlab.Kill(st.pid)
	<-st.exited
	if notify != nil {
		p.mu.Lock()
		p.setContainer(st, false)
		done := st.pod.DeepCopy()
		p.mu.Unlock()
		notify(done)
	}
	return nil
}

func (p *provider) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.pods[key(namespace, name)]
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s", namespace, name)
	}
	return st.pod.DeepCopy(), nil
}

func (p *provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

func (p *provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*corev1.Pod
	for _, st := range p.pods {
		out = append(out, st.pod.DeepCopy())
	}
	return out, nil
}

// NotifyPods registers the node's callback for status changes.
func (p *provider) NotifyPods(_ context.Context, cb func(*corev1.Pod)) {
	p.mu.Lock()
	p.notify = cb
	p.mu.Unlock()
}

// GetContainerLogs answers the kubelet API's /containerLogs: the tail of
// the container's log file, read from its end.
func (p *provider) GetContainerLogs(_ context.Context, namespace, podName, container string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	p.mu.Lock()
	st, ok := p.pods[key(namespace, podName)]
	p.logReqs = append(p.logReqs, opts)
	p.mu.Unlock()
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s", namespace, podName)
	}
	if st.pod.Spec.Containers[0].Name != container {
		return nil, errdefs.NotFoundf("container %s in pod %s/%s", container, namespace, podName)
	}
	if opts.Follow || opts.Previous || opts.Timestamps || opts.SinceSeconds > 0 || !opts.SinceTime.IsZero() {
		return nil, errdefs.InvalidInput("the lab VNode serves tailLines and limitBytes only")
	}
	return openTail(st.logFile, opts.Tail, opts.LimitBytes)
}

// Close stops every container.
func (p *provider) Close() {
	close(p.stop)
	p.mu.Lock()
	var sts []*podState
	for _, st := range p.pods {
		sts = append(sts, st)
	}
	p.pods = map[string]*podState{}
	p.mu.Unlock()
	for _, st := range sts {
		netlab.Kill(st.pid)
		<-st.exited
	}
}

// Pause stops (SIGSTOP) or continues (SIGCONT) a pod's process: a hung
// agent whose log goes stale while its pod stays Running.
func (p *provider) Pause(namespace, name string, stop bool) error {
	p.mu.Lock()
	st, ok := p.pods[key(namespace, name)]
	p.mu.Unlock()
	if !ok {
		return fmt.Errorf("no pod %s/%s", namespace, name)
	}
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	return syscall.Kill(st.pid, sig)
}
