{{- define "stasis.labels" -}}
app.kubernetes.io/part-of: stasis
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
