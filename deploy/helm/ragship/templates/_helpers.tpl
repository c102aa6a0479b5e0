{{/*
Names and labels. Object names are <release>-<component> (api, embedder, generator, worker, reindex,
redis), which `make test-cluster` and docs/kubernetes.md rely on.
*/}}
{{- define "ragship.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release name (or fullnameOverride): objects are <release>-api, <release>-worker, ... */}}
{{- define "ragship.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- end }}

{{/* "<fullname>-<component>"; called with (dict "root" $ "component" "api"). */}}
{{- define "ragship.componentName" -}}
{{- printf "%s-%s" (include "ragship.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ragship.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ragship.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ragship.labels" -}}
{{ include "ragship.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: ragship
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* metadata of an object of one component: name, namespace, labels. */}}
{{- define "ragship.metadata" -}}
name: {{ include "ragship.componentName" . }}
namespace: {{ .root.Release.Namespace }}
labels:
  {{- include "ragship.labels" . | nindent 2 }}
{{- end }}

{{/* "registry/repository:tag" of the query or the indexing image; (dict "root" $ "image" "query"). */}}
{{- define "ragship.image" -}}
{{- $image := index .root.Values.image .image }}
{{- $repository := $image.repository }}
{{- with .root.Values.image.registry }}{{ $repository = printf "%s/%s" (trimSuffix "/" .) $repository }}{{ end }}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion $image.tag) }}
{{- end }}

{{/* In-cluster URL of a model service's Service: what the API and the workers call. */}}
{{- define "ragship.serviceUrl" -}}
{{- $values := index .root.Values .component }}
{{- printf "http://%s.%s.svc:%v" (include "ragship.componentName" .) .root.Release.Namespace $values.port }}
{{- end }}

{{/* The broker URL: the trial Redis of the release, or the external one. */}}
{{- define "ragship.redisUrl" -}}
{{- if .Values.redis.trial.enabled }}
{{- printf "redis://%s.%s.svc:6379/0" (include "ragship.componentName" (dict "root" . "component" "redis")) .Release.Namespace }}
{{- else }}
{{- .Values.redis.url }}
{{- end }}
{{- end }}

{{- define "ragship.specConfigMap" -}}
{{- if .Values.spec.existingConfigMap }}{{ .Values.spec.existingConfigMap }}{{ else }}{{ include "ragship.componentName" (dict "root" . "component" "spec") }}{{ end }}
{{- end }}

{{/* The served spec: the mounted YAML when one is given, else the registry URI. */}}
{{- define "ragship.servedSpec" -}}
{{- if include "ragship.specMounted" . }}{{ printf "/etc/ragship/spec/%s" .Values.spec.specKey }}{{ else }}{{ .Values.spec.uri }}{{ end }}
{{- end }}

{{- define "ragship.specMounted" -}}
{{- if or .Values.spec.existingConfigMap .Values.spec.inline }}true{{ end }}
{{- end }}

{{/*
Pod-level parts every workload shares. Called with (dict "root" $ "component" NAME "values" VALUES),
VALUES being the component's block (nodeSelector, tolerations, affinity, podAnnotations).
*/}}

{{/* Pod annotations: a checksum of the shared configuration, so a config change rolls every pod. */}}
{{- define "ragship.podAnnotations" -}}
checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
{{- with .values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "ragship.podScheduling" -}}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpread }}
topologySpreadConstraints:
  {{- range . }}
  - {{ toYaml . | indent 4 | trim }}
    labelSelector:
      matchLabels:
        {{- include "ragship.selectorLabels" $ | nindent 8 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Security and pull settings of every pod spec. */}}
{{- define "ragship.podSecurity" -}}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
{{- end }}

