//! The AWS regions an action may name. An action's region is checked at catalog
//! validation, so a typo (`eu-west-11`, `us-east1`) is an error with its file, line and
//! pointer, not an endpoint that cannot be resolved at run time. A region given as a
//! template is checked when it is rendered, by AWS.
//!
//! The list is AWS's public regions (commercial, GovCloud, China, the European
//! Sovereign Cloud) as of late 2026; a region AWS opens later is added here.

use super::finding::{Finding, did_you_mean};
use super::load::Catalog;

pub const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eusc-de-east-1",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// Every action's region (not a template) is one AWS has.
pub fn check(catalog: &Catalog, findings: &mut Vec<Finding>) {
    for item in &catalog.items {
        let Some(automated) = &item.doc.spec.fulfillment.automated else {
            continue;
        };
        for (list, actions) in automated.lists() {
            for (i, action) in actions.iter().enumerate() {
                let Some((pointer, region)) = action.config.region() else {
                    continue;
                };
                if region.contains("{{") || REGIONS.contains(&region) {
                    continue;
                }
                findings.push(item.error(
                    format!("/spec/fulfillment/automated/{list}/{i}/with{pointer}"),
                    format!(
                        "`{region}` is not an AWS region{}",
                        did_you_mean(region, REGIONS.iter().copied())
                    ),
                ));
            }
        }
    }
}
