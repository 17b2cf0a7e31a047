{{/*
Labels of every object: deploy/'s app.kubernetes.io/name, plus Helm's own (tests/it/chart.rs,
DIFFERENCES). The component label (controller, sync) is added where deploy/ has it.
*/}}
{{- define "gitops-seal.labels" -}}
app.kubernetes.io/name: gitops-seal
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The pods' selector: deploy/'s, unchanged (a Deployment's selector is immutable). */}}
{{- define "gitops-seal.selectorLabels" -}}
app.kubernetes.io/name: gitops-seal
app.kubernetes.io/component: controller
{{- end }}

{{- define "gitops-seal.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Where the sync loop's repository credentials are mounted (sync.git.existingSecret). */}}
{{- define "gitops-seal.gitCredentialsDir" -}}
/etc/gitops-seal/git
{{- end }}
