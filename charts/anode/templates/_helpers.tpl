{{- define "anode.labels" -}}
app.kubernetes.io/name: anode-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: anode
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "anode.selectorLabels" -}}
app.kubernetes.io/name: anode-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "anode.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "anode.image" -}}
{{- printf "%s:%s" .Values.operator.image.repository (default .Chart.AppVersion .Values.operator.image.tag) -}}
{{- end -}}
