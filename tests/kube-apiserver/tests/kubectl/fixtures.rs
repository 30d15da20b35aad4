//! Real-looking manifests: what a team would keep for one app in one environment.

pub const NAMESPACE: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    keelson.dev/environment: dev
";

pub const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels:
    app: web
    app.kubernetes.io/managed-by: keelson
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: registry.example.com/shop/web:1.4.2
        ports:
        - name: http
          containerPort: 8080
        env:
        - name: JAVA_OPTS
          value: -Xmx307m
        resources:
          requests:
            cpu: 250m
            memory: 512Mi
          limits:
            cpu: '1'
            memory: 512Mi
        readinessProbe:
          httpGet:
            path: /healthz
            port: http
";

pub const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels:
    app: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: http
";

pub const INGRESS: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
spec:
  ingressClassName: nginx
  rules:
  - host: shop.dev.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
";

pub const PDB: &str = "apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
  namespace: shop
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app: web
";

pub const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: web-settings
  namespace: shop
  labels:
    app: web
data:
  LOG_LEVEL: info
  REGION: eu-west
";

/// File name and content; the namespace sorts first so `kubectl apply -f dir` creates it first.
pub const MANIFESTS: &[(&str, &str)] = &[
    ("00-namespace.yaml", NAMESPACE),
    ("10-configmap.yaml", CONFIGMAP),
    ("20-deployment.yaml", DEPLOYMENT),
    ("30-service.yaml", SERVICE),
    ("40-ingress.yaml", INGRESS),
    ("50-pdb.yaml", PDB),
];

pub const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: Widget
    listKind: WidgetList
    plural: widgets
    singular: widget
    shortNames: [wdg]
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
";

pub const WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata:
  name: blue
  namespace: shop
spec:
  size: 3
";
