//! Which subscriptions a notification goes to: the configuration's (every notice their
//! filters let through) and each team's from `teams.yaml` (its own requests and
//! resources, and the approvals it is asked for).

use std::sync::Arc;

use crate::bundle::task::SubscriptionRef;
use crate::catalog::subscription::{Subscription, Topic};
use crate::ports::CatalogStore;

use super::message::Notification;

pub struct Subscriptions {
    /// From the configuration (`notifications.subscriptions`).
    pub configured: Vec<Subscription>,
    /// The live catalog, whose `teams.yaml` holds the teams' subscriptions.
    pub catalog: Arc<dyn CatalogStore>,
}

impl Subscriptions {
    /// Whether any subscription wants `topic` (else a notice is not even queued).
    pub fn wants(&self, topic: Topic) -> bool {
        self.configured.iter().any(|s| s.wants(topic))
            || self
                .catalog
                .current()
                .catalog
                .teams
                .as_ref()
                .is_some_and(|t| {
                    t.doc
                        .spec
                        .teams
                        .values()
                        .any(|team| team.notifications.iter().any(|s| s.wants(topic)))
                })
    }

    /// The subscription `to` names, as it is now (`None` once it is gone).
    pub fn find(&self, to: &SubscriptionRef) -> Option<Subscription> {
        match &to.team {
            None => self.configured.iter().find(|s| s.name == to.name).cloned(),
            Some(team) => {
                let snapshot = self.catalog.current();
                let teams = snapshot.catalog.teams.as_ref()?;
                teams
                    .doc
                    .spec
                    .teams
                    .get(team)?
                    .notifications
                    .iter()
                    .find(|s| s.name == to.name)
                    .cloned()
            }
        }
    }

    /// Every subscription `notification` goes to.
    pub fn matching(&self, notification: &Notification) -> Vec<SubscriptionRef> {
        let topic = notification.topic;
        let (target, owner) = (notification.target(), notification.owner());
        let mut out: Vec<SubscriptionRef> = self
            .configured
            .iter()
            .filter(|s| s.wants(topic) && s.covers(target, owner))
            .map(|s| SubscriptionRef {
                team: None,
                name: s.name.clone(),
            })
            .collect();
        let snapshot = self.catalog.current();
        let Some(teams) = snapshot.catalog.teams.as_ref() else {
            return out;
        };
        let asked = notification.approver_teams();
        for (name, team) in &teams.doc.spec.teams {
            // A team hears about what it owns, and about the approvals it is asked for.
            let concerned = owner == Some(name.as_str())
                || (topic == Topic::ApprovalNeeded && asked.contains(&name.as_str()));
            if !concerned {
                continue;
            }
            for s in &team.notifications {
                if s.wants(topic) && s.covers(target, owner) {
                    out.push(SubscriptionRef {
                        team: Some(name.clone()),
                        name: s.name.clone(),
                    });
                }
            }
        }
        out
    }
}
