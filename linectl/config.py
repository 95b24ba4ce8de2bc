"""The site config: TOML on disk, validated into typed objects on load.

A bad file is refused as a whole with `ConfigError`, whose message names the
file, the key (as a path such as `lines[0].stations[1].devices[0].port`) and
the problem, so the CLI can print one line and exit non-zero, never a
traceback. See config/site.example.toml for a commented example.
"""

from __future__ import annotations

import os
import tomllib
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

REPO_DIR = Path(__file__).resolve().parent.parent
DEFAULT_LIMITS_DIR = REPO_DIR / "config" / "limits"

# Which device models may serve which station kind, and the transports they speak.
DEVICE_MODELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "rbt-modbus": ("brake", ("tcp", "rtu")),
    "lineio-modbus": ("line", ("tcp", "rtu")),
    "nha503": ("emission", ("serial",)),
    "nht6": ("emission", ("serial",)),
    "hlt-ascii": ("headlamp", ("serial",)),
}
STATION_KINDS = ("brake", "headlamp", "emission")


class ConfigError(Exception):
    """A config that cannot be used; `str()` is the one line to show."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TcpTransport(_Model):
    kind: Literal["tcp"] = "tcp"
    host: str = "127.0.0.1"
    # 0 is for the simulator only: "any free port", replaced by the bound one.
    port: int = Field(ge=0, le=65535)


class RtuTransport(_Model):
    """Modbus RTU on a serial line (RS-485 or RS-232)."""

    kind: Literal["rtu"] = "rtu"
    device: str
    baudrate: int = Field(default=19200, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1


class SerialTransport(_Model):
    """A plain RS-232 port for the byte-framed instruments (gas, smoke, headlamp)."""

    kind: Literal["serial"] = "serial"
    device: str
    baudrate: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1


Transport = Annotated[TcpTransport | RtuTransport | SerialTransport, Field(discriminator="kind")]


class DeviceConfig(_Model):
    id: str = Field(min_length=1)
    model: Literal["rbt-modbus", "lineio-modbus", "nha503", "nht6", "hlt-ascii"]
    transport: Transport
    unit: int = Field(default=1, ge=0, le=247)
    timeout_s: float = Field(default=1.0, gt=0, description="per-request timeout, real seconds")

    @model_validator(mode="after")
    def _transport_fits(self) -> DeviceConfig:
        allowed = DEVICE_MODELS[self.model][1]
        if self.transport.kind not in allowed:
            raise ValueError(
                f"model {self.model} speaks over {' or '.join(allowed)}, not {self.transport.kind}"
            )
        return self


class StationConfig(_Model):
    id: str = Field(min_length=1)
    kind: Literal["brake", "headlamp", "emission"]
    devices: list[DeviceConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _devices_fit(self) -> StationConfig:
        for d in self.devices:
            serves = DEVICE_MODELS[d.model][0]
            if serves != self.kind:
                raise ValueError(f"device {d.id} ({d.model}) is not a {self.kind} instrument")
        return self

    def device(self, model: str) -> DeviceConfig | None:
        return next((d for d in self.devices if d.model == model), None)


class BreakConfig(_Model):
    """A daily break: from `at` (HH:MM, site local time) for `minutes`."""

    at: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    minutes: int = Field(gt=0, le=240)

    def start(self, day: datetime) -> datetime:
        h, m = (int(x) for x in self.at.split(":"))
        return day.replace(hour=h, minute=m, second=0, microsecond=0)


class ProxyDriverConfig(_Model):
    id: str = Field(min_length=1)
    name: str = ""
    on_duty: bool = True
    breaks: list[BreakConfig] = []


class LineConfig(_Model):
    id: str = Field(min_length=1)
    io: DeviceConfig
    stations: list[StationConfig] = Field(min_length=1)
    proxy_drivers: list[ProxyDriverConfig] = Field(min_length=1)
    walk_back_s: float = Field(
        default=40.0, ge=0, description="clock seconds for a proxy driver to walk back to the start"
    )

    @model_validator(mode="before")
    @classmethod
    def _driver_shorthand(cls, data: Any) -> Any:
        # proxy_drivers = ["D1", "D2"] is shorthand for [{id = "D1"}, {id = "D2"}]
        if isinstance(data, dict) and isinstance(data.get("proxy_drivers"), list):
            data = dict(data)
            data["proxy_drivers"] = [
                {"id": d} if isinstance(d, str) else d for d in data["proxy_drivers"]
            ]
        return data

    @model_validator(mode="after")
    def _line_fits(self) -> LineConfig:
        if self.io.model != "lineio-modbus":
            raise ValueError(f"io device {self.io.id} must be a lineio-modbus module")
        _unique("station", [s.id for s in self.stations])
        _unique("proxy driver", [d.id for d in self.proxy_drivers])
        return self

    def station_kinds(self) -> list[str]:
        return [s.kind for s in self.stations]

    def device_models(self) -> set[str]:
        return {d.model for s in self.stations for d in s.devices}


class DatabaseConfig(_Model):
    url: str = "sqlite:///linectl.db"


class LimitsConfig(_Model):
    dir: str = str(DEFAULT_LIMITS_DIR)
    limit_set: Literal["a", "b"] = "a"
    beam_position: Literal["record", "judge"] = "record"


class EmissionConfig(_Model):
    idle_band_rpm: tuple[int, int] = (500, 1100)
    max_phase_repeats: int = Field(default=2, ge=0)
    purge_accelerations: int = Field(default=2, ge=0)


class MqttConfig(_Model):
    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = "linectl"
    client_id: str | None = None
    username: str | None = None
    # Secrets never sit in the config: name an environment variable or a file.
    password_env: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive_s: int = Field(default=30, ge=5)


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets: [::1]:8080) as (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (port 0..65535)")
    return host.removeprefix("[").removesuffix("]"), int(port)


class HttpConfig(_Model):
    """The console and JSON API (reference/http.md), served by the daemon itself."""

    enabled: bool = True
    listen: str = "127.0.0.1:8080"
    # TLS when both are set; the session cookie is then marked Secure.
    cert_file: str | None = None
    key_file: str | None = None
    # A console session ends after this long without use, and at the latest
    # session_max_hours after sign-in.
    session_idle_minutes: int = Field(default=240, gt=0)
    session_max_hours: float = Field(default=12.0, gt=0)
    # Failed sign-ins allowed per account, and per client address, in the window.
    login_attempts: int = Field(default=5, gt=0)
    login_attempts_per_address: int = Field(default=20, gt=0)
    login_window_minutes: int = Field(default=15, gt=0)

    @model_validator(mode="after")
    def _fits(self) -> HttpConfig:
        parse_listen(self.listen)
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: set both for TLS, or neither")
        return self

    def address(self) -> tuple[str, int]:
        return parse_listen(self.listen)


class SiteConfig(_Model):
    site_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    # The station's name as printed at the top of its inspection reports.
    site_name: str | None = None
    # IANA zone of the site's local time (break times); none: the machine's own.
    timezone: str | None = None
    lines: list[LineConfig] = Field(min_length=1)
    database: DatabaseConfig = DatabaseConfig()
    limits: LimitsConfig = LimitsConfig()
    emission: EmissionConfig = EmissionConfig()
    mqtt: MqttConfig | None = None
    http: HttpConfig = HttpConfig()

    @model_validator(mode="after")
    def _site_fits(self) -> SiteConfig:
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone {self.timezone!r} is not an IANA time zone") from None
        _unique("line", [ln.id for ln in self.lines])
        # The draw records name drivers by id alone, so an id means one person site-wide.
        _unique("proxy driver", [d.id for ln in self.lines for d in ln.proxy_drivers])
        _unique(
            "device",
            [
                d.id
                for ln in self.lines
                for d in (ln.io, *(d for s in ln.stations for d in s.devices))
            ],
        )
        return self

    def tz(self) -> tzinfo | None:
        """The site's local time zone (None: the machine's)."""
        return ZoneInfo(self.timezone) if self.timezone else None

    def line(self, line_id: str) -> LineConfig:
        for ln in self.lines:
            if ln.id == line_id:
                return ln
        raise KeyError(line_id)


def _unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"{what} id {i!r} is used twice")
        seen.add(i)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("tcp", "rtu", "serial") and out.endswith("transport"):
            continue  # discriminator branch names are not keys of the file
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def parse_site_config(data: dict[str, Any], source: str = "config") -> SiteConfig:
    try:
        cfg = SiteConfig.model_validate(data)
    except ValidationError as e:
        errs = e.errors()
        first = errs[0]
        msg = first["msg"].removeprefix("Value error, ")
        more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
        raise ConfigError(f"{source}: {_loc(tuple(first['loc']))}: {msg}{more}") from None
    return cfg


def load_site_config(path: str | Path) -> SiteConfig:
    """Read and validate a site config; relative paths in it are taken from its folder."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror}") from None
    _resolve_paths(raw, p.parent)
    return parse_site_config(raw, str(p))


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Relative paths in a config file mean: relative to that file's folder."""

    def fix(table: Any, key: str) -> None:
        if isinstance(table, dict) and isinstance(table.get(key), str):
            v = table[key]
            if v and not Path(v).is_absolute():
                # Joined, not resolved: a serial device is often a symlink
                # (/dev/serial/by-id/..., the simulator's pty links) that must be
                # followed at each open, not pinned to its target at load time.
                table[key] = os.path.normpath(base.absolute() / v)

    fix(raw.get("limits"), "dir")
    for key in ("ca_file", "cert_file", "key_file", "password_file"):
        fix(raw.get("mqtt"), key)
    for key in ("cert_file", "key_file"):
        fix(raw.get("http"), key)
    for line in raw.get("lines") or []:
        if not isinstance(line, dict):
            continue
        devices = [line.get("io")]
        for st in line.get("stations") or []:
            if isinstance(st, dict) and isinstance(st.get("devices"), list):
                devices += st["devices"]
        for d in devices:
            if isinstance(d, dict):
                fix(d.get("transport"), "device")
