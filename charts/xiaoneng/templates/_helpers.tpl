{{- define "xiaoneng.labels" -}}
app.kubernetes.io/part-of: xiaoneng
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/name: {{ .name }}
{{- end -}}

{{- define "xiaoneng.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/name: {{ .name }}
{{- end -}}

{{/* One component: Deployment, Service, optional PDB. Called with dict root name c. */}}
{{- define "xiaoneng.component" -}}
{{- $d := .root.Values.default -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  labels: {{- include "xiaoneng.labels" . | nindent 4 }}
spec:
  replicas: {{ .c.replicas | default $d.replicas }}
  selector:
    matchLabels: {{- include "xiaoneng.selector" . | nindent 6 }}
  template:
    metadata:
      labels: {{- include "xiaoneng.labels" . | nindent 8 }}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        fsGroup: 10001
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ .name }}
          image: "{{ $d.image.repository }}/xiaoneng-{{ .name }}:{{ $d.image.tag | default .root.Chart.AppVersion }}"
          imagePullPolicy: {{ $d.image.pullPolicy }}
          ports:
            - { name: grpc, containerPort: {{ .c.port }} }
            - { name: metrics, containerPort: {{ add .c.port 1000 }} }
          env:
            - { name: XIAONENG__SERVICE__GRPC_ADDR, value: "0.0.0.0:{{ .c.port }}" }
            - { name: XIAONENG__SERVICE__METRICS_ADDR, value: "0.0.0.0:{{ add .c.port 1000 }}" }
            - { name: XIAONENG__TELEMETRY__OTLP_ENDPOINT, value: {{ .root.Values.otlp.endpoint | quote }} }
            - { name: XIAONENG_ENV, value: production }
            - name: XIAONENG__AUTH__JWT_SECRET
              valueFrom:
                secretKeyRef: { name: {{ .root.Values.jwt.existingSecret }}, key: jwt-secret }
            {{- range $k, $v := $d.env }}
            - { name: {{ $k }}, value: {{ $v | quote }} }
            {{- end }}
            {{- range $k, $v := (.c.env | default dict) }}
            - { name: {{ $k }}, value: {{ $v | quote }} }
            {{- end }}
          readinessProbe:
            grpc: { port: {{ .c.port }} }
            periodSeconds: 5
          livenessProbe:
            grpc: { port: {{ .c.port }} }
            initialDelaySeconds: 10
            periodSeconds: 10
          resources: {{- toYaml (.c.resources | default $d.resources) | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: { drop: [ALL] }
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  labels: {{- include "xiaoneng.labels" . | nindent 4 }}
spec:
  selector: {{- include "xiaoneng.selector" . | nindent 4 }}
  ports:
    - { name: grpc, port: {{ .c.port }}, targetPort: grpc, appProtocol: grpc }
    - { name: metrics, port: {{ add .c.port 1000 }}, targetPort: metrics }
{{- if $d.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  labels: {{- include "xiaoneng.labels" . | nindent 4 }}
spec:
  minAvailable: {{ $d.pdb.minAvailable }}
  selector:
    matchLabels: {{- include "xiaoneng.selector" . | nindent 6 }}
{{- end }}
{{- end -}}
