#!/usr/bin/env python3
"""Writes one copy of template.yaml per combination of the parameters that change resources,
each with those parameters' defaults set, so that cfn-lint and `sam validate --lint` check every
combination a deployment can have, not only the defaults. Prints the files written.

Usage: template_variants.py TEMPLATE OUT_DIR
"""
import itertools
import pathlib
import re
import sys

# Parameter -> the value other than its default, which flips its condition (on for all but
# TokenTable, which is on by default). RequiredScope and Auth0Issuer change resources only with
# the JWT authorizer: combined with it alone. ResponseMode=streaming swaps the HTTP API for a REST
# API: combined with each INDEPENDENT combination, never with the authorizer (the template's rule
# refuses that pair), so it adds 16 variants to the 80 of buffered mode, not another 80.
INDEPENDENT = {
    "AllowedOrigins": "https://app.example.com",
    "ReservedConcurrency": "10",
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:proxy-alarms",
    "TokenTable": "Disabled",
}
AUTHORIZER = ("JwtAuthorizer", "Enabled")
WITH_AUTHORIZER = {
    "RequiredScope": "proxy:call",
    "Auth0Issuer": "https://login.example.com/",
}
STREAMING = ("ResponseMode", "streaming")


def with_default(text, parameter, value):
    """`text` with the Default of `parameter` (in Parameters) set to `value`."""
    block = re.search(rf"(?m)^  {parameter}:\n(?:    .*\n)+", text)
    if block is None:
        sys.exit(f"template_variants: no parameter {parameter}")
    body, count = re.subn(
        r"(?m)^    Default: .*$", f'    Default: "{value}"', block.group(0)
    )
    if count != 1:
        sys.exit(f"template_variants: {parameter} has no Default")
    return text[: block.start()] + body + text[block.end():]


def combinations():
    names = list(INDEPENDENT)
    for on in itertools.product([False, True], repeat=len(names)):
        base = {n: INDEPENDENT[n] for n, o in zip(names, on) if o}
        yield dict(base)
        extra = list(WITH_AUTHORIZER)
        for edge in itertools.product([False, True], repeat=len(extra)):
            variant = dict(base)
            variant[AUTHORIZER[0]] = AUTHORIZER[1]
            variant.update({n: WITH_AUTHORIZER[n] for n, o in zip(extra, edge) if o})
            yield variant
        yield {**base, STREAMING[0]: STREAMING[1]}


def main():
    template, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    text = template.read_text()
    out.mkdir(parents=True, exist_ok=True)
    for number, variant in enumerate(combinations()):
        variant_text = text
        for parameter, value in variant.items():
            variant_text = with_default(variant_text, parameter, value)
        path = out / f"variant-{number:02}.yaml"
        path.write_text(variant_text)
        print(path)


if __name__ == "__main__":
    main()
