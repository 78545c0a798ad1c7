{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "webhook-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or the release name alone when it already contains the chart's.
Truncated to 57 characters so "<fullname>-admin" still fits a DNS label. */}}
{{- define "webhook-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 57 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "webhook-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "webhook-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webhook-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "webhook-gateway.labels" -}}
helm.sh/chart: {{ include "webhook-gateway.chart" . }}
{{ include "webhook-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: webhook-gateway
{{- end }}

{{- define "webhook-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "webhook-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "webhook-gateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Fixed by the image and the chart: the container's ports and paths. */}}
{{- define "webhook-gateway.httpPort" -}}8080{{- end }}
{{- define "webhook-gateway.adminPort" -}}9102{{- end }}
{{- define "webhook-gateway.configDir" -}}/etc/webhook-gateway{{- end }}
{{- define "webhook-gateway.dataDir" -}}/var/lib/webhook-gateway{{- end }}

{{/* The grace the pod gets on termination: the gateway's drain delay and shutdown grace,
and 10 s for the sink to flush and the process to exit. */}}
{{- define "webhook-gateway.terminationGracePeriodSeconds" -}}
{{- $limits := .Values.gateway.limits }}
{{- add (int (ceil (addf $limits.drainDelaySeconds $limits.shutdownGraceSeconds))) 10 }}
{{- end }}

{{/* Environment variable that carries one source secret: WEBHOOK_SECRET_<SOURCE>__<ID>,
upper-cased, every other character an underscore. Never WEBHOOK_GATEWAY_*: that prefix is the
gateway's own settings override. */}}
{{- define "webhook-gateway.secretEnvName" -}}
{{- $source := index . 0 }}
{{- $id := index . 1 }}
{{- printf "WEBHOOK_SECRET_%s__%s" (regexReplaceAll "[^A-Z0-9]" (upper $source) "_") (regexReplaceAll "[^A-Z0-9]" (upper (toString $id)) "_") }}
{{- end }}

{{- define "webhook-gateway.kafkaPasswordEnv" -}}KAFKA_SASL_PASSWORD{{- end }}
{{- define "webhook-gateway.redisUrlEnv" -}}REDIS_URL{{- end }}
{{- define "webhook-gateway.redisPasswordEnv" -}}REDIS_PASSWORD{{- end }}
{{- define "webhook-gateway.sentinelPasswordEnv" -}}REDIS_SENTINEL_PASSWORD{{- end }}

{{/* The env entries for the shared dedupe store: its URL (a plain value, or from a Secret) and
passwords (from Secrets). Empty unless gateway.dedupe.kind is redis. */}}
{{- define "webhook-gateway.redisEnv" -}}
{{- $d := .Values.gateway.dedupe }}
{{- if eq $d.kind "redis" }}
{{- $r := $d.redis }}
{{- if $r.urlSecretRef.name }}
- name: {{ include "webhook-gateway.redisUrlEnv" . }}
  valueFrom:
    secretKeyRef:
      name: {{ $r.urlSecretRef.name | quote }}
      key: {{ required "gateway.dedupe.redis.urlSecretRef.key" $r.urlSecretRef.key | quote }}
{{- else if $r.url }}
- name: {{ include "webhook-gateway.redisUrlEnv" . }}
  value: {{ $r.url | quote }}
{{- end }}
{{- if $r.passwordSecretRef.name }}
- name: {{ include "webhook-gateway.redisPasswordEnv" . }}
  valueFrom:
    secretKeyRef:
      name: {{ $r.passwordSecretRef.name | quote }}
      key: {{ required "gateway.dedupe.redis.passwordSecretRef.key" $r.passwordSecretRef.key | quote }}
{{- end }}
{{- if $r.sentinel.passwordSecretRef.name }}
- name: {{ include "webhook-gateway.sentinelPasswordEnv" . }}
  valueFrom:
    secretKeyRef:
      name: {{ $r.sentinel.passwordSecretRef.name | quote }}
      key: {{ required "gateway.dedupe.redis.sentinel.passwordSecretRef.key" $r.sentinel.passwordSecretRef.key | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The gateway's dedupe settings, as a dict. */}}
{{- define "webhook-gateway.dedupe" -}}
{{- $d := .Values.gateway.dedupe }}
{{- $out := dict "kind" $d.kind "max_entries" $d.maxEntries "ttl_seconds" $d.ttlSeconds "on_store_error" $d.onStoreError }}
{{- if eq $d.kind "redis" }}
{{- $r := $d.redis }}
{{- $prefix := $r.keyPrefix | default (printf "%s.%s" .Release.Namespace (include "webhook-gateway.fullname" .) | trunc 64 | trimSuffix "-") }}
{{- $redis := dict "key_prefix" $prefix "db" (int $r.db) "timeout_seconds" $r.timeoutSeconds "claim_ttl_seconds" $r.claimTtlSeconds }}
{{- if $r.sentinel.hosts }}
{{- if or $r.url $r.urlSecretRef.name }}
{{- fail "gateway.dedupe.redis: set either url (or urlSecretRef) or sentinel.hosts, not both" }}
{{- end }}
{{- $sentinel := dict "hosts" $r.sentinel.hosts "service_name" (required "gateway.dedupe.redis.sentinel.serviceName: the name of the master the sentinels monitor" $r.sentinel.serviceName) }}
{{- if $r.sentinel.passwordSecretRef.name }}
{{- $_ := set $sentinel "password" (dict "id" "redis-sentinel" "env" (include "webhook-gateway.sentinelPasswordEnv" .)) }}
{{- end }}
{{- $_ := set $redis "topology" "sentinel" }}
{{- $_ := set $redis "sentinel" $sentinel }}
{{- else }}
{{- if not (or $r.url $r.urlSecretRef.name) }}
{{- fail "gateway.dedupe.kind is redis: set gateway.dedupe.redis.url (or urlSecretRef, or sentinel.hosts)" }}
{{- end }}
{{- $_ := set $redis "topology" "standalone" }}
{{- $_ := set $redis "url" (dict "id" "redis-url" "env" (include "webhook-gateway.redisUrlEnv" .)) }}
{{- end }}
{{- if $r.username }}
{{- $_ := set $redis "username" $r.username }}
{{- end }}
{{- if $r.passwordSecretRef.name }}
{{- $_ := set $redis "password" (dict "id" "redis" "env" (include "webhook-gateway.redisPasswordEnv" .)) }}
{{- end }}
{{- if or $r.tls.enabled $r.tls.caFile }}
{{- $tls := dict "enabled" true }}
{{- if $r.tls.caFile }}
{{- $_ := set $tls "ca" (dict "id" "redis-ca" "file" $r.tls.caFile) }}
{{- end }}
{{- $_ := set $redis "tls" $tls }}
{{- end }}
{{- $_ := set $out "redis" $redis }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* The env entries (YAML list) that bring secretRef-backed secrets into the container. Fails
when two secrets would share a variable name. */}}
{{- define "webhook-gateway.secretEnv" -}}
{{- $seen := dict }}
{{- range $name, $src := .Values.sources }}
{{- range $secret := ($src.secrets | default list) }}
{{- if $secret.secretRef }}
{{- $env := include "webhook-gateway.secretEnvName" (list $name $secret.id) }}
{{- if hasKey $seen $env }}
{{- fail (printf "sources.%s: secret %q maps to environment variable %s, which another secret already uses; rename the source or the secret id" $name (toString $secret.id) $env) }}
{{- end }}
{{- $_ := set $seen $env true }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret.secretRef.name | quote }}
      key: {{ $secret.secretRef.key | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.kafka.sasl }}
{{- if .mechanism }}
{{- if not (and .passwordSecretRef.name .passwordSecretRef.key) }}
{{- fail "kafka.sasl.mechanism is set: set kafka.sasl.passwordSecretRef.name and .key" }}
{{- end }}
- name: {{ include "webhook-gateway.kafkaPasswordEnv" $ }}
  valueFrom:
    secretKeyRef:
      name: {{ .passwordSecretRef.name | quote }}
      key: {{ .passwordSecretRef.key | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "webhook-gateway.apiKeyEnvName" -}}
{{- printf "RECONCILE_API_KEY_%s" (regexReplaceAll "[^A-Z0-9]" (upper .) "_") }}
{{- end }}
{{- define "webhook-gateway.adminTokenEnv" -}}RECONCILE_ADMIN_TOKEN{{- end }}

{{/* The env entries of reconciliation: the providers' API keys and the admin endpoint's
token, from existing Secrets. Both Deployments get them: they read one config file, and
check-config resolves every reference in it. Empty unless reconciler.enabled. */}}
{{- define "webhook-gateway.reconcileEnv" -}}
{{- if .Values.reconciler.enabled }}
{{- range $name, $src := .Values.sources }}
{{- with $src.reconcile }}
- name: {{ include "webhook-gateway.apiKeyEnvName" $name }}
  valueFrom:
    secretKeyRef:
      name: {{ .apiKeySecretRef.name | quote }}
      key: {{ .apiKeySecretRef.key | quote }}
{{- end }}
{{- end }}
{{- with .Values.reconciler.adminTokenSecretRef }}
{{- if .name }}
- name: {{ include "webhook-gateway.adminTokenEnv" $ }}
  valueFrom:
    secretKeyRef:
      name: {{ .name | quote }}
      key: {{ required "reconciler.adminTokenSecretRef.key" .key | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The gateway's configuration file (see gateway/settings.py), as YAML. */}}
{{- define "webhook-gateway.config" -}}
{{- $v := .Values }}
{{- if not $v.sources }}
{{- fail "sources: configure at least one webhook source (see the example in the chart's values.yaml)" }}
{{- end }}
{{- $reserved := list "reconcile" "provider" "secrets" "public_keys" "tolerance_seconds" "topic" "allowed_ips" "public_url" "allow_unauthenticated" }}
{{- $sources := dict }}
{{- range $name, $src := $v.sources }}
{{- $out := dict "provider" $src.provider }}
{{- $secrets := list }}
{{- range $secret := ($src.secrets | default list) }}
{{- if $secret.secretRef }}
{{- $secrets = append $secrets (dict "id" (toString $secret.id) "env" (include "webhook-gateway.secretEnvName" (list $name $secret.id))) }}
{{- else }}
{{- $secrets = append $secrets (dict "id" (toString $secret.id) "file" $secret.file) }}
{{- end }}
{{- end }}
{{- if $secrets }}
{{- $_ := set $out "secrets" $secrets }}
{{- end }}
{{- $keys := list }}
{{- range $key := ($src.publicKeys | default list) }}
{{- $keys = append $keys (dict "id" (toString $key.id) "value" $key.value) }}
{{- end }}
{{- if $keys }}
{{- $_ := set $out "public_keys" $keys }}
{{- end }}
{{- if hasKey $src "toleranceSeconds" }}
{{- $_ := set $out "tolerance_seconds" $src.toleranceSeconds }}
{{- end }}
{{- if $src.topic }}
{{- $_ := set $out "topic" $src.topic }}
{{- end }}
{{- if $src.allowedIps }}
{{- $_ := set $out "allowed_ips" $src.allowedIps }}
{{- end }}
{{- if $src.publicUrl }}
{{- $_ := set $out "public_url" $src.publicUrl }}
{{- end }}
{{- if $src.allowUnauthenticated }}
{{- $_ := set $out "allow_unauthenticated" true }}
{{- end }}
{{- with $src.reconcile }}
{{- $poll := dict "api_key" (dict "id" (printf "%s-api-key" $name) "env" (include "webhook-gateway.apiKeyEnvName" $name)) }}
{{- if .baseUrl }}
{{- $_ := set $poll "base_url" .baseUrl }}
{{- end }}
{{- $_ := set $out "reconcile" $poll }}
{{- end }}
{{- range $option, $value := ($src.options | default dict) }}
{{- if has $option $reserved }}
{{- fail (printf "sources.%s.options.%s: set it as a source key, not an option" $name $option) }}
{{- end }}
{{- $_ := set $out $option $value }}
{{- end }}
{{- $_ := set $sources $name $out }}
{{- end }}
{{- $k := $v.kafka }}
{{- $kafka := dict
  "bootstrap_servers" $k.bootstrapServers
  "topic" $k.topic
  "webhook_topic" $k.webhookTopic
  "dead_letter_topic" $k.deadLetterTopic
  "client_id" $k.clientId
  "compression_type" $k.compressionType
  "linger_ms" $k.lingerMs
  "max_request_size" $k.maxRequestSize
  "request_timeout_ms" $k.requestTimeoutMs
  "create_topics" $k.createTopics
  "partitions" $k.partitions
  "replication_factor" $k.replicationFactor
  "security_protocol" $k.securityProtocol }}
{{- if $k.sasl.mechanism }}
{{- $_ := set $kafka "sasl_mechanism" $k.sasl.mechanism }}
{{- $_ := set $kafka "sasl_username" $k.sasl.username }}
{{- $_ := set $kafka "sasl_password" (dict "id" "kafka" "env" (include "webhook-gateway.kafkaPasswordEnv" .)) }}
{{- end }}
{{- $l := $v.gateway.limits }}
{{- $config := dict
  "mode" "production"
  "listen" (dict "host" "0.0.0.0" "port" (int (include "webhook-gateway.httpPort" .)) "trusted_proxies" ($v.gateway.trustedProxies | default list))
  "admin" (dict "host" "0.0.0.0" "port" (int (include "webhook-gateway.adminPort" .)))
  "limits" (dict
    "max_body_bytes" $l.maxBodyBytes
    "max_in_flight" $l.maxInFlight
    "max_connections" $l.maxConnections
    "header_timeout_seconds" $l.headerTimeoutSeconds
    "body_timeout_seconds" $l.bodyTimeoutSeconds
    "publish_timeout_seconds" $l.publishTimeoutSeconds
    "retry_after_seconds" $l.retryAfterSeconds
    "drain_delay_seconds" $l.drainDelaySeconds
    "shutdown_grace_seconds" $l.shutdownGraceSeconds
    "failure_budget_burst" $l.failureBudgetBurst
    "failure_budget_per_second" $l.failureBudgetPerSecond
    "failure_budget_max_clients" $l.failureBudgetMaxClients)
  "dedupe" (include "webhook-gateway.dedupe" . | fromYaml)
  "sink" (dict
    "kind" "kafka"
    "local" (dict "directory" (printf "%s/events" (include "webhook-gateway.dataDir" .)))
    "kafka" $kafka)
  "logging" (dict "level" $v.gateway.logging.level "format" "json")
  "sources" $sources }}
{{- if $v.reconciler.enabled }}
{{- if ne $v.gateway.dedupe.kind "redis" }}
{{- fail "reconciler.enabled needs gateway.dedupe.kind redis (the expectations and the terminal slot per job live there)" }}
{{- end }}
{{- $reconcile := dict "enabled" true "expectations_topic" $v.reconciler.expectationsTopic "metrics_port" (int $v.reconciler.metricsPort) }}
{{- if $v.reconciler.adminTokenSecretRef.name }}
{{- $_ := set $reconcile "admin_token" (dict "id" "reconcile-admin" "env" (include "webhook-gateway.adminTokenEnv" .)) }}
{{- end }}
{{- $_ := set $config "reconcile" $reconcile }}
{{- end }}
{{- toYaml $config }}
{{- end }}
