//! Maps the `rancher` section of `environment.yaml` onto [`DesiredRancher`].

use std::collections::BTreeMap;

use crate::spec::{Member, Quantity, RancherSpec};

use super::desired::{DesiredMember, DesiredProject, DesiredRancher, Subject};
use super::error::RancherError;

fn quantities(m: &BTreeMap<String, Quantity>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()
}

fn member(environment: &str, m: &Member) -> Result<DesiredMember, RancherError> {
    let set: Vec<Subject> = [
        m.user_principal_id.clone().map(Subject::UserPrincipalId),
        m.group_principal_id.clone().map(Subject::GroupPrincipalId),
        m.user_id.clone().map(Subject::UserId),
        m.group_id.clone().map(Subject::GroupId),
    ]
    .into_iter()
    .flatten()
    .collect();
    let [subject] = <[Subject; 1]>::try_from(set).map_err(|_| RancherError::InvalidDesired {
        environment: environment.to_string(),
        message: format!(
            "rancher.members: the member with role {} needs exactly one of userPrincipalId, groupPrincipalId, userId and groupId",
            m.role
        ),
    })?;
    Ok(DesiredMember {
        subject,
        role: m.role.clone(),
    })
}

impl DesiredRancher {
    /// Builds the desired Rancher state of `environment`, whose namespace is `namespace`.
    pub fn from_spec(
        environment: &str,
        namespace: &str,
        spec: &RancherSpec,
    ) -> Result<Self, RancherError> {
        let members = spec
            .members
            .iter()
            .map(|m| member(environment, m))
            .collect::<Result<Vec<_>, _>>()?;
        let desired = DesiredRancher {
            environment: environment.to_string(),
            cluster_id: spec.cluster_id.clone(),
            project: DesiredProject {
                name: spec.project.clone(),
                description: spec.description.clone(),
                resource_quota: quantities(&spec.resource_quota),
                namespace_default_quota: quantities(&spec.namespace_default_quota),
                container_default_limits: quantities(&spec.container_default_limits),
            },
            namespace: namespace.to_string(),
            members,
        };
        desired.validate()?;
        Ok(desired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_maps_onto_the_desired_state() {
        let spec: RancherSpec = serde_json::from_value(serde_json::json!({
            "clusterId": "c-m-abc12",
            "project": "shop-prod",
            "description": "Shop production",
            "resourceQuota": {"limitsCpu": "40", "limitsMemory": "80Gi", "pods": "200"},
            "namespaceDefaultQuota": {"limitsCpu": "8", "limitsMemory": "16Gi", "pods": 50},
            "containerDefaultLimits": {"limitsCpu": "500m", "limitsMemory": "512Mi",
                                        "requestsCpu": "100m", "requestsMemory": "128Mi"},
            "members": [
                {"groupPrincipalId": "github_team://1234", "role": "project-member"},
                {"userPrincipalId": "local://u-abc12", "role": "read-only"}
            ]
        }))
        .unwrap();
        let d = DesiredRancher::from_spec("prod", "shop-prod", &spec).unwrap();
        assert_eq!(d.project.name, "shop-prod");
        assert_eq!(d.project.resource_quota["limitsMemory"], "80Gi");
        assert_eq!(d.project.namespace_default_quota["pods"], "50");
        assert_eq!(
            d.members[0].subject,
            Subject::GroupPrincipalId("github_team://1234".into())
        );
        assert_eq!(d.members[1].role, "read-only");

        let mut bad = spec.clone();
        bad.members[0].user_principal_id = Some("local://u-x".into());
        let err = DesiredRancher::from_spec("prod", "shop-prod", &bad).unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");

        let mut ids = spec.clone();
        ids.members[0].group_principal_id = None;
        ids.members[0].group_id = Some("g-team1".into());
        ids.members[1].user_principal_id = None;
        ids.members[1].user_id = Some("u-abc12".into());
        let d = DesiredRancher::from_spec("prod", "shop-prod", &ids).unwrap();
        assert_eq!(d.members[0].subject, Subject::GroupId("g-team1".into()));
        assert_eq!(d.members[1].subject, Subject::UserId("u-abc12".into()));
    }
}
