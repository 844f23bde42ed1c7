//! Who may see and do what: admins (a group), team members (a team's id among the caller's
//! groups), and the one "may see" rule that requests and resources share.

use serde::{Deserialize, Serialize};

/// Who made a call: the token's subject, email and groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Principal {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Who is who: the group that makes a caller an admin; a caller belongs to a team when
/// its groups include the team's id.
#[derive(Debug, Clone)]
pub struct Roles {
    pub admin_group: String,
}

/// A listing the caller may not make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ListingForbidden(pub String);

impl Roles {
    pub fn is_admin(&self, who: &Principal) -> bool {
        who.groups.contains(&self.admin_group)
    }

    pub fn in_team(&self, who: &Principal, team: &str) -> bool {
        who.groups.iter().any(|g| g == team)
    }

    /// A record (a request, a resource) is visible to whoever asked for it (`requester`,
    /// a `sub`), to its owner team and to admins.
    pub fn may_see(&self, who: &Principal, requester: &str, owner: &str) -> bool {
        who.sub == requester || self.in_team(who, owner) || self.is_admin(who)
    }

    /// Limits a listing of `what` to what `who` may list: the caller's own by default, a
    /// team's (`owner`) for its members, anyone's for admins.
    pub fn limit_listing(
        &self,
        who: &Principal,
        owner: Option<&str>,
        requester: &mut Option<String>,
        what: &str,
    ) -> Result<(), ListingForbidden> {
        if self.is_admin(who) {
            return Ok(());
        }
        match (owner, requester.as_deref()) {
            (Some(team), _) if !self.in_team(who, team) => Err(ListingForbidden(format!(
                "only members of `{team}` may list its {what}"
            ))),
            (None, Some(sub)) if sub != who.sub => Err(ListingForbidden(format!(
                "you may list your own {what} only"
            ))),
            (None, None) => {
                *requester = Some(who.sub.clone());
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(sub: &str, groups: &[&str]) -> Principal {
        Principal {
            sub: sub.to_owned(),
            email: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    #[test]
    fn requesters_teams_and_admins_see_a_record_and_nobody_else_does() {
        let roles = Roles {
            admin_group: "admins".to_owned(),
        };
        assert!(roles.may_see(&who("ann", &[]), "ann", "data"));
        assert!(roles.may_see(&who("bob", &["data"]), "ann", "data"));
        assert!(roles.may_see(&who("cat", &["admins"]), "ann", "data"));
        assert!(!roles.may_see(&who("dan", &["web"]), "ann", "data"));
    }

    #[test]
    fn a_listing_defaults_to_the_callers_own() {
        let roles = Roles {
            admin_group: "admins".to_owned(),
        };
        let mut requester = None;
        roles
            .limit_listing(&who("ann", &[]), None, &mut requester, "requests")
            .unwrap();
        assert_eq!(requester.as_deref(), Some("ann"));
        let mut someone = Some("bob".to_owned());
        assert!(
            roles
                .limit_listing(&who("ann", &[]), None, &mut someone, "requests")
                .is_err()
        );
        assert!(
            roles
                .limit_listing(&who("ann", &[]), Some("data"), &mut None, "requests")
                .is_err()
        );
    }
}
