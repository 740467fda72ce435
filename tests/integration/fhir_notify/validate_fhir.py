#!/usr/bin/python3
"""Validates FHIR R4 JSON documents against HL7's fhir.schema.json (JSON Schema draft-06).

    validate_fhir.py SCHEMA FILE...

Each FILE holds one FHIR resource. Prints one line per invalid file (its path, then the first
errors with their JSON paths) and exits 1 when any is invalid, 2 on a usage or schema problem, 0
when all are valid. Uses Debian's python3-jsonschema (scripts/install-deps.sh); the schema comes
from tests/data/fhir-r4/ (vendored; scripts/fetch-fhir-schema.sh refreshes it). Written for carehub-fhir-notify's tests: the check is the
standard's schema, not one of ours.
"""
import gzip
import json
import sys

try:
    import jsonschema
except ImportError:
    print("validate_fhir: python3-jsonschema is missing (scripts/install-deps.sh)", file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        # The vendored copy is gzipped (tests/data/fhir-r4/).
        opener = gzip.open if argv[1].endswith(".gz") else open
        with opener(argv[1], "rt") as f:
            schema = json.load(f)
    except (OSError, ValueError) as e:
        print(f"validate_fhir: cannot read the schema {argv[1]}: {e}", file=sys.stderr)
        return 2
    if schema.get("id") != "http://hl7.org/fhir/json-schema/4.0":
        print("validate_fhir: the schema is not FHIR R4's (id http://hl7.org/fhir/json-schema/4.0)",
              file=sys.stderr)
        return 2
    types = set(schema["discriminator"]["mapping"])
    # The schema puts every nested resource (Bundle.entry.resource, contained, Parameters
    # resources) under ResourceList, a oneOf over all 146 resource definitions. Each definition
    # fixes resourceType with "const" and requires it, so exactly one can match: an object is valid
    # under ResourceList if and only if it has a known resourceType and is valid under that type's
    # definition. Checking it that way gives the same verdict as the oneOf (and readable errors)
    # without trying 146 schemas per resource, which took minutes per notification. Below,
    # ResourceList admits only an object with a known resourceType, and every such nested object
    # is then validated against its own type's definition with the same rule, recursively.
    definitions = dict(schema["definitions"])
    definitions["ResourceList"] = {"type": "object", "required": ["resourceType"],
                                   "properties": {"resourceType": {"enum": sorted(types)}}}
    validators = {}

    def validator_for(rtype):
        if rtype not in validators:
            validators[rtype] = jsonschema.Draft6Validator(
                {"$schema": schema["$schema"], "definitions": definitions,
                 "$ref": f"#/definitions/{rtype}"})
        return validators[rtype]

    def resources(node, where, top):
        """Yields (json path, resource) for the document and every resource nested in it."""
        if isinstance(node, dict):
            if "resourceType" in node:
                yield where, node
            for k, v in node.items():
                if k != "resourceType":
                    yield from resources(v, f"{where}/{k}", False)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from resources(v, f"{where}/{i}", False)

    bad = 0
    for path in argv[2:]:
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{path}: not JSON: {e}")
            bad += 1
            continue
        problems = []
        if not isinstance(doc, dict):
            problems.append("not a JSON object")
        else:
            for where, res in resources(doc, "", True):
                rtype = res.get("resourceType")
                if rtype not in types:
                    problems.append(f"{where or '/'}: resourceType {rtype!r} is not a FHIR R4 resource")
                    continue
                for e in validator_for(rtype).iter_errors(res):
                    m = e
                    while m.context:  # descend into oneOf contexts to the error nearest the cause
                        m = jsonschema.exceptions.best_match(m.context)
                    problems.append(f"{where}/{'/'.join(str(p) for p in m.absolute_path)}: "
                                    f"{m.message[:200]}")
        if problems:
            bad += 1
            print(f"{path}: {len(problems)} error(s): {'; '.join(problems[:5])}")
    print(f"validate_fhir: {len(argv) - 2 - bad} valid, {bad} invalid")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
