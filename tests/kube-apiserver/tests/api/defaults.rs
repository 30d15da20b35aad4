//! Defaults the real server fills in (REAL-SERVER.md "Defaults filled in by the server"), also
//! inside lists, and who owns them: defaults belong to Update managers that wrote the object, not
//! to an applier; what the Service registry allocates belongs to nobody.

use kube_apiserver::TestServer;
use serde_json::{Value, json};

use super::http::{apply, get, post};
use super::namespace;

fn applied(srv: &TestServer, path: &str, manifest: &str) -> Value {
    let r = apply(srv.url(), &format!("{path}?fieldManager=keelson"), manifest);
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    get(srv.url(), path).json()
}

fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == manager)
        .unwrap_or_else(|| panic!("no entry for {manager}: {obj}"))
}

#[test]
fn pod_template_defaults_inside_containers_probes_env_and_volumes() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let d = applied(
        &srv,
        "/apis/apps/v1/namespaces/shop/deployments/web",
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers:
      - name: web
        image: web:1.2
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {port: 8080}
        env:
        - name: POD
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: MEM
          valueFrom: {resourceFieldRef: {resource: limits.memory}}
      - name: tools
        image: tools@sha256:0123
      - name: latest
        image: registry:5000/team/tool
      volumes:
      - name: conf
        configMap: {name: web}
      - name: token
        secret: {secretName: web}
      - name: scratch
"#,
    );
    let spec = &d["spec"]["template"]["spec"];
    let c = &spec["containers"][0];
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(spec["containers"][1]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(spec["containers"][2]["imagePullPolicy"], "Always");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(
        c["readinessProbe"],
        json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
            "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(c["env"][1]["valueFrom"]["resourceFieldRef"]["divisor"], "0");
    assert_eq!(spec["volumes"][0]["configMap"]["defaultMode"], 420);
    assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 420);
    assert_eq!(
        spec["volumes"][2],
        json!({"name": "scratch", "emptyDir": {}})
    );
    assert_eq!(spec["serviceAccount"], "web");
    for (k, v) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
    ] {
        assert_eq!(spec[k], v, "{k}");
    }
    // The applier owns what it sent, not the defaults.
    let mine = &entry(&d, "keelson")["fieldsV1"]["f:spec"]["f:template"]["f:spec"];
    assert!(mine.get("f:dnsPolicy").is_none(), "{mine}");
    let web = &mine["f:containers"]["k:{\"name\":\"web\"}"];
    assert!(web.get("f:imagePullPolicy").is_none(), "{web}");
    assert!(web["f:image"].is_object(), "{web}");
}

