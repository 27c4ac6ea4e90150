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
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
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

{{/* Settings from Secrets as files, never as environment variables: a map of setting
(env name) → {secret, key} becomes one projected volume whose files are named as the settings,
read by the services from XIAONENG_SECRETS_DIR. */}}
{{- define "xiaoneng.secretVolume" -}}
- name: secrets
  projected:
    defaultMode: 0400
    sources:
    {{- range $k, $v := . }}
      - secret:
          name: {{ $v.secret }}
          items: [{ key: {{ $v.key }}, path: {{ $k }} }]
    {{- end }}
{{- end -}}

{{- define "xiaoneng.secretMount" -}}
- { name: secrets, mountPath: /var/run/secrets/xiaoneng, readOnly: true }
{{- end -}}
