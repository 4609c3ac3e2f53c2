package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/vnodediag/vnodediag/diag"
)

// pollEvery is how often the watch cache reads the parts it does not
// watch: the server version, the ConfigMaps read by name, the APIService
// and the ServiceCIDRs (a handful of small requests).
var pollEvery = 30 * time.Second

// CachedProvider is the Kubernetes source of the daemon: a watch cache.
// Reflectors (client-go's list-then-watch, with its backoff and relists)
// keep nodes, pods, DaemonSets, Deployments, namespaces, PVs and the
// Warning events about pods, each compacted on arrival to what the checks
// read (the compact Pod, nodes without images, no managed fields), so the
// cache never holds a whole pod. The parts that are one object or a few
// are polled (pollEvery). Gather builds the same Snapshot a one-shot run
// gathers, from memory, in milliseconds: the checks cannot tell the two
// apart.
//
// Start starts the watches; WaitSynced waits for the first lists; Refresh
// forces a relist; Healthy says whether the watches are current; Close
// stops everything.
type CachedProvider struct {
	p   *Provider
	log *slog.Logger

	nodes       *compactStore[*corev1.Node]
	pods        *compactStore[Pod]
	daemonSets  *compactStore[*appsv1.DaemonSet]
	deployments *compactStore[*appsv1.Deployment]
	namespaces  *compactStore[namespaceInfo]
	pvs         *compactStore[PersistentVolume]
	events      *compactStore[Event]
	units       []*watchUnit

	// life orders Refresh's restarts of the reflectors and Close.
	life sync.Mutex

	mu     sync.Mutex
	ctx    context.Context // of Start; nil before
	cancel context.CancelFunc
	closed bool
	polled *Snapshot // the polled parts, nil before the first poll
	// names holds one copy of each node's name for its pods to share.
	names nodeNames
	// facts holds the NodeFacts of the nodes at store generation factsGen.
	facts    *once[*NodeFacts]
	factsGen uint64
	// polls counts the polls that changed polled.
	polls   uint64
	pollErr error // why the last poll could not read the server version
	poller  chan struct{}
}

// namespaceInfo is what the snapshot keeps of a namespace.
type namespaceInfo struct {
	name   string
	labels map[string]string
	uid    string
}

// watchUnit is one reflector and the health of its requests.
type watchUnit struct {
	part    string
	core    bool
	example runtime.Object
	store   unitStore
	lw      *cache.ListWatch
	log     *slog.Logger

	mu    sync.Mutex
	err   error // of the last list or watch request; nil after one succeeds
	since time.Time
	// changes counts the changes of err (what a snapshot says of the part).
	changes uint64
	cancel  context.CancelFunc
	done    chan struct{}
}

// unitStore is what a watch unit writes to: a compactStore.
type unitStore interface {
	cache.ReflectorStore
	lists() uint64
	generation() uint64
}

// NewCachedProvider is NewProvider for the daemon: the same configuration,
// the same kubeconfig rules, a watch cache. Call Start before Gather.
func NewCachedProvider(cfg *Config, env diag.Env) (*CachedProvider, error) {
	if cfg == nil {
		return nil, errors.New("no kubernetes section in the configuration")
	}
	p, err := NewProvider(cfg, diag.Env{Log: env.Log})
	if err != nil {
		return nil, err
	}
	return newCached(p.(*Provider), env.Logger()), nil
}

// CachedForRESTConfig is NewCachedProvider for a REST config already
// resolved, as ForRESTConfig.
func CachedForRESTConfig(cfg *Config, rc *rest.Config, contextName string, log *slog.Logger) (*CachedProvider, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	p, err := newProvider(s, rc, contextName)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return newCached(p, log), nil
}

