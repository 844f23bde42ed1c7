"""Expands a SAM template into the CloudFormation that `sam deploy` would submit, offline.

cfn-lint does not look inside AWS::Serverless::* resources, so the functions' roles,
event sources, API routes and permissions are only linted once SAM's transform has turned
them into plain CloudFormation. The transform runs here with samtranslator (the library
CloudFormation's own transform is built from), with placeholder values for the parameters
that have no default, and without IAM: the template names no managed policy.

usage: python infra/expand.py TEMPLATE > EXPANDED.json
"""

import json
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform

# Values for the parameters a deployment must give (samconfig.toml gives them per stage).
PLACEHOLDERS = {
    "JwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_example",
    "JwtAudience": "example-client",
}


class NoManagedPolicies:
    """The template attaches no managed policy; asking IAM for their ARNs is never needed."""

    def load(self):
        return {}


def packaged(template):
    """What `sam package` does to local code: uploads it and names the S3 object instead."""
    for name, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(
            properties.get("CodeUri"), str
        ):
            properties["CodeUri"] = f"s3://orchestrator-artifacts/{name}.zip"
    return template


def main(path):
    with open(path, encoding="utf-8") as f:
        template = packaged(yaml_parse(f.read()))
    try:
        expanded = transform(template, PLACEHOLDERS, NoManagedPolicies())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"{path}: {cause.message}", file=sys.stderr)
        return 1
    json.dump(expanded, sys.stdout, indent=2, default=str)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
