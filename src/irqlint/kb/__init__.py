"""The knowledge base: API semantics as data files, schema-validated, loaded once.

Each ``*.json`` file beside this module is one topic; its stem is its key.  A project config
may add entries (``[kb.<topic>]`` tables), merged before validation, so user knowledge is
checked by the same schema as ours.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from functools import cached_property
from importlib import resources
from typing import Any

import jsonschema

from ..errors import InputError

PROFILES = ("linux", "xen")
# per-profile knowledge that only the program phase reads (see KnowledgeBase.extract_digest)
PROGRAM_ONLY = {
    "contexts": ("roles", "callbacks", "entry_points"),
    "waits": ("roles", "key_args", "generic_fields"),
    "sleep": ("functions", "gfp", "sleeping_kinds", "atomic_kinds", "conditional_params",
              "never_sleep", "boot_functions", "irqs_off_ok"),
    "lifecycle": ("managed", "managed_pattern", "managed_not", "teardown_fields"),
    "unpublish": ("sentinels",),
    "sharing": ("init_function_pattern", "init_fields", "protecting_kinds", "min_share",
                "min_protected", "min_functions", "max_fanin", "max_up", "max_paths",
                "barriers"),
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        elif isinstance(value, list) and isinstance(base.get(key), list):
            base[key] = base[key] + [v for v in value if v not in base[key]]
        else:
            base[key] = value


def tree_layouts(extra: dict[str, Any] | None = None) -> dict[str, list[dict[str, list[str]]]]:
    """trees.json (and a config's [kb.trees] additions), read before a profile is chosen: the
    profile is detected from the tree's layout.  KnowledgeBase.load validates it."""
    data = {"trees": json.loads(resources.files(__package__).joinpath("trees.json")
                                .read_text(encoding="utf-8"))}
    if extra and isinstance(extra.get("trees"), dict):
        _merge(data, copy.deepcopy({"trees": extra["trees"]}))
    schema = json.loads(resources.files(__package__).joinpath("schema.json")
                        .read_text(encoding="utf-8"))
    try:
        jsonschema.validate(data["trees"], {"$defs": schema["$defs"],
                                            **schema["properties"]["trees"]})
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise InputError(f"knowledge base entry trees/{where}: {exc.message}") from None
    return {k: v for k, v in data["trees"].items() if k in PROFILES and isinstance(v, list)}


class KnowledgeBase:
    """All API knowledge for one profile; hashable by identity, picklable."""

    def __init__(self, data: dict[str, Any], profile: str) -> None:
        if profile not in PROFILES:
            raise InputError(f"unknown profile '{profile}' (expected one of {', '.join(PROFILES)})")
        self.data = data
        self.profile = profile
        canon = json.dumps([profile, data], sort_keys=True, separators=(",", ":"))
        self.digest = hashlib.sha256(canon.encode()).hexdigest()[:16]
        # the per-file cache depends only on what extraction reads: knowledge the program
        # phase alone uses (contexts, waits' roles, what sleeps, lifecycles) can change
        # without invalidating every file's facts
        front = copy.deepcopy(data)
        for table in front.values():  # prose changes nothing
            if isinstance(table, dict):
                table.pop("_doc", None)
        front.pop("trees", None)  # which files are analysed, not what is read from them
        for topic, keys in PROGRAM_ONLY.items():
            for prof in front.get(topic, {}).values():
                if isinstance(prof, dict):
                    for k in keys:
                        prof.pop(k, None)
        canon = json.dumps([profile, front], sort_keys=True, separators=(",", ":"))
        self.extract_digest = hashlib.sha256(canon.encode()).hexdigest()[:16]

    @classmethod
    def load(cls, profile: str = "linux", extra: dict[str, Any] | None = None) -> KnowledgeBase:
        pkg = resources.files(__package__)
        data: dict[str, Any] = {}
        for entry in sorted(pkg.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".json") and entry.name != "schema.json":
                data[entry.name[:-5]] = json.loads(entry.read_text(encoding="utf-8"))
        if extra:
            _merge(data, copy.deepcopy(extra))
        schema = json.loads(pkg.joinpath("schema.json").read_text(encoding="utf-8"))
        try:
            jsonschema.validate(data, schema)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
            raise InputError(f"knowledge base entry {where}: {exc.message}") from None
        return cls(data, profile)

    # --- views, computed once per process -------------------------------------------------
    @property
    def normalize(self) -> dict[str, Any]:
        return self.data["normalize"]  # type: ignore[no-any-return]

    @cached_property
    def lock_apis(self) -> dict[str, dict[str, Any]]:
        """Lock API name -> semantics, for this profile."""
        table = self.data[f"locks_{self.profile}"]["locks"]
        # every entry is an API, `__rtnl_unlock` and `_raw_spin_lock` included: only a note
        # (a string, such as "_doc") is not
        return {k: v for k, v in table.items() if isinstance(v, dict)}

    @cached_property
    def guard_classes(self) -> dict[str, dict[str, Any]]:
        lk = self.data[f"locks_{self.profile}"]["guards"] or self.data["locks_linux"]["guards"]
        return dict(lk)

    @cached_property
    def lock_function_re(self) -> re.Pattern[str]:
        return re.compile(self.data["functions"]["lock_function_pattern"])

    @cached_property
    def _name_lists(self) -> dict[str, frozenset[str]]:
        return {k: frozenset(v) for k, v in self.data["functions"].items() if isinstance(v, list)}

    def names(self, key: str) -> frozenset[str]:
        """A name list of functions.json (noreturn, condition_wrappers, config_tests, ...)."""
        return self._name_lists[key]

    @cached_property
    def lock_droppers(self) -> dict[str, frozenset[str]]:
        """Function -> the lock classes a call to it may drop (and perhaps retake)."""
        return {k: frozenset(v) for k, v in self.data["functions"].get("lock_droppers", {}).items()}

    @cached_property
    def state_function_re(self) -> re.Pattern[str]:
        return re.compile(self.data["functions"]["state_function_pattern"])

    @cached_property
    def registrations(self) -> dict[str, list[dict[str, Any]]]:
        return dict(self.data["functions"]["registrations"].get(self.profile, {}))

    @cached_property
    def irqs_off_re(self) -> re.Pattern[bytes]:
        return re.compile(self.section("contexts")["irqs_off_assertions"].encode())

    @cached_property
    def irqs_off_words(self) -> tuple[bytes, ...]:
        return tuple(w.encode() for w in self.section("contexts")["irqs_off_words"])

    def section(self, topic: str) -> dict[str, Any]:
        """This profile's part of a per-profile topic (sleep, waits, contexts)."""
        return self.data[topic][self.profile]  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[Any, ...]:
        return (KnowledgeBase, (self.data, self.profile))