func newCached(p *Provider, log *slog.Logger) *CachedProvider {
	c := &CachedProvider{p: p, log: log}
	cs := p.client
	c.nodes = newCompactStore(func(o runtime.Object) (*corev1.Node, error) {
		n, ok := o.(*corev1.Node)
		if !ok {
			return nil, fmt.Errorf("watch nodes: got %T", o)
		}
		trimNode(n)
		c.names.add(n.Name)
		return n, nil
	})
	c.pods = newKeyedStore(func(o runtime.Object) (Pod, error) {
		pod, ok := o.(*corev1.Pod)
		if !ok {
			return Pod{}, fmt.Errorf("watch pods: got %T", o)
		}
		p := compactPod(pod)
		p.NodeName = c.names.canonical(p.NodeName)
		return p, nil
	}, func(p *Pod) storeKey { return keyOf(p.Namespace, p.Name) })
	c.daemonSets = newCompactStore(func(o runtime.Object) (*appsv1.DaemonSet, error) {
		ds, ok := o.(*appsv1.DaemonSet)
		if !ok {
			return nil, fmt.Errorf("watch daemonsets: got %T", o)
		}
		trimDaemonSet(ds)
		return ds, nil
	})
	c.deployments = newCompactStore(func(o runtime.Object) (*appsv1.Deployment, error) {
		d, ok := o.(*appsv1.Deployment)
		if !ok {
			return nil, fmt.Errorf("watch deployments: got %T", o)
		}
		trimDeployment(d)
		return d, nil
	})
	c.namespaces = newCompactStore(func(o runtime.Object) (namespaceInfo, error) {
		ns, ok := o.(*corev1.Namespace)
		if !ok {
			return namespaceInfo{}, fmt.Errorf("watch namespaces: got %T", o)
		}
		return namespaceInfo{name: ns.Name, labels: ns.Labels, uid: string(ns.UID)}, nil
	})
	c.pvs = newCompactStore(func(o runtime.Object) (PersistentVolume, error) {
		pv, ok := o.(*corev1.PersistentVolume)
		if !ok {
			return PersistentVolume{}, fmt.Errorf("watch persistentvolumes: got %T", o)
		}
		return compactPV(pv), nil
	})
	c.events = newCompactStore(func(o runtime.Object) (Event, error) {
		e, ok := o.(*corev1.Event)
		if !ok {
			return Event{}, fmt.Errorf("watch events: got %T", o)
		}
		return compactEvent(e), nil
	})
	add := func(part string, core bool, example runtime.Object, store unitStore, selector string,
		list func(context.Context, metav1.ListOptions) (runtime.Object, error),
		watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) {
		u := &watchUnit{part: part, core: core, example: example, store: store, log: log}
		u.lw = &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				o.FieldSelector = selector
				l, err := list(ctx, o)
				u.observe(ctx, err)
				return l, err
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				o.FieldSelector = selector
				w, err := watchFn(ctx, o)
				u.observe(ctx, err)
				return w, err
			},
		}
		c.units = append(c.units, u)
	}
	core, apps := cs.CoreV1(), cs.AppsV1()
	ns := c.p.set.namespace // -n: the namespaced lists of one namespace, as a one-shot run reads
	add(PartNodes, true, &corev1.Node{}, c.nodes, "",
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Nodes().List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return core.Nodes().Watch(ctx, o)
		})
	add(PartPods, true, &corev1.Pod{}, c.pods, "",
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Pods(ns).List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return core.Pods(ns).Watch(ctx, o)
		})
	add(PartDaemonSets, false, &appsv1.DaemonSet{}, c.daemonSets, "",
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return apps.DaemonSets(ns).List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return apps.DaemonSets(ns).Watch(ctx, o)
		})
	add(PartDeployments, false, &appsv1.Deployment{}, c.deployments, "",
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return apps.Deployments(ns).List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return apps.Deployments(ns).Watch(ctx, o)
		})
	add(PartNamespaces, false, &corev1.Namespace{}, c.namespaces, "",
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Namespaces().List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return core.Namespaces().Watch(ctx, o)
		})
	add(PartPersistentVolumes, false, &corev1.PersistentVolume{}, c.pvs, "",
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.PersistentVolumes().List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return core.PersistentVolumes().Watch(ctx, o)
		})
	add(PartEvents, false, &corev1.Event{}, c.events, podEventSelector,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Events(ns).List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return core.Events(ns).Watch(ctx, o)
		})
	return c
}

// observe records the outcome of a list or watch request. A request
// cancelled because the cache is stopping or relisting says nothing about
// the server.
func (u *watchUnit) observe(ctx context.Context, err error) {
	if err != nil && ctx.Err() != nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case err == nil && u.err != nil:
		u.log.Warn("kubernetes watch recovered", "resource", u.part, "failed_for", time.Since(u.since).Round(time.Millisecond))
		u.err = nil
		u.changes++
	case err != nil && u.err == nil:
		u.err, u.since = redact(err), time.Now()
		u.log.Warn("kubernetes watch failing", "resource", u.part, "err", u.err)
		u.changes++
	case err != nil:
		e := redact(err)
		if e.Error() != u.err.Error() {
			u.changes++
		}
		u.err = e
	}
}

