{{/* The name of the release's objects: the release name, with the chart
name appended unless it already contains it. */}}
{{- define "vnodediag.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vnodediag.agentName" -}}
{{- printf "%s-agent" (include "vnodediag.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. No chart version: the rendered kustomize base
stays the same across chart releases that change nothing in it. */}}
{{- define "vnodediag.partOf" -}}
app.kubernetes.io/part-of: vnodediag
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vnodediag.selectorLabels" -}}
app.kubernetes.io/name: vnodediag
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vnodediag.labels" -}}
app.kubernetes.io/name: vnodediag
{{ include "vnodediag.partOf" . }}
{{- end -}}

{{/* The agent's name label is the agent source's default selector
(app.kubernetes.io/name=vnodediag-agent). */}}
{{- define "vnodediag.agentSelectorLabels" -}}
app.kubernetes.io/name: vnodediag-agent
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vnodediag.agentLabels" -}}
app.kubernetes.io/name: vnodediag-agent
{{ include "vnodediag.partOf" . }}
{{- end -}}

{{- define "vnodediag.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The daemon's config.yaml: .Values.config with the chart's defaults
(the agents' namespace, hostRoot), refusing inline BGP passwords. */}}
{{- define "vnodediag.config" -}}
{{- $cfg := deepCopy .Values.config | default dict -}}
{{- if and .Values.agent.enabled (not (hasKey $cfg "agent")) -}}
{{- $_ := set $cfg "agent" (dict "namespace" .Release.Namespace) -}}
{{- end -}}
{{- if and .Values.daemon.hostMounts (hasKey $cfg "host") -}}
{{- $host := get $cfg "host" | default dict -}}
{{- if not (hasKey $host "hostRoot") -}}
{{- $_ := set $host "hostRoot" "/host" -}}
{{- $_ := set $cfg "host" $host -}}
{{- end -}}
{{- end -}}
{{- with (get $cfg "bgp") -}}
{{- range $i, $p := (get . "peers" | default list) -}}
{{- if hasKey $p "password" -}}
{{- fail (printf "config.bgp.peers[%d].password: no password in values (it would land in a ConfigMap); put it in the Secret named by secrets.bgpPasswords and set passwordFile: /etc/vnodediag/secrets/bgp/<key>" $i) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "vnodediag.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "vnodediag.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: [ALL]}
{{- end -}}

{{/* Volumes of a pod that runs vnodediag with the config: the config, the
BGP password Secret, the host's /proc and /etc (daemon only). */}}
{{- define "vnodediag.configVolumes" -}}
- name: config
  configMap: {name: {{ include "vnodediag.fullname" . }}}
{{- with .Values.secrets.bgpPasswords }}
- name: bgp-passwords
  secret: {secretName: {{ . }}, defaultMode: 0400}
{{- end }}
{{- end -}}

{{- define "vnodediag.configMounts" -}}
- {name: config, mountPath: /etc/vnodediag, readOnly: true}
{{- if .Values.secrets.bgpPasswords }}
- {name: bgp-passwords, mountPath: /etc/vnodediag/secrets/bgp, readOnly: true}
{{- end }}
{{- end -}}

{{- define "vnodediag.cloudEnv" -}}
{{- with .Values.secrets.cloudCredentials }}
envFrom:
  - secretRef: {name: {{ . }}}
{{- end }}
{{- end -}}

{{/* How the daemon's gRPC API listens:
  "loopback" (the default): 127.0.0.1 in the pod, plaintext; reachable only
    from inside the pod (kubectl exec) or through kubectl port-forward;
  "tls" (tls.enabled): 0.0.0.0, TLS, with mTLS or a token as configured;
  "insecure" (daemon.insecureListen): 0.0.0.0, plaintext, --insecure-listen.
TLS with daemon.insecureListen is refused, as the daemon refuses
--insecure-listen with TLS; so is a token over non-loopback plaintext. */}}
{{- define "vnodediag.grpcMode" -}}
{{- $insecure := eq (toString .Values.daemon.insecureListen) "true" -}}
{{- if and .Values.tls.enabled $insecure -}}
{{- fail "daemon.insecureListen and tls.enabled contradict each other: with TLS the API already listens on the pod's address; leave out daemon.insecureListen" -}}
{{- else if .Values.tls.enabled -}}
tls
{{- else if $insecure -}}
{{- if .Values.token.secretName -}}
{{- fail "token.secretName with daemon.insecureListen: callers would send the token in clear across the network (the daemon refuses it); set tls.enabled instead of daemon.insecureListen" -}}
{{- end -}}
insecure
{{- else -}}
loopback
{{- end -}}
{{- end -}}
