"""Base class of every settings section a package contributes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from weightslab.config.fields import Setting


class SettingsSection(BaseSettings):
    """A group of settings owned by one package.

    Values are resolved by :func:`weightslab.config.resolve` (which tracks where each one
    came from); the pydantic-settings model only receives already-parsed values, so it
    never reads the environment by itself.
    """

    model_config = SettingsConfigDict(extra="forbid", frozen=True, validate_default=False)

    section: ClassVar[str] = ""
    owner: ClassVar[str] = ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @classmethod
    def settings(cls) -> dict[str, Setting]:
        """Field name -> its :class:`Setting` metadata."""
        found: dict[str, Setting] = {}
        for name, field in cls.model_fields.items():
            for meta in field.metadata:
                if isinstance(meta, Setting):
                    found[name] = meta
        return found

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """``repr``/``str`` of a section mask secret fields (they may end up in logs)."""
        secrets = {name for name, setting in self.settings().items() if setting.secret}
        for name, value in super().__repr_args__():
            yield name, ("<secret>" if name in secrets and value else value)

    def notes(self) -> list[str]:
        """Extra lines ``weightslab config show`` prints for this section, e.g. which file a
        plugin read its own settings from (``agent_config.yaml``). None by default."""
        return []

    @classmethod
    def default_of(cls, name: str) -> Any:
        return cls.model_fields[name].get_default(call_default_factory=True)