func (u *watchUnit) status() (time.Time, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.since, u.err
}

// start runs the unit's reflector until ctx ends or stop.
func (u *watchUnit) start(ctx context.Context, logger logr.Logger) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	u.mu.Lock()
	u.cancel, u.done = cancel, done
	u.mu.Unlock()
	r := cache.NewReflectorWithOptions(u.lw, u.example, u.store, cache.ReflectorOptions{
		Name: "vnodediag/" + u.part, TypeDescription: u.part, Logger: &logger})
	go func() {
		defer close(done)
		r.RunWithContext(ctx)
	}()
}

// stop ends the reflector and waits for it.
func (u *watchUnit) stop() {
	u.mu.Lock()
	cancel, done := u.cancel, u.done
	u.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Name implements diag.Provider.
func (c *CachedProvider) Name() diag.SourceName { return Source.Name() }

// Start starts the watches and the poll; they run until ctx ends or
// Close. It returns at once: WaitSynced waits for the first lists.
// Starting twice is a no-op.
func (c *CachedProvider) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("kubernetes watch cache: closed")
	}
	if c.ctx != nil {
		return nil
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	logger := logr.FromSlogHandler(c.log.Handler())
	for _, u := range c.units {
		u.start(c.ctx, logger)
	}
	c.poller = make(chan struct{})
	go c.pollLoop(c.ctx, c.poller)
	return nil
}

func (c *CachedProvider) pollLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		c.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll reads the parts that are not watched.
func (c *CachedProvider) poll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.p.set.requestTimeout)
	defer cancel()
	s := &Snapshot{PartErrors: map[string]error{}}
	s.ServiceCIDRs = append(s.ServiceCIDRs, c.p.set.serviceCIDRs...)
	v, verr := c.p.serverVersion(ctx)
	g := &parts{s: s}
	c.p.readSingletons(ctx, g)
	_ = g.wait() // no part read here is core
	if ctx.Err() != nil && c.stopping() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pollErr = redact(verr)
	switch {
	case verr == nil:
		s.Version = v
	case c.polled != nil:
		s.Version = c.polled.Version // the last one known
	default:
		return
	}
	if c.polled == nil || !samePolled(c.polled, s) {
		c.polls++
	}
	c.polled = s
}

// samePolled reports whether two polls read the same: the same values
// and the same part errors (compared by type and text, which is all a
// check can tell of them).
func samePolled(a, b *Snapshot) bool {
	if len(a.PartErrors) != len(b.PartErrors) {
		return false
	}
	for k, ea := range a.PartErrors {
		eb, ok := b.PartErrors[k]
		if !ok || (ea == nil) != (eb == nil) {
			return false
		}
		if ea != nil && (fmt.Sprintf("%T", ea) != fmt.Sprintf("%T", eb) || ea.Error() != eb.Error()) {
			return false
		}
	}
	x, y := *a, *b
	x.PartErrors, y.PartErrors = nil, nil
	return reflect.DeepEqual(&x, &y)
}

// generations are the cache's generation, which counts every change it
// has seen (of a store, of a watch's health, of a poll's outcome), and
// the generations of a snapshot's parts: of each watched list, its
// store's changes and its watch's health; of the polled parts, one for
// all (the polls that changed any). Each only grows and is never 0. Read
// before the parts they describe, they are at most the parts'.
func (c *CachedProvider) generations() (whole uint64, parts map[string]uint64) {
	parts = make(map[string]uint64, len(c.units)+len(polledParts)+1)
	whole = 1
	for _, u := range c.units {
		u.mu.Lock()
		g := u.changes
		u.mu.Unlock()
		g += u.store.generation()
		whole += g
		parts[u.part] = 1 + g
	}
	parts[PartClusterUID] = parts[PartNamespaces]
	c.mu.Lock()
	polls := c.polls
	c.mu.Unlock()
	whole += polls
	for _, part := range polledParts {
		parts[part] = 1 + polls
	}
	return whole, parts
}

func (c *CachedProvider) stopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed || c.ctx == nil || c.ctx.Err() != nil
}