{{- define "ragship.containerSecurity" -}}
securityContext:
  {{- toYaml .root.Values.securityContext | nindent 2 }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
{{- end }}

{{/* One secret reference as an env entry: (dict "name" VAR "secret" NAME "key" KEY). */}}
{{- define "ragship.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end }}

{{/*
Environment of every ragship container: the shared ConfigMap, the secrets by reference (never their
values), then the component's own overrides, which win because later entries override envFrom.
*/}}
{{- define "ragship.env" -}}
{{- $v := .root.Values -}}
envFrom:
  - configMapRef:
      name: {{ include "ragship.componentName" (dict "root" .root "component" "config") }}
  {{- with $v.mlflow.existingSecret }}
  - secretRef:
      name: {{ . }}
  {{- end }}
{{- with (include "ragship.envEntries" .) }}
env:
  {{- . | trim | nindent 2 }}
{{- end }}
{{- end }}

{{- define "ragship.envEntries" -}}
{{- $v := .root.Values }}
  {{- $es := $v.elasticsearch.auth }}
  {{- if eq $es.type "apiKey" }}
  {{- include "ragship.secretEnv" (dict "name" "RAGSHIP_ES__API_KEY" "secret" $es.existingSecret "key" $es.apiKeyKey) | nindent 0 }}
  {{- else if eq $es.type "basic" }}
  {{- include "ragship.secretEnv" (dict "name" "RAGSHIP_ES__USERNAME" "secret" $es.existingSecret "key" $es.usernameKey) | nindent 0 }}
  {{- include "ragship.secretEnv" (dict "name" "RAGSHIP_ES__PASSWORD" "secret" $es.existingSecret "key" $es.passwordKey) | nindent 0 }}
  {{- end }}
  {{- with $v.redis.existingSecret }}
  {{- include "ragship.secretEnv" (dict "name" "RAGSHIP_QUEUE__PASSWORD" "secret" . "key" $v.redis.passwordKey) | nindent 0 }}
  {{- end }}
  {{- if eq $v.queue.broker "rabbitmq" }}
  {{- include "ragship.secretEnv" (dict "name" "RAGSHIP_QUEUE__URL" "secret" $v.rabbitmq.existingSecret "key" $v.rabbitmq.hostKey) | nindent 0 }}
  {{- end }}
  {{- with $v.apiKey.existingSecret }}
  {{- include "ragship.secretEnv" (dict "name" "RAGSHIP_SERVING__API_KEY" "secret" . "key" $v.apiKey.key) | nindent 0 }}
  {{- end }}
  {{- with $v.openai.existingSecret }}
  {{- include "ragship.secretEnv" (dict "name" $v.openai.envName "secret" . "key" $v.openai.key) | nindent 0 }}
  {{- end }}
  {{- with $v.tracing.headers.existingSecret }}
  {{- include "ragship.secretEnv" (dict "name" "RAGSHIP_TRACING__HEADERS" "secret" . "key" $v.tracing.headers.key) | nindent 0 }}
  {{- end }}
  {{- range $name, $value := .values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
  {{- end }}
{{- end }}

{{/* Writable paths and the mounted spec and CA bundle. */}}
{{- define "ragship.volumeMounts" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  {{- if include "ragship.specMounted" .root }}
  - name: spec
    mountPath: /etc/ragship/spec
    readOnly: true
  {{- end }}
  {{- if .root.Values.elasticsearch.ca.existingSecret }}
  - name: es-ca
    mountPath: /etc/ragship/es-ca
    readOnly: true
  {{- end }}
  {{- if .root.Values.access.keys.existingSecret }}
  {{- /* A directory mount (no subPath), so an edited Secret (a revocation) reaches the pod. */}}
  - name: access-keys
    mountPath: /etc/ragship/keys
    readOnly: true
  {{- end }}
  {{- if .root.Values.access.oidc.jwks.existingSecret }}
  - name: oidc-jwks
    mountPath: /etc/ragship/jwks
    readOnly: true
  {{- end }}
  {{- with .extraMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{- define "ragship.volumes" -}}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ .root.Values.tmpSizeLimit }}
  {{- if include "ragship.specMounted" .root }}
  - name: spec
    configMap:
      name: {{ include "ragship.specConfigMap" .root }}
  {{- end }}
  {{- with .root.Values.elasticsearch.ca.existingSecret }}
  - name: es-ca
    secret:
      secretName: {{ . }}
  {{- end }}
  {{- with .root.Values.access.keys.existingSecret }}
  - name: access-keys
    secret:
      secretName: {{ . }}
  {{- end }}
  {{- with .root.Values.access.oidc.jwks.existingSecret }}
  - name: oidc-jwks
    secret:
      secretName: {{ . }}
  {{- end }}
  {{- with .extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/*
Probes of a BentoML service: BentoML serves /livez (also at /healthz: process up) and /readyz (the
service's __is_ready__: store reachable, models loaded). The startup probe covers model loading, so
liveness never kills a pod that is still loading.
*/}}
{{- define "ragship.bentoProbes" -}}
startupProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 5
  failureThreshold: {{ .values.startupFailureThreshold }}
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
{{- end }}

{{/* The BentoML components this release deploys apart, in order. */}}
{{- define "ragship.bentoComponents" -}}
{{- $components := list "api" }}
{{- if .Values.embedder.enabled }}{{ $components = append $components "embedder" }}{{ end }}
{{- if .Values.generator.enabled }}{{ $components = append $components "generator" }}{{ end }}
{{- join " " $components }}
{{- end }}
