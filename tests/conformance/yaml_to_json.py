"""Prints a YAML file as JSON (PyYAML's safe loader), so tests can check a
generated docker compose file field by field.

Usage: python yaml_to_json.py FILE
"""

import json
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as f:
    print(json.dumps(yaml.safe_load(f)))
