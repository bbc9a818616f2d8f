"""[cluster] and the page groups, as the rest of `monitor.cluster` reads them.

TEMPORARY until config.py's [cluster] support is merged: ClusterConfig is a
local copy of the one config.py will define, and `load_setup` reads [cluster]
and [[pages]].group from the TOML itself when config.py does not know them.
Once merged, `load_setup` is `load_config` plus `config.cluster` and
`page.group`, and the shim below goes.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor import config as config_module
from monitor.config import Config, load_config, parse_duration
from monitor.errors import ConfigError

DEFAULT_GROUP = "default"


@dataclass(frozen=True)
class ClusterConfig:
    """[cluster]; Config.cluster is None without it (local copy until config.py has it)."""

    database: str  # postgresql://...
    broker: str  # redis://...
    archive: Path
    task_timeout_s: float = 600.0


@dataclass(frozen=True)
class ClusterSetup:
    """A loaded config, its [cluster] (None without) and its page groups in config order."""

    config: Config
    cluster: ClusterConfig | None
    groups: dict[str, tuple[str, ...]]  # group -> page names

    def require_cluster(self, command: str) -> ClusterConfig:
        """The [cluster] table; ConfigError (exit 2) naming the file when there is none."""
        if self.cluster is None:
            raise ConfigError(
                f"{self.config.path}: cluster: `{command}` needs a [cluster] table "
                "(database, broker, archive); see docs/cluster.md"
            )
        return self.cluster


def load_setup(path: Path, *, data_dir: Path | None = None) -> ClusterSetup:
    """load_config's Config, with [cluster] and the page groups read alongside it."""
    if "cluster" in config_module.ALLOWED_KEYS[""]:  # config.py reads [cluster] itself
        config = load_config(path, data_dir=data_dir)
        cluster = getattr(config, "cluster", None)
        pairs = [(p.name, str(getattr(p, "group", DEFAULT_GROUP))) for p in config.pages]
        return ClusterSetup(config, cluster, _groups(pairs))
    with _accepting_cluster_keys():
        config = load_config(path, data_dir=data_dir)
    raw = tomllib.loads(config.path.read_text(encoding="utf-8-sig"))  # load_config read it
    cluster = _cluster(config, raw.get("cluster"))
    pairs = [
        (page.name, _group(config.path, index, item))
        for index, (page, item) in enumerate(zip(config.pages, raw["pages"], strict=True))
    ]
    return ClusterSetup(config, cluster, _groups(pairs))


def cluster_of(config: Config) -> ClusterConfig | None:
    """The config's [cluster] table, None without one (Config.cluster once config.py has it)."""
    if hasattr(config, "cluster"):
        found: ClusterConfig | None = getattr(config, "cluster")  # noqa: B009 (mypy: not yet)
        return found
    return _cluster(config, _raw(config).get("cluster"))


def page_groups(config: Config) -> dict[str, str]:
    """Each page's group ([[pages]].group, PageConfig.group once config.py has it)."""
    if all(hasattr(page, "group") for page in config.pages):
        return {page.name: str(getattr(page, "group")) for page in config.pages}  # noqa: B009 (mypy)
    raw_pages = _raw(config).get("pages")
    named = {
        item.get("name"): item for item in raw_pages or () if isinstance(item, dict)
    }  # the file load_config read: its pages, by name
    return {
        page.name: _group(config.path, index, named.get(page.name, {}))
        for index, page in enumerate(config.pages)
    }


def _raw(config: Config) -> dict[str, Any]:
    """The TOML of the file `config` was read from ({} if it cannot be read now)."""
    try:
        return tomllib.loads(config.path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _groups(pairs: list[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    groups: dict[str, list[str]] = {}
    for name, group in pairs:
        groups.setdefault(group, []).append(name)
    return {group: tuple(names) for group, names in groups.items()}


@contextlib.contextmanager
def _accepting_cluster_keys() -> Iterator[None]:
    """Let load_config pass over [cluster] and [[pages]].group (it ignores their values)."""
    allowed = config_module.ALLOWED_KEYS
    saved = dict(allowed)
    allowed[""] = (*allowed[""], "cluster")
    allowed["pages"] = (*allowed["pages"], "group")
    try:
        yield
    finally:
        allowed.clear()
        allowed.update(saved)


def _group(file: Path, index: int, raw: dict[str, Any]) -> str:
    group = raw.get("group", DEFAULT_GROUP)
    if not isinstance(group, str) or not group.strip() or len(group) > 100:
        raise ConfigError(f"{file}: pages[{index}].group: must be a short non-empty string")
    return group


def _cluster(config: Config, raw: object) -> ClusterConfig | None:
    if raw is None:
        return None
    file = config.path
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: cluster: must be a table ([cluster])")
    for key in raw:
        if key not in ("database", "broker", "archive", "task_timeout"):
            raise ConfigError(f"{file}: cluster.{key}: unknown key")
    for key in ("database", "broker", "archive"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{file}: cluster.{key}: required, a string")
    for key, schemes in (("database", ("postgresql", "postgres")), ("broker", ("redis",))):
        parts = urlsplit(raw[key])
        if parts.scheme not in schemes or not parts.hostname:
            raise ConfigError(f"{file}: cluster.{key}: must be a {schemes[0]}:// URL with a host")
    timeout_s = 600.0
    if "task_timeout" in raw:
        try:
            timeout_s = parse_duration(str(raw["task_timeout"]))
        except ValueError as error:
            raise ConfigError(f"{file}: cluster.task_timeout: {error}") from None
        if timeout_s <= 0:
            raise ConfigError(f"{file}: cluster.task_timeout: must be longer than 0s")
    archive = Path(raw["archive"]).expanduser()
    return ClusterConfig(
        database=raw["database"],
        broker=raw["broker"],
        archive=archive if archive.is_absolute() else file.parent / archive,
        task_timeout_s=timeout_s,
    )
