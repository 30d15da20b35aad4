//! The stored form over real HTTP: what a GET returns after a client wrote something else
//! (canonical quantities, dropped empty collections, `null` lists, serialisation artefacts,
//! `metadata.generation` only where the kind has one). Each row of REAL-SERVER.md "Stored form".

use kube_apiserver::TestServer;
use serde_json::{Value, json};

use super::http::{apply, get, post};
use super::namespace;

fn applied(srv: &TestServer, path: &str, manifest: &str) -> Value {
    let r = apply(srv.url(), &format!("{path}?fieldManager=keelson"), manifest);
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    get(srv.url(), path).json()
}

fn rv(obj: &Value) -> &str {
    obj["metadata"]["resourceVersion"].as_str().unwrap()
}

const WEB: &str = "/apis/apps/v1/namespaces/shop/deployments/web";
const DEPLOY: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: web:1
        args: []
        env:
        - {name: EMPTY, value: ""}
        - {name: SET, value: "x"}
        resources:
          requests: {cpu: 0.5, memory: 1024Mi}
          limits: {cpu: 1000m, memory: 2048Mi}
        volumeMounts:
        - {name: scratch, mountPath: /tmp, readOnly: false}
      volumes:
      - name: scratch
        emptyDir: {}
"#;

#[test]
fn quantities_are_stored_in_canonical_form_and_a_reapply_is_a_no_op() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let d = applied(&srv, WEB, DEPLOY);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}})
    );
    // The same configuration again changes nothing: no new resourceVersion.
    let again = applied(&srv, WEB, DEPLOY);
    assert_eq!(rv(&again), rv(&d));

    let pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests: {storage: 0.5Gi}\n";
    let p = applied(
        &srv,
        "/api/v1/namespaces/shop/persistentvolumeclaims/data",
        pvc,
    );
    assert_eq!(p["spec"]["resources"]["requests"]["storage"], "512Mi");

    let lr = "apiVersion: v1\nkind: LimitRange\nmetadata: {name: lr}\nspec:\n  limits:\n  - type: Container\n    default: {cpu: 0.25, memory: 1000M}\n    max: {cpu: 2000m}\n";
    let l = applied(&srv, "/api/v1/namespaces/shop/limitranges/lr", lr);
    assert_eq!(
        l["spec"]["limits"][0]["default"],
        json!({"cpu": "250m", "memory": "1G"})
    );
    assert_eq!(l["spec"]["limits"][0]["max"], json!({"cpu": "2"}));

    let rq = "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: rq}\nspec:\n  hard: {requests.cpu: 1000m, requests.memory: 2048Mi, pods: 10}\n";
    let q = applied(&srv, "/api/v1/namespaces/shop/resourcequotas/rq", rq);
    assert_eq!(
        q["spec"]["hard"],
        json!({"requests.cpu": "1", "requests.memory": "2Gi", "pods": "10"})
    );

    let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 3\n  metrics:\n  - type: Resource\n    resource:\n      name: memory\n      target: {type: AverageValue, averageValue: 0.5Gi}\n";
    let h = applied(
        &srv,
        "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web",
        hpa,
    );
    assert_eq!(
        h["spec"]["metrics"][0]["resource"]["target"]["averageValue"],
        "512Mi"
    );
}

#[test]
fn empty_collections_unset_scalars_nulls_and_go_artefacts() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let d = applied(&srv, WEB, DEPLOY);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert!(c.get("args").is_none(), "args: [] is omitempty: {c}");
    assert_eq!(
        c["env"][0],
        json!({"name": "EMPTY"}),
        "value: \"\" is dropped"
    );
    assert_eq!(c["env"][1], json!({"name": "SET", "value": "x"}));
    assert_eq!(
        c["volumeMounts"][0],
        json!({"name": "scratch", "mountPath": "/tmp"})
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["volumes"][0]["emptyDir"],
        json!({}),
        "a pointer to an empty struct is kept"
    );
    assert_eq!(
        d["spec"]["template"]["metadata"],
        json!({"labels": {"app": "web"}, "creationTimestamp": null})
    );
    assert_eq!(d["metadata"]["generation"], 1);

    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "empty", "annotations": {}, "labels": {}, "finalizers": []}, "data": {}});
    let r = post(srv.url(), "/api/v1/namespaces/shop/configmaps", &cm);
    assert_eq!(r.status, 201, "{}", r.text());
    let stored = get(srv.url(), "/api/v1/namespaces/shop/configmaps/empty").json();
    for k in ["annotations", "labels", "finalizers", "generation"] {
        assert!(stored["metadata"].get(k).is_none(), "{k}: {stored}");
    }
    assert!(stored.get("data").is_none(), "{stored}");

    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n";
    let s = applied(&srv, "/api/v1/namespaces/shop/services/web", svc);
    assert_eq!(s["status"], json!({"loadBalancer": {}}));
    assert!(s["metadata"].get("generation").is_none(), "{s}");

    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: nothing}\nrules: []\n";
    let r = applied(
        &srv,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/nothing",
        role,
    );
    assert_eq!(r.as_object().unwrap().get("rules"), Some(&Value::Null));

    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec:\n      containers: [{name: db, image: pg:16}]\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources: {requests: {storage: 1Gi}}\n";
    let st = applied(&srv, "/apis/apps/v1/namespaces/shop/statefulsets/db", sts);
    let vct = &st["spec"]["volumeClaimTemplates"][0];
    assert_eq!(vct["metadata"]["creationTimestamp"], Value::Null);
    assert!(
        vct["metadata"]
            .as_object()
            .unwrap()
            .contains_key("creationTimestamp")
    );
    assert_eq!(
        st["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({})
    );
}

#[test]
fn a_list_whose_last_owned_item_is_removed_disappears() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let d = applied(&srv, WEB, DEPLOY);
    assert!(d["spec"]["template"]["spec"]["containers"][0]["env"].is_array());
    let without_env = DEPLOY
        .replace("        - {name: EMPTY, value: \"\"}\n", "")
        .replace("        - {name: SET, value: \"x\"}\n", "")
        .replace("        env:\n", "");
    let d = applied(&srv, WEB, &without_env);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert!(c.get("env").is_none(), "no env key is left: {c}");
}

#[test]
fn generation_follows_the_kind() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let d = applied(&srv, WEB, DEPLOY);
    assert_eq!(d["metadata"]["generation"], 1);
    // A Deployment's annotations are copied to its ReplicaSets: changing them bumps generation.
    let annotated = DEPLOY.replace("  name: web\n", "  name: web\n  annotations: {team: a}\n");
    let d = applied(&srv, WEB, &annotated);
    assert_eq!(d["metadata"]["generation"], 2);
    // A label does not.
    let labelled = annotated.replace("  name: web\n", "  name: web\n  labels: {tier: x}\n");
    let d = applied(&srv, WEB, &labelled);
    assert_eq!(d["metadata"]["generation"], 2);

    for (path, manifest) in [
        (
            "/api/v1/namespaces/shop/secrets/s",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n",
        ),
        (
            "/api/v1/namespaces/shop/serviceaccounts/sa",
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\n",
        ),
        (
            "/api/v1/namespaces/shop/endpoints/e",
            "apiVersion: v1\nkind: Endpoints\nmetadata: {name: e}\n",
        ),
    ] {
        let o = applied(&srv, path, manifest);
        assert!(o["metadata"].get("generation").is_none(), "{o}");
    }
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: j, image: busybox:1}]\n";
    let j = applied(&srv, "/apis/batch/v1/namespaces/shop/jobs/j", job);
    assert_eq!(j["metadata"]["generation"], 1);
}
