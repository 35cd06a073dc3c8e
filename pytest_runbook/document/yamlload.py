"""YAML for directives and frontmatter, loaded only when a file has some.

PyYAML costs a runbook run about as much as bash's start-up; most runbooks have neither
frontmatter nor a ``<!-- runbook: -->`` directive, so ``attributes`` and ``frontmatter``
import this module at their first YAML text.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from typing import Any

import yaml

from .attributes import YamlNull

YAMLError = yaml.YAMLError

# libyaml's safe loader when present: same results, several times faster.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# The same loader with every plain scalar left as its text ("1.10", "yes", "010"): only
# null (``EMPTY:``, ``~``) and merge keys (``<<: *base``) are still resolved. Runme's Go
# YAML decodes such values into strings as written, and so do we where a string is meant.
_KEEP_TAGS = ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")
TEXT_LOADER: Any = type(
    "TextLoader",
    (SAFE_LOADER,),
    {
        "yaml_implicit_resolvers": {
            first: [r for r in resolvers if r[0] in _KEEP_TAGS]
            for first, resolvers in SAFE_LOADER.yaml_implicit_resolvers.items()
        }
    },
)
TEXT_LOADER.add_constructor(_KEEP_TAGS[0], lambda loader, node: YamlNull(node.value))


def load(text: str) -> Any:
    """YAML with its usual types (``30`` an int, ``true`` a bool); raises ``YAMLError``."""
    return yaml.load(text, Loader=SAFE_LOADER)


def load_as_written(text: str) -> Any:
    """The same YAML with every scalar but null as its text (see ``TEXT_LOADER``)."""
    return yaml.load(text, Loader=TEXT_LOADER)
