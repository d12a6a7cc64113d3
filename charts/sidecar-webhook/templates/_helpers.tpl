{{/*
The app.kubernetes.io/name label: the chart's name.
*/}}
{{- define "sidecar-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of every object: the release name, with the chart's name appended
unless the release name contains it (`helm install sidecar-webhook ...`
names everything sidecar-webhook, as deploy/ does).
*/}}
{{- define "sidecar-webhook.fullname" -}}
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

{{/*
The webhook's namespace (see values.yaml: namespace).
*/}}
{{- define "sidecar-webhook.namespace" -}}
{{- default .Release.Namespace .Values.namespace.name }}
{{- end }}

{{/*
istiod's namespace, home of the mesh config.
*/}}
{{- define "sidecar-webhook.istioNamespace" -}}
{{- default "istio-system" .Values.istio.namespace }}
{{- end }}

{{/*
Labels of every object. The same two as deploy/; no Helm-specific labels, so
that the chart and the kustomize manifests stay comparable object by object
(Helm itself records ownership in its meta.helm.sh annotations).
*/}}
{{- define "sidecar-webhook.labels" -}}
app.kubernetes.io/name: {{ include "sidecar-webhook.name" . }}
app.kubernetes.io/part-of: sidecar-webhook
{{- end }}

{{/*
Labels that select the webhook's pods.
*/}}
{{- define "sidecar-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sidecar-webhook.name" . }}
{{- end }}

{{/*
The container image: repository@digest, else repository:tag.
*/}}
{{- define "sidecar-webhook.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The Secret cert-manager writes the serving certificate to, mounted by the
Deployment.
*/}}
{{- define "sidecar-webhook.servingSecret" -}}
{{- printf "%s-serving-cert" (include "sidecar-webhook.fullname" .) }}
{{- end }}

{{/*
cert-manager.io/inject-ca-from of both webhook configurations.
*/}}
{{- define "sidecar-webhook.injectCAFrom" -}}
{{- printf "%s/%s-serving" (include "sidecar-webhook.namespace" .) (include "sidecar-webhook.fullname" .) }}
{{- end }}

{{/*
The namespaceSelector expression every webhook entry starts with: not the
webhook's own namespace, not excludedNamespaces.
*/}}
{{- define "sidecar-webhook.excludeNamespaces" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values: {{ prepend .Values.excludedNamespaces (include "sidecar-webhook.namespace" .) | uniq | toJson }}
{{- end }}

{{/*
clientConfig of a webhook entry; call with (list $ "/path").
*/}}
{{- define "sidecar-webhook.clientConfig" -}}
{{- $root := index . 0 -}}
clientConfig:
  service:
    name: {{ include "sidecar-webhook.fullname" $root }}
    namespace: {{ include "sidecar-webhook.namespace" $root }}
    path: {{ index . 1 }}
    port: 443
{{- end }}

{{/*
What the six pod annotation entries share; call with (list $ "entry-name").
*/}}
{{- define "sidecar-webhook.podEntry" -}}
{{- $root := index . 0 -}}
- name: {{ index . 1 }}
  admissionReviewVersions: ["v1"]
  {{- include "sidecar-webhook.clientConfig" (list $root "/mutate/pods") | nindent 2 }}
  rules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      resources: ["pods"]
      operations: ["CREATE"]
      scope: Namespaced
  matchPolicy: Equivalent
  failurePolicy: {{ $root.Values.podWebhook.failurePolicy }}
  sideEffects: None
  timeoutSeconds: {{ $root.Values.podWebhook.timeoutSeconds }}
  reinvocationPolicy: IfNeeded
{{- end }}