// synced says whether every watch has listed once (or, for a part that is
// not core, failed) and the poll has read the server version; why not when
// not.
func (c *CachedProvider) synced() (bool, string) {
	var waiting []string
	for _, u := range c.units {
		_, err := u.status()
		if u.store.lists() == 0 && (u.core || err == nil) {
			w := u.part
			if err != nil {
				w += " (" + err.Error() + ")"
			}
			waiting = append(waiting, w)
		}
	}
	c.mu.Lock()
	if c.polled == nil {
		w := "server version"
		if c.pollErr != nil {
			w += " (" + c.pollErr.Error() + ")"
		}
		waiting = append(waiting, w)
	}
	c.mu.Unlock()
	if len(waiting) == 0 {
		return true, ""
	}
	return false, "not synced: waiting for " + strings.Join(waiting, ", ")
}

// WaitSynced waits until every watch has listed once and the server
// version is known, or ctx ends (then the error says what is missing).
func (c *CachedProvider) WaitSynced(ctx context.Context) error {
	if c.stopping() {
		return errors.New("kubernetes watch cache: not running (Start it, or it was closed)")
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		ok, why := c.synced()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubernetes watch cache %s: %w", why, ctx.Err())
		case <-t.C:
		}
	}
}

// waitUsable waits for the first sync like WaitSynced, but ends at once,
// as a one-shot gather would, when the server refuses the cache: a failing
// watch of nodes or pods, or no server version read yet for an error.
func (c *CachedProvider) waitUsable(ctx context.Context) error {
	if c.stopping() {
		return errors.New("kubernetes watch cache: not running")
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if err := c.Health(); err == nil {
			return nil
		}
		for _, u := range c.units {
			if since, err := u.status(); err != nil && u.core {
				return fmt.Errorf("kubernetes watch of %s failing since %s: %w", u.part, since.UTC().Format(time.RFC3339), err)
			}
		}
		c.mu.Lock()
		perr := c.pollErr
		unread := c.polled == nil
		c.mu.Unlock()
		if unread && perr != nil {
			return fmt.Errorf("server version: %w", perr)
		}
		select {
		case <-ctx.Done():
			_, why := c.synced()
			return fmt.Errorf("kubernetes watch cache %s: %w", why, ctx.Err())
		case <-t.C:
		}
	}
}

// Health is nil while the cache is current: it has synced, and the last
// list or watch request of nodes and pods succeeded. Otherwise it says why
// (the daemon's health of the kube source is NOT_SERVING meanwhile). The
// other watches failing make only the checks that read them ERROR.
func (c *CachedProvider) Health() error {
	if c.stopping() {
		return errors.New("kubernetes watch cache: not running")
	}
	for _, u := range c.units {
		if !u.core {
			continue
		}
		if since, err := u.status(); err != nil {
			return fmt.Errorf("kubernetes watch of %s failing since %s: %w", u.part, since.UTC().Format(time.RFC3339), err)
		}
	}
	if ok, why := c.synced(); !ok {
		return errors.New("kubernetes watch cache " + why)
	}
	return nil
}

// Refresh forces a relist of every watch and a poll, and waits for them
// (bounded by ctx): what a caller asking for fresh data gets.
func (c *CachedProvider) Refresh(ctx context.Context) error {
	c.mu.Lock()
	run := c.ctx
	c.mu.Unlock()
	if run == nil || c.stopping() {
		return errors.New("kubernetes watch cache: not running")
	}
	logger := logr.FromSlogHandler(c.log.Handler())
	before := make([]uint64, len(c.units))
	// Not while Close stops the reflectors, nor beside another Refresh.
	c.life.Lock()
	if c.stopping() {
		c.life.Unlock()
		return errors.New("kubernetes watch cache: not running")
	}
	for i, u := range c.units {
		u.stop()
		before[i] = u.store.lists()
		u.mu.Lock()
		if u.err != nil {
			u.err = nil
			u.changes++
		}
		u.mu.Unlock()
		u.start(run, logger)
	}
	c.life.Unlock()
	c.poll(ctx)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		var waiting []string
		for i, u := range c.units {
			_, err := u.status()
			if u.store.lists() > before[i] {
				continue
			}
			if err != nil && u.core {
				return fmt.Errorf("kubernetes relist of %s: %w", u.part, err)
			}
			if err == nil {
				waiting = append(waiting, u.part)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubernetes relist of %s: %w", strings.Join(waiting, ", "), ctx.Err())
		case <-t.C:
		}
	}
}

// nodeFacts is the holder of NodeFacts for the nodes store's items at
// generation gen (read with the view, under the store's lock): the same
// as the last snapshot's while the nodes did not change. A change also
// drops the held names of nodes that are gone.
func (c *CachedProvider) nodeFacts(gen uint64, nodes []*corev1.Node) *once[*NodeFacts] {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.facts == nil || c.factsGen != gen {
		c.facts, c.factsGen = &once[*NodeFacts]{}, gen
		c.names.keep(nodes)
	}
	return c.facts
}