#[test]
fn workload_defaults_statefulset_daemonset_job_cronjob() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let pod = "    metadata: {labels: {app: a}}\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: a:1}]\n";
    let sts = applied(
        &srv,
        "/apis/apps/v1/namespaces/shop/statefulsets/db",
        &format!(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: db}}\nspec:\n  serviceName: db\n  selector: {{matchLabels: {{app: a}}}}\n  template:\n{}  volumeClaimTemplates:\n  - metadata: {{name: data}}\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources: {{requests: {{storage: 1Gi}}}}\n",
            pod.replace("restartPolicy: Never", "restartPolicy: Always")
        ),
    );
    let s = &sts["spec"];
    assert_eq!(s["replicas"], 1);
    assert_eq!(s["podManagementPolicy"], "OrderedReady");
    assert_eq!(s["revisionHistoryLimit"], 10);
    assert_eq!(
        s["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        s["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    let vct = &s["volumeClaimTemplates"][0];
    assert_eq!(vct["apiVersion"], "v1");
    assert_eq!(vct["kind"], "PersistentVolumeClaim");
    assert_eq!(vct["spec"]["volumeMode"], "Filesystem");
    assert_eq!(vct["status"], json!({"phase": "Pending"}));

    let ds = applied(
        &srv,
        "/apis/apps/v1/namespaces/shop/daemonsets/agent",
        &format!(
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: agent}}\nspec:\n  selector: {{matchLabels: {{app: a}}}}\n  template:\n{}",
            pod.replace("restartPolicy: Never", "restartPolicy: Always")
        ),
    );
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);

    let job = applied(
        &srv,
        "/apis/batch/v1/namespaces/shop/jobs/migrate",
        &format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: migrate}}\nspec:\n  template:\n{pod}"
        ),
    );
    let uid = job["metadata"]["uid"].as_str().unwrap();
    let j = &job["spec"];
    assert_eq!(
        (&j["completions"], &j["parallelism"], &j["backoffLimit"]),
        (&json!(1), &json!(1), &json!(6))
    );
    assert_eq!(j["completionMode"], "NonIndexed");
    assert_eq!(j["suspend"], false);
    assert_eq!(j["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(
        j["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    let labels = &j["template"]["metadata"]["labels"];
    assert_eq!(labels["batch.kubernetes.io/job-name"], "migrate");
    assert_eq!(labels["controller-uid"], uid);
    assert_eq!(labels["app"], "a");
    assert_eq!(job["metadata"]["labels"], json!({"app": "a"}));
    // The generated selector is the registry's: no manager owns it.
    assert!(
        entry(&job, "keelson")["fieldsV1"]["f:spec"]
            .get("f:selector")
            .is_none()
    );

    let cj = applied(
        &srv,
        "/apis/batch/v1/namespaces/shop/cronjobs/nightly",
        &format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: nightly}}\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n{}",
            pod.replace("\n    ", "\n        ")
                .replacen("    metadata", "        metadata", 1)
        ),
    );
    let c = &cj["spec"];
    assert_eq!(c["concurrencyPolicy"], "Allow");
    assert_eq!(c["suspend"], false);
    assert_eq!(c["successfulJobsHistoryLimit"], 3);
    assert_eq!(c["failedJobsHistoryLimit"], 1);
    let tpl = &c["jobTemplate"]["spec"]["template"];
    assert_eq!(tpl["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(tpl["metadata"]["creationTimestamp"], Value::Null);
    assert_eq!(
        c["jobTemplate"]["metadata"],
        json!({"creationTimestamp": null})
    );
}

#[test]
fn services_of_every_type_and_allocated_fields_owned_by_no_manager() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let base = "/api/v1/namespaces/shop/services";
    let cluster = applied(
        &srv,
        &format!("{base}/web"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: http}]\n",
    );
    let s = &cluster["spec"];
    assert_eq!(s["type"], "ClusterIP");
    assert_eq!(s["sessionAffinity"], "None");
    assert_eq!(s["internalTrafficPolicy"], "Cluster");
    assert!(s.get("externalTrafficPolicy").is_none(), "{s}");
    assert_eq!(s["ipFamilies"], json!(["IPv4"]));
    assert_eq!(s["ipFamilyPolicy"], "SingleStack");
    assert_eq!(s["clusterIPs"], json!([s["clusterIP"].clone()]));
    assert_eq!(
        s["ports"][0],
        json!({"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"})
    );
    let mine = &entry(&cluster, "keelson")["fieldsV1"]["f:spec"];
    for f in [
        "f:clusterIP",
        "f:clusterIPs",
        "f:ipFamilies",
        "f:ipFamilyPolicy",
        "f:type",
    ] {
        assert!(mine.get(f).is_none(), "{f} owned by the applier: {mine}");
    }
    assert_eq!(
        cluster["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let lb = applied(
        &srv,
        &format!("{base}/edge"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: edge}\nspec:\n  type: LoadBalancer\n  selector: {app: web}\n  ports: [{port: 443}]\n",
    );
    let s = &lb["spec"];
    assert_eq!(s["externalTrafficPolicy"], "Cluster");
    assert_eq!(s["allocateLoadBalancerNodePorts"], true);
    assert_eq!(s["ports"][0]["targetPort"], 443);
    let np = s["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&np));
    // Re-applying keeps the allocated node port and IP: nothing changes.
    let again = applied(
        &srv,
        &format!("{base}/edge"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: edge}\nspec:\n  type: LoadBalancer\n  selector: {app: web}\n  ports: [{port: 443}]\n",
    );
    assert_eq!(
        again["metadata"]["resourceVersion"],
        lb["metadata"]["resourceVersion"]
    );

    let ext = applied(
        &srv,
        &format!("{base}/db"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec:\n  type: ExternalName\n  externalName: db.example.com\n",
    );
    for f in ["clusterIP", "ipFamilies", "internalTrafficPolicy"] {
        assert!(ext["spec"].get(f).is_none(), "{f}: {}", ext["spec"]);
    }

    let sticky = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "sticky"},
        "spec": {"type": "NodePort", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}});
    let r = post(srv.url(), base, &sticky);
    assert_eq!(r.status, 201, "{}", r.text());
    let s = r.json();
    assert_eq!(
        s["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
    // A create by an Update manager owns the defaults it was given, never the allocations.
    let owner = &entry(&s, "api-test")["fieldsV1"]["f:spec"];
    assert!(owner["f:externalTrafficPolicy"].is_object(), "{owner}");
    assert!(owner.get("f:clusterIP").is_none(), "{owner}");
    assert!(
        owner["f:ports"]["k:{\"port\":80,\"protocol\":\"TCP\"}"]
            .get("f:nodePort")
            .is_none(),
        "{owner}"
    );
}

#[test]
fn defaults_of_networking_storage_autoscaling_and_core_kinds() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let np = applied(
        &srv,
        "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/web",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 8080}]\n  egress:\n  - ports: [{port: 53, protocol: UDP}]\n",
    );
    assert_eq!(np["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");
    assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "UDP");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(np["metadata"]["generation"], 1);

    let pvc = applied(
        &srv,
        "/api/v1/namespaces/shop/persistentvolumeclaims/data",
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  storageClassName: \"\"\n  resources: {requests: {storage: 1Gi}}\n",
    );
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["spec"]["storageClassName"], "", "a pointer keeps \"\"");
    assert_eq!(pvc["status"], json!({"phase": "Pending"}));

    let ep = applied(
        &srv,
        "/api/v1/namespaces/shop/endpoints/legacy",
        "apiVersion: v1\nkind: Endpoints\nmetadata: {name: legacy}\nsubsets:\n- addresses: [{ip: 10.0.0.1}]\n  ports: [{port: 5432}]\n",
    );
    assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");

    let hpa = applied(
        &srv,
        "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web",
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 5\n  behavior:\n    scaleDown: {stabilizationWindowSeconds: 60}\n",
    );
    let h = &hpa["spec"];
    assert_eq!(h["minReplicas"], 1);
    assert_eq!(
        h["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_eq!(
        h["behavior"]["scaleDown"],
        json!({"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]})
    );
    assert_eq!(h["behavior"]["scaleUp"]["policies"][0]["value"], 4);
    assert!(hpa["metadata"].get("generation").is_none());

    let secret = applied(
        &srv,
        "/api/v1/namespaces/shop/secrets/s",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: \"\"\ndata: {a: Yg==}\n",
    );
    assert_eq!(secret["type"], "Opaque");

    let lr = applied(
        &srv,
        "/api/v1/namespaces/shop/limitranges/lr",
        "apiVersion: v1\nkind: LimitRange\nmetadata: {name: lr}\nspec:\n  limits:\n  - type: Container\n    max: {cpu: 2}\n    min: {memory: 64Mi}\n",
    );
    assert_eq!(lr["spec"]["limits"][0]["default"], json!({"cpu": "2"}));
    assert_eq!(
        lr["spec"]["limits"][0]["defaultRequest"],
        json!({"cpu": "2", "memory": "64Mi"})
    );
}

#[test]
fn custom_resources_get_their_structural_schema_defaults() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "caches.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "caches", "kind": "Cache"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "size": {"type": "string", "default": "small"},
                    "tier": {"type": "string", "nullable": true, "default": "x"},
                    "nodes": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "port": {"type": "integer", "default": 6379}}}}}}}}}}]}});
    let r = post(
        srv.url(),
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let c = r.json();
    assert_eq!(c["spec"]["names"]["singular"], "cache");
    assert_eq!(c["spec"]["names"]["listKind"], "CacheList");
    assert_eq!(c["spec"]["conversion"], json!({"strategy": "None"}));
    let cache = applied(
        &srv,
        "/apis/example.com/v1/namespaces/shop/caches/c",
        "apiVersion: example.com/v1\nkind: Cache\nmetadata: {name: c}\nspec:\n  nodes: [{name: a}, {name: b, port: 7000}]\n",
    );
    assert_eq!(
        cache["spec"],
        json!({"size": "small", "tier": "x", "nodes": [{"name": "a", "port": 6379}, {"name": "b", "port": 7000}]})
    );
}
