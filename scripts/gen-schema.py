import json
D="https://json-schema.org/draft/2020-12/schema"
def obj(props, required=(), desc=None, **kw):
    o={"type":"object","additionalProperties":False,"properties":props}
    if required: o["required"]=list(required)
    if desc: o["description"]=desc
    o.update(kw); return o
def s(desc=None, **kw):
    o={"type":"string"}; o.update(kw)
    if desc: o["description"]=desc
    return o
def strmap(desc): return {"type":"object","additionalProperties":{"type":"string"},"description":desc}
dns={"type":"string","pattern":"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$","maxLength":63}
quantity={"description":"A Kubernetes quantity such as 500m, 2, 512Mi or 1Gi","anyOf":[
  {"type":"string","pattern":"^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"},
  {"type":"number","minimum":0}]}
intorstr={"anyOf":[{"type":"integer","minimum":0},{"type":"string","minLength":1}]}
percent_or_int={"anyOf":[{"type":"integer","minimum":0},{"type":"string","pattern":"^[0-9]+%$"}]}
api={"const":"keelson.dev/v1","description":"Always keelson.dev/v1"}
def kindc(k): return {"const":k,"description":f"Always {k}"}
metadata=obj({"name":{**dns,"description":"Name (DNS-1123 label)"},"labels":strmap("Labels of the spec itself")},["name"])
defs={"quantity":quantity,"intOrString":intorstr,"dnsLabel":dns}
Q={"$ref":"#/$defs/quantity"}
app=obj({
 "name":{"$ref":"#/$defs/dnsLabel","description":"App name, unique in the environment"},
 "image":s("Image repository without tag, e.g. registry.example.com/shop/orders", pattern="^[^:@\\s]+(:[0-9]+)?(/[^:@\\s]+)*$"),
 "runtime":{"enum":["jvm","node","go","python","generic"],"description":"Runtime; jvm derives -Xmx from the memory limit"},
 "replicas":{"type":"integer","minimum":0,"maximum":1000},
 "cpu":{**Q,"description":"CPU limit"},
 "memory":{**Q,"description":"Memory limit"},
 "ports":{"type":"array","items":obj({"name":{"type":"string","pattern":"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$","maxLength":15},"port":{"type":"integer","minimum":1,"maximum":65535},"protocol":{"enum":["TCP","UDP","SCTP"]}},["name","port"])},
 "health":obj({"path":s("HTTP path of the health check",pattern="^/"),"port":{"$ref":"#/$defs/intOrString"},"initialDelaySeconds":{"type":"integer","minimum":0}},["path"]),
 "env":{"type":"object","additionalProperties":{"type":"string"},"propertyNames":{"pattern":"^[A-Za-z_][A-Za-z0-9_]*$"},"description":"Environment variables"},
 "domain":s("Host name served by an Ingress",pattern="^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)+[a-z]{2,}$"),
 "nodeSelector":strmap("Extra node selector"),
 "labels":strmap("Extra pod labels"),
 "command":{"type":"array","items":{"type":"string"}},
 "args":{"type":"array","items":{"type":"string"}},
},["name"])
member={"type":"object","additionalProperties":False,"properties":{
  "userPrincipalId":s("e.g. local://u-abc12"),"groupPrincipalId":s("e.g. github_team://1234"),"role":s("Role template id, e.g. project-member or read-only")},
  "required":["role"],"oneOf":[{"required":["userPrincipalId"]},{"required":["groupPrincipalId"]}]}
qmap=lambda d:{"type":"object","description":d,"propertyNames":{"enum":["configMaps","limitsCpu","limitsMemory","persistentVolumeClaims","pods","replicationControllers","requestsCpu","requestsMemory","requestsStorage","secrets","services","servicesLoadBalancers","servicesNodePorts"]},"additionalProperties":Q}
rancher=obj({"clusterId":s("Rancher cluster id, e.g. c-m-abc12",pattern="^(c-[a-z0-9-]+|local)$"),"project":s("Project display name",minLength=1),"description":s(),
  "resourceQuota":qmap("Project resource quota"),"namespaceDefaultQuota":qmap("Default quota of each namespace in the project"),
  "containerDefaultLimits":{"type":"object","additionalProperties":False,"properties":{k:Q for k in ["limitsCpu","limitsMemory","requestsCpu","requestsMemory"]}},
  "members":{"type":"array","items":member}},["clusterId","project"])