// nodeNames holds one copy of the name of each node, which the pods bound
// to it share instead of each holding its own (the name of a pod's node
// is decoded per pod, and pods arrive in no order of nodes): memory, and
// NodePositions finds most pods' node by the address of that copy.
type nodeNames struct {
	mu sync.Mutex
	m  map[string]string
}

func (n *nodeNames) add(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[string]string{}
	}
	if _, ok := n.m[name]; !ok {
		n.m[name] = name
	}
}

// canonical is the held copy of name, or name when no node has it.
func (n *nodeNames) canonical(name string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.m[name]; ok {
		return c
	}
	return name
}

// keep holds the names of nodes alone (those of deleted nodes go).
func (n *nodeNames) keep(nodes []*corev1.Node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := make(map[string]string, len(nodes))
	for _, nd := range nodes {
		if c, ok := n.m[nd.Name]; ok {
			m[c] = c
		} else {
			m[nd.Name] = nd.Name
		}
	}
	n.m = m
}

// Gather implements diag.Provider: the snapshot from the cache. It waits
// for the first sync (bounded by ctx), and fails as a one-shot gather
// would while the watch of nodes or pods is failing.
func (c *CachedProvider) Gather(ctx context.Context) (any, error) {
	server := diag.RedactURL(c.p.rest.Host)
	if err := c.waitUsable(ctx); err != nil {
		return nil, fmt.Errorf("kubernetes API %s: %w", server, err)
	}
	gen, parts := c.generations()
	c.mu.Lock()
	s := *c.polled
	c.mu.Unlock()
	s.generation, s.parts = gen, parts
	s.Server, s.Context, s.Namespace, s.API = server, c.p.context, c.p.set.namespace, c.p.client
	s.ServiceCIDRs = s.ServiceCIDRs[:len(s.ServiceCIDRs):len(s.ServiceCIDRs)]
	s.PartErrors = maps.Clone(s.PartErrors)
	var views [6]func()
	var nodesAt uint64
	s.Nodes, views[0], nodesAt, _ = c.nodes.viewAt()
	s.Pods, views[1], _ = c.pods.view()
	s.detail, s.podNodes = &once[[]Pod]{}, &once[[]int32]{}
	s.nodeFacts = c.nodeFacts(nodesAt, s.Nodes)
	s.DaemonSets, views[2], _ = c.daemonSets.view()
	s.Deployments, views[3], _ = c.deployments.view()
	s.PersistentVolumes, views[4], _ = c.pvs.view()
	s.PodEvents, views[5], _ = c.events.view()
	s.release = sync.OnceFunc(func() {
		for _, release := range views {
			release()
		}
	})
	nss, releaseNS, _ := c.namespaces.view()
	s.NamespaceLabels = make(map[string]map[string]string, len(nss))
	for _, ns := range nss {
		s.NamespaceLabels[ns.name] = ns.labels
		if ns.name == "kube-system" {
			s.ClusterUID = ns.uid
		}
	}
	releaseNS() // read here alone
	for _, u := range c.units {
		if u.core {
			continue
		}
		since, err := u.status()
		switch {
		case err != nil:
			s.PartErrors[u.part] = fmt.Errorf("watch %s failing since %s: %w", u.part, since.UTC().Format(time.RFC3339), err)
		case u.store.lists() == 0:
			s.PartErrors[u.part] = fmt.Errorf("watch %s: not listed yet", u.part)
		}
	}
	if err := s.PartErrors[PartNamespaces]; err != nil {
		s.PartErrors[PartClusterUID] = err
	} else if s.ClusterUID == "" {
		s.PartErrors[PartClusterUID] = errors.New("namespace kube-system: not found")
	}
	return &s, nil
}

// Close stops the watches and the poll, waits for them, and closes the
// idle connections to the API server.
func (c *CachedProvider) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	cancel, poller := c.cancel, c.poller
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		c.life.Lock()
		for _, u := range c.units {
			u.stop()
		}
		c.life.Unlock()
		<-poller
	}
	// A watch's HTTP/2 stream is released a moment after its watch stops,
	// and only then is its connection idle: close idle connections a few
	// times, briefly, so that none is left to its idle timeout.
	for i := range 5 {
		c.p.Close()
		if i < 4 {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

var _ diag.Provider = (*CachedProvider)(nil)
