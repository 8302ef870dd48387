{{/* vim: set filetype=mustache: */}}

{{/* Chart name (nameOverride). */}}
{{- define "sealed-secrets.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified name of the Deployment, Service and ServiceAccount: fullnameOverride, else the
release name when it contains the chart name, else "<release>-<chart name>" (63 characters at most).
*/}}
{{- define "sealed-secrets.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The controller's namespace (where its keys and Lease live). */}}
{{- define "sealed-secrets.namespace" -}}
{{- default .Release.Namespace .Values.namespace -}}
{{- end -}}

{{/* Chart label value. */}}
{{- define "sealed-secrets.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels selecting the controller pods. */}}
{{- define "sealed-secrets.matchLabels" -}}
app.kubernetes.io/name: {{ include "sealed-secrets.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "sealed-secrets.labels" -}}
{{ include "sealed-secrets.matchLabels" . }}
helm.sh/chart: {{ include "sealed-secrets.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sealed-secrets
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata.annotations of every object (commonAnnotations and .extra), indented for metadata, or nothing. */}}
{{- define "sealed-secrets.annotations" -}}
{{- $annotations := merge (dict) (default (dict) .extra) (default (dict) .context.Values.commonAnnotations) -}}
{{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
{{- end -}}
{{- end -}}

{{/* RBAC object labels. */}}
{{- define "sealed-secrets.rbacLabels" -}}
{{ include "sealed-secrets.labels" . }}
{{- with .Values.rbac.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The ServiceAccount the controller runs as. */}}
{{- define "sealed-secrets.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sealed-secrets.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The controller image reference. */}}
{{- define "sealed-secrets.image" -}}
{{- $tag := default .Chart.AppVersion (toString .Values.image.tag) -}}
{{- if .Values.image.registry -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* "true" when a value is set: not null and not "" (0 and false count as set). */}}
{{- define "sealed-secrets.isSet" -}}
{{- if and (not (kindIs "invalid" .)) (ne (toString .) "") -}}true{{- end -}}
{{- end -}}

{{/* "true" when leader election is on: replicaCount > 1 or leaderElection.enabled. */}}
{{- define "sealed-secrets.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/* The Lease name. */}}
{{- define "sealed-secrets.leaseName" -}}
{{- default (include "sealed-secrets.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* A string map as "k=v,k2=v2" (sorted keys), for --privatekey-annotations/-labels. */}}
{{- define "sealed-secrets.mapToString" -}}
{{- $pairs := list -}}
{{- range $key := keys . | sortAlpha -}}
{{- $pairs = append $pairs (printf "%s=%s" $key (toString (get $ $key))) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* The Kubernetes version rendered for (kubeVersion value, else the capabilities'). */}}
{{- define "sealed-secrets.kubeVersion" -}}
{{- default .Capabilities.KubeVersion.Version .Values.kubeVersion -}}
{{- end -}}

{{/* "true" when a PodSecurityPolicy can be rendered. */}}
{{- define "sealed-secrets.psp" -}}
{{- if and .Values.rbac.create .Values.rbac.pspEnabled (semverCompare "<1.25-0" (include "sealed-secrets.kubeVersion" .)) -}}true{{- end -}}
{{- end -}}

{{/* The namespaces that get a namespaced Role: the controller's own and additionalNamespaces. */}}
{{- define "sealed-secrets.roleNamespaces" -}}
{{- $namespaces := list (include "sealed-secrets.namespace" .) -}}
{{- range .Values.additionalNamespaces -}}
{{- $namespaces = append $namespaces . -}}
{{- end -}}
{{- toJson (uniq $namespaces) -}}
{{- end -}}

{{/* The rules the controller needs on SealedSecrets, Secrets and Events (§7.1 of the spec). */}}
{{- define "sealed-secrets.unsealerRules" -}}
- apiGroups:
    - bitnami.com
  resources:
    - sealedsecrets
  verbs:
    - get
    - list
    - watch
- apiGroups:
    - bitnami.com
  resources:
    - sealedsecrets/status
  verbs:
    - update
- apiGroups:
    - ""
  resources:
    - secrets
  verbs:
    - get
    - list
    - create
    - update
    - delete
    - watch
- apiGroups:
    - ""
  resources:
    - events
  verbs:
    - create
    - patch
{{- end -}}

{{/* Renders a value that may contain templates. */}}
{{- define "sealed-secrets.tplvalues" -}}
{{- if typeIs "string" .value -}}
{{- tpl .value .context -}}
{{- else -}}
{{- tpl (toYaml .value) .context -}}
{{- end -}}
{{- end -}}
