{{- define "xiaoneng.labels" -}}
app.kubernetes.io/part-of: xiaoneng
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "xiaoneng.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/name: {{ .name }}
{{- end -}}

{{- define "xiaoneng.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The pod security settings every container of the chart runs with. */}}
{{- define "xiaoneng.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities: { drop: [ALL] }
seccompProfile: { type: RuntimeDefault }
{{- end -}}

{{- define "xiaoneng.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile: { type: RuntimeDefault }
{{- end -}}

{{/* env entries from Secrets: a map of env name → {secret, key}. */}}
{{- define "xiaoneng.secretEnv" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  valueFrom:
    secretKeyRef: { name: {{ $v.secret }}, key: {{ $v.key }} }
{{- end }}
{{- end -}}
