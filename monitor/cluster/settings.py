"""[cluster] and the page groups, as the rest of `monitor.cluster` reads them.

Nothing here imports a cluster library: the store, the locks and the paths ask it
whether a config has [cluster] without loading Celery, Redis or psycopg.
"""

from __future__ import annotations

from pathlib import Path

from msgspec import Struct

from monitor.config import ClusterConfig, Config, load_config
from monitor.errors import ConfigError

__all__ = ["ClusterConfig", "ClusterSetup", "cluster_of", "load_setup", "page_groups"]


class ClusterSetup(Struct, frozen=True):
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
    """load_config's Config, with its [cluster] and its page groups."""
    config = load_config(path, data_dir=data_dir)
    groups: dict[str, tuple[str, ...]] = {}
    for page in config.pages:
        groups[page.group] = (*groups.get(page.group, ()), page.name)
    return ClusterSetup(config, config.cluster, groups)


def cluster_of(config: Config) -> ClusterConfig | None:
    """The config's [cluster] table, None without one."""
    return config.cluster


def page_groups(config: Config) -> dict[str, str]:
    """Each page's group ([[pages]].group)."""
    return {page.name: page.group for page in config.pages}
