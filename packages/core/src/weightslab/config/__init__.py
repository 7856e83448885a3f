"""Configuration: typed sections contributed by plugins, resolved with tracked sources."""

from weightslab.config.errors import ConfigError
from weightslab.config.fields import Setting
from weightslab.config.resolve import Config, Entry, fingerprint, resolve
from weightslab.config.section import SettingsSection

__all__ = ["Config", "ConfigError", "Entry", "Setting", "SettingsSection", "fingerprint", "resolve"]
