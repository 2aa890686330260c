"""Creates the DynamoDB table defined in template.yaml on a local endpoint (moto).

The template is the single definition: key schema, attributes, indexes and TTL are read from
its AWS::DynamoDB::Table resource, so local and deployed tables cannot drift apart.

Usage: python scripts/create_table.py --endpoint http://127.0.0.1:8000 --table users
"""

import argparse
import pathlib
import sys

import boto3
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


class _TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as plain values."""


def _any_tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_TemplateLoader.add_multi_constructor("!", _any_tag)


def table_definition(template_path, logical_id=None):
    template = yaml.load(pathlib.Path(template_path).read_text(), Loader=_TemplateLoader)
    tables = {name: res for name, res in template["Resources"].items()
              if res.get("Type") == "AWS::DynamoDB::Table"}
    if logical_id:
        return tables[logical_id]["Properties"]
    if len(tables) != 1:
        sys.exit(f"expected one AWS::DynamoDB::Table in {template_path}, found {sorted(tables)}")
    return next(iter(tables.values()))["Properties"]


def create_table_args(props, table_name):
    args = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if key in props:
            args[key] = props[key]
    return args


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()

    props = table_definition(args.template)
    client = boto3.client("dynamodb", endpoint_url=args.endpoint, region_name=args.region,
                          aws_access_key_id="local", aws_secret_access_key="local")
    if args.table in client.list_tables()["TableNames"]:
        print(f"table {args.table} already exists")
        return
    client.create_table(**create_table_args(props, args.table))
    client.get_waiter("table_exists").wait(TableName=args.table)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(TableName=args.table, TimeToLiveSpecification={
            "AttributeName": ttl["AttributeName"], "Enabled": True})
    print(f"created table {args.table} from {pathlib.Path(args.template).name}")


if __name__ == "__main__":
    main()