env_schema={"$schema":D,"$id":"https://keelson.dev/schema/environment.schema.json","title":"Keelson Environment (user layer)",
 "$defs":defs,
 **obj({"apiVersion":api,"kind":kindc("Environment"),"metadata":metadata,"spec":obj({
  "cluster":s("Cluster name from the keelson config file",minLength=1),
  "namespace":{"$ref":"#/$defs/dnsLabel","description":"Namespace of the environment"},
  "policies":{"type":"array","items":s(),"description":"Policy names; default: every policy whose appliesTo matches"},
  "labels":strmap("Labels on every object"),"nodeSelector":strmap("Node selector for every pod (node pool)"),
  "rancher":rancher,
  "apps":{"type":"array","items":app},
  "prune":obj({"enabled":{"type":"boolean"},"maxDeletePercent":{"type":"integer","minimum":0,"maximum":100},"allowDeleteAll":{"type":"boolean"}}),
  "ignore":{"type":"array","items":obj({"kind":s(),"name":s(),"pointers":{"type":"array","minItems":1,"items":s(pattern="^(/[^/]*)+$")}},["pointers"])},
  "adopt":{"type":"boolean","description":"Take over existing unlabelled objects of the same name"},
  "backup":obj({"schedule":s("5-field cron",pattern="^\\S+( \\S+){4}$"),"retain":{"type":"integer","minimum":1}}),
 },["cluster","namespace"])},["apiVersion","kind","metadata","spec"])}
pipeline_app=obj({"image":s("Image repository override"),"tag":s("Image tag",pattern="^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"),
  "digest":s("Image digest",pattern="^sha256:[a-f0-9]{64}$"),"domain":s("Host name",pattern="^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)+[a-z]{2,}$"),"region":s("Region the app is pinned to")})
pipe_schema={"$schema":D,"$id":"https://keelson.dev/schema/pipeline.schema.json","title":"Keelson Pipeline (CI layer)",
 **obj({"apiVersion":api,"kind":kindc("Pipeline"),"metadata":obj({"environment":s()}),
 "spec":obj({"apps":{"type":"object","propertyNames":{"pattern":"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},"additionalProperties":pipeline_app}})},["apiVersion","kind","spec"])}
defaults=obj({
 "appDefaults":obj({"replicas":{"type":"integer","minimum":0},"cpu":Q,"memory":Q}),
 "rollout":obj({"maxSurge":percent_or_int,"maxUnavailable":percent_or_int},["maxSurge","maxUnavailable"]),
 "overcommit":obj({"cpu":{"type":"number","minimum":1},"memory":{"type":"number","minimum":1}},["cpu","memory"]),
 "revisionHistoryLimit":{"type":"integer","minimum":0},
 "dnsPolicy":{"enum":["ClusterFirst","ClusterFirstWithHostNet","Default","None"]},
 "dnsOptions":strmap("Resolver options, e.g. ndots: \"2\""),
 "jvmHeapRatio":{"type":"number","exclusiveMinimum":0,"maximum":0.9},
 "labels":strmap("Labels on every object"),"podAnnotations":strmap("Annotations on every pod"),
 "podDisruptionBudget":{**obj({"minAvailable":percent_or_int,"maxUnavailable":percent_or_int}),"minProperties":1,"maxProperties":1},
 "probes":obj({k:{"type":"integer","minimum":0} for k in ["periodSeconds","timeoutSeconds","failureThreshold","initialDelaySeconds"]}),
 "terminationGracePeriodSeconds":{"type":"integer","minimum":0},
 "ingressClass":s(),
})
rule=obj({"name":s(minLength=1),"expr":s("CEL expression over app and env that must be true",minLength=1),"message":s(minLength=1),
  "severity":{"enum":["error","warning"]},"scope":{"enum":["app","environment"]}},["name","expr","message"])
pol_schema={"$schema":D,"$id":"https://keelson.dev/schema/policy.schema.json","title":"Keelson Policy (platform layer)","$defs":defs,
 **obj({"apiVersion":api,"kind":kindc("Policy"),"metadata":metadata,"spec":obj({"appliesTo":{"type":"array","items":s("Environment name glob")},"defaults":defaults,"rules":{"type":"array","items":rule}})},["apiVersion","kind","metadata","spec"])}
for name,sch in [("environment",env_schema),("pipeline",pipe_schema),("policy",pol_schema)]:
    open(f"schema/{name}.schema.json","w").write(json.dumps(sch,indent=2)+"\n")
