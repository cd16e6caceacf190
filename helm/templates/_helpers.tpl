{{/*
Names, labels and shared pod parts. Component names: consumer, auditor, analytics.
*/}}

{{- define "data-manager.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "data-manager.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<component>"; args: (list $ "consumer") */}}
{{- define "data-manager.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "data-manager.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "data-manager.selectorLabels" -}}
app.kubernetes.io/name: {{ include "data-manager.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "data-manager.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "data-manager.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: petrosa
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* args: (list $ "consumer") */}}
{{- define "data-manager.componentSelectorLabels" -}}
{{ include "data-manager.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* args: (list $ "consumer") */}}
{{- define "data-manager.componentLabels" -}}
{{ include "data-manager.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "data-manager.auditorEnabled" -}}
{{- if and .Values.schedulers.enabled .Values.schedulers.auditor.enabled }}true{{- end }}
{{- end }}

{{- define "data-manager.analyticsEnabled" -}}
{{- if and .Values.schedulers.enabled .Values.schedulers.analytics.enabled }}true{{- end }}
{{- end }}

{{/* The names of the schedulers that are rendered, as a list. */}}
{{- define "data-manager.enabledSchedulers" -}}
{{- $out := list }}
{{- if include "data-manager.auditorEnabled" . }}{{- $out = append $out "auditor" }}{{- end }}
{{- if include "data-manager.analyticsEnabled" . }}{{- $out = append $out "analytics" }}{{- end }}
{{- toJson $out }}
{{- end }}

{{- define "data-manager.schedulerServiceAccountName" -}}
{{- $sa := .Values.schedulers.serviceAccount }}
{{- if and (not $sa.create) (not $sa.name) }}
{{- fail "schedulers.serviceAccount: with create=false, name must name an existing ServiceAccount" }}
{{- end }}
{{- default (include "data-manager.componentName" (list . "scheduler")) $sa.name }}
{{- end }}

{{/* A scheduler's Lease: leaseName, or "<fullname>-<scheduler>" so that every release has its
own; args: (list $ "auditor") */}}
{{- define "data-manager.leaseName" -}}
{{- $root := index . 0 }}
{{- default (include "data-manager.componentName" (list $root (index . 1))) (index $root.Values.schedulers (index . 1)).leaseName }}
{{- end }}

{{/* The pod's affinity: the user's, or a soft anti-affinity that spreads one component's
replicas over nodes; args: (list $ "auditor" affinityValues) */}}
{{- define "data-manager.affinity" -}}
{{- $affinity := index . 2 }}
{{- if $affinity }}
{{- toYaml $affinity }}
{{- else }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "data-manager.componentSelectorLabels" (list (index . 0) (index . 1)) | nindent 12 }}
{{- end }}
{{- end }}

{{/* args: the image values (repository, tag, digest) and $ */}}
{{- define "data-manager.image" -}}
{{- $image := index . 0 }}
{{- $root := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* Scrape annotations, only while no ServiceMonitor scrapes the same pods (no double scrape). */}}
{{- define "data-manager.podAnnotations" -}}
{{- if and .Values.metrics.podAnnotations (not .Values.metrics.serviceMonitor.enabled) }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metricsPort | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/* Probes on the metrics port; args: (list $ probeValues) */}}
{{- define "data-manager.probes" -}}
{{- $probes := index . 1 }}
livenessProbe:
  httpGet:
    path: /health/liveness
    port: metrics
  {{- toYaml $probes.livenessProbe | nindent 2 }}
readinessProbe:
  httpGet:
    path: /health/readiness
    port: metrics
  {{- toYaml $probes.readinessProbe | nindent 2 }}
{{- end }}

{{/* Fails the render when a grace period does not fit; args: (list "consumer" values) */}}
{{- define "data-manager.checkGrace" -}}
{{- $v := index . 1 }}
{{- if ge (int $v.shutdownGraceSeconds) (int $v.terminationGracePeriodSeconds) }}
{{- fail (printf "%s: shutdownGraceSeconds (%d) must be below terminationGracePeriodSeconds (%d), or Kubernetes kills the pod before it drains" (index . 0) (int $v.shutdownGraceSeconds) (int $v.terminationGracePeriodSeconds)) }}
{{- end }}
{{- end }}

{{/* The Lease timing rules of crates/leader (LEASE_DURATION > LEASE_RENEW_DEADLINE > 1.2 x LEASE_RETRY_PERIOD). */}}
{{- define "data-manager.checkLeaderElection" -}}
{{- $le := .Values.schedulers.leaderElection }}
{{- if le (int $le.leaseDurationSeconds) (int $le.renewDeadlineSeconds) }}
{{- fail (printf "schedulers.leaderElection: leaseDurationSeconds (%d) must be longer than renewDeadlineSeconds (%d)" (int $le.leaseDurationSeconds) (int $le.renewDeadlineSeconds)) }}
{{- end }}
{{- if le (mul 10 (int $le.renewDeadlineSeconds)) (mul 12 (int $le.retryPeriodSeconds)) }}
{{- fail (printf "schedulers.leaderElection: renewDeadlineSeconds (%d) must be longer than 1.2 x retryPeriodSeconds (%d)" (int $le.renewDeadlineSeconds) (int $le.retryPeriodSeconds)) }}
{{- end }}
{{- $auditorLease := include "data-manager.leaseName" (list . "auditor") }}
{{- if and (include "data-manager.auditorEnabled" .) (include "data-manager.analyticsEnabled" .) (eq $auditorLease (include "data-manager.leaseName" (list . "analytics"))) }}
{{- fail (printf "schedulers: auditor and analytics need different leaseName values (both are %q), or one replica would lead both" $auditorLease) }}
{{- end }}
{{- end }}

{{/* extraConfig first, the chart's own keys last: even without the schema (which refuses those
keys), no extra setting can replace what the chart sets; args: (list extraConfig ownSettings) */}}
{{- define "data-manager.configData" -}}
{{- $data := dict }}
{{- range $k, $v := index . 0 }}
{{- $_ := set $data $k (toString $v) }}
{{- end }}
{{- range $k, $v := index . 1 }}
{{- $_ := set $data $k $v }}
{{- end }}
{{- toYaml $data }}
{{- end }}

{{/* Non-secret settings of one scheduler, as ConfigMap data; args: (list $ "auditor") */}}
{{- define "data-manager.schedulerConfig" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $s := index $root.Values.schedulers $name }}
{{- $le := $root.Values.schedulers.leaderElection }}
{{- $data := dict
  "LEADER_ELECTION" "kubernetes"
  "LEASE_NAME" (include "data-manager.leaseName" (list $root $name))
  "LEASE_DURATION" (printf "%ds" (int $le.leaseDurationSeconds))
  "LEASE_RENEW_DEADLINE" (printf "%ds" (int $le.renewDeadlineSeconds))
  "LEASE_RETRY_PERIOD" (printf "%ds" (int $le.retryPeriodSeconds))
  "SUPPORTED_PAIRS" $root.Values.schedulers.supportedPairs
  "METRICS_PORT" (toString $root.Values.metricsPort)
  "METRICS_HOST" "0.0.0.0"
  "LOG_LEVEL" $root.Values.logging.level
  "LOG_FORMAT" $root.Values.logging.format
  "SHUTDOWN_GRACE" (printf "%ds" (int $s.shutdownGraceSeconds))
}}
{{- if eq $name "auditor" }}
{{- $_ := set $data "ENABLE_AUDITOR" "true" }}
{{- $_ := set $data "AUDIT_INTERVAL" (toString (int $s.intervalSeconds)) }}
{{- $_ := set $data "AUDIT_TIMEFRAMES" $s.timeframes }}
{{- else }}
{{- $_ := set $data "ENABLE_ANALYTICS" "true" }}
{{- $_ := set $data "ANALYTICS_INTERVAL" (toString (int $s.intervalSeconds)) }}
{{- $_ := set $data "ANALYTICS_TIMEFRAMES" $s.timeframes }}
{{- end }}
{{- include "data-manager.configData" (list $s.extraConfig $data) }}
{{- end }}

{{- define "data-manager.consumerConfig" -}}
{{- $c := .Values.consumer }}
{{- $data := dict
  "NATS_CONSUMER_SUBJECT" $c.nats.subject
  "NATS_QUEUE_GROUP" $c.nats.queueGroup
  "METRICS_PORT" (toString .Values.metricsPort)
  "METRICS_HOST" "0.0.0.0"
  "LOG_LEVEL" .Values.logging.level
  "LOG_FORMAT" .Values.logging.format
  "STATS_INTERVAL" (printf "%ds" (int $c.statsIntervalSeconds))
  "SHUTDOWN_GRACE" (printf "%ds" (int $c.shutdownGraceSeconds))
  "SUPPORTED_PAIRS" .Values.schedulers.supportedPairs
}}
{{- include "data-manager.configData" (list $c.extraConfig $data) }}
{{- end }}

{{/* NetworkPolicy parts. */}}
{{- define "data-manager.np.metricsIngress" -}}
{{- $root := . }}
ingress:
  - from:
      {{- range $ns := $root.Values.networkPolicy.metricsIngressNamespaces }}
      - namespaceSelector:
          matchLabels:
            kubernetes.io/metadata.name: {{ $ns }}
      {{- end }}
    ports:
      - protocol: TCP
        port: {{ $root.Values.metricsPort }}
{{- end }}
{{- define "data-manager.np.dns" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.dns.namespace }}
  ports:
    - protocol: UDP
      port: {{ .Values.networkPolicy.dns.port }}
    - protocol: TCP
      port: {{ .Values.networkPolicy.dns.port }}
{{- end }}

{{/* One egress rule to TCP ports, to cidrs when given, else to any address; args: (list cidrs ports) */}}
{{- define "data-manager.np.tcpEgress" -}}
{{- $cidrs := index . 0 }}
- ports:
    {{- range $port := index . 1 }}
    - protocol: TCP
      port: {{ $port }}
    {{- end }}
  {{- with $cidrs }}
  to:
    {{- range $cidr := . }}
    - ipBlock:
        cidr: {{ $cidr }}
    {{- end }}
  {{- end }}
{{- end }}

{{/* The PromQL label matchers that select one component's pods of this release, and nothing
else in the namespace (the Python service exports the same metric names there): the pod name
is "<deployment>-<replicaset hash>-<suffix>", and with the ServiceMonitor the job is the
Service's name. args: (list $ "consumer") */}}
{{- define "data-manager.alertSelector" -}}
{{- $root := index . 0 }}
{{- $pr := $root.Values.metrics.prometheusRule }}
{{- $deployment := include "data-manager.componentName" (list $root (index . 1)) }}
{{- printf "%s=%q, %s=~%q" $pr.namespaceLabel $root.Release.Namespace $pr.podLabel (printf "%s-[a-z0-9]+-[a-z0-9]+" $deployment) }}
{{- if $root.Values.metrics.serviceMonitor.enabled }}
{{- printf ", job=%q" $deployment }}
{{- end }}
{{- end }}

{{/* dm-api's ConfigMap data (also hashed into its pods' checksum annotation). */}}
{{- define "data-manager.apiConfig" -}}
{{- $a := .Values.api }}
{{- $data := dict
  "API_HOST" "0.0.0.0"
  "API_PORT" (toString $a.port)
  "LOG_LEVEL" .Values.logging.level
  "LOG_FORMAT" .Values.logging.format
  "SHUTDOWN_GRACE" (printf "%ds" (int $a.shutdownGraceSeconds))
  "API_QUERY_TIMEOUT" (printf "%ds" (int $a.queryTimeoutSeconds))
  "API_PAGE_REFRESH" (printf "%ds" (int $a.pageRefreshSeconds))
}}
{{- include "data-manager.configData" (list $a.extraConfig $data) }}
{{- end }}
