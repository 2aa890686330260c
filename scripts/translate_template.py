"""Translates template.yaml (AWS SAM) to plain CloudFormation JSON, offline.

Plain cfn-lint does not expand SAM resources, so a broken authorizer, event or API setting
passes it; the translation shows what CloudFormation would really receive. Local CodeUri,
ContentUri and DefinitionUri values (`.`) are replaced by a placeholder S3 URI first, as
`sam package` would replace them by the uploaded artifact's. No AWS call is made: the only
network-backed input of the translator, the managed-policy name map, is empty (the template
names no managed policy by name).

Usage: python scripts/translate_template.py [--template template.yaml] [--output out.json]
       [--parameter Name=Value ...]
"""

import argparse
import json
import logging
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PLACEHOLDER_S3_URI = "s3://placeholder-bucket/code.zip"
REGION = "us-east-1"
LOCAL_URI_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}
GLOBALS_SECTIONS = {"Function": "CodeUri", "Api": "DefinitionUri", "HttpApi": "DefinitionUri"}


def is_local(uri):
    return isinstance(uri, str) and not uri.startswith("s3://")


def with_placeholder_uris(template):
    """Replaces every local artifact path by PLACEHOLDER_S3_URI, in resources and Globals."""
    for resource in template.get("Resources", {}).values():
        prop = LOCAL_URI_PROPERTIES.get(resource.get("Type"))
        props = resource.get("Properties") or {}
        if prop and is_local(props.get(prop)):
            props[prop] = PLACEHOLDER_S3_URI
    for section, prop in GLOBALS_SECTIONS.items():
        settings = template.get("Globals", {}).get(section, {})
        if is_local(settings.get(prop)):
            settings[prop] = PLACEHOLDER_S3_URI
    return template


def translate(template, parameter_values=None):
    # The translator builds ARNs from the session's region; pin it so nothing looks further.
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ.setdefault("AWS_REGION", REGION)
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # Without a feature-toggle config (served by AWS) every toggle is off, and the translator
    # warns once per lookup; off is the answer wanted offline.
    logging.getLogger("samtranslator.feature_toggle").setLevel(logging.ERROR)
    # The translator records usage metrics for AWS's own publisher and warns, when they are
    # garbage-collected, that nobody published them; offline there is nothing to publish to.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    params = dict(parameter_values or {})
    session = boto3.session.Session(region_name=REGION)
    translator = Translator(None, Parser(), boto_session=session)
    try:
        return translator.translate(
            with_placeholder_uris(template),
            parameter_values=params,
            passthrough_metadata=True,
            get_managed_policy_map=lambda: {},
        )
    except InvalidDocumentException as err:
        causes = "\n".join(f"  - {cause.message}" for cause in err.causes)
        sys.exit(f"SAM translation failed:\n{causes}")


def load_template(path):
    from samcli.yamlhelper import yaml_parse

    return yaml_parse(pathlib.Path(path).read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--output", help="write the JSON here instead of standard output")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="a template parameter value (repeatable)")
    args = parser.parse_args()

    parameters = dict(p.split("=", 1) for p in args.parameter)
    translated = translate(load_template(args.template), parameters)
    text = json.dumps(translated, indent=2, sort_keys=False) + "\n"
    if args.output:
        pathlib.Path(args.output).write_text(text)
        print(f"translated {pathlib.Path(args.template).name} -> {args.output}")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
