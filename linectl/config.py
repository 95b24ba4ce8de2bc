"""The site config: TOML on disk, validated into typed objects on load.

A bad file is refused as a whole with `ConfigError`, whose message names the
file, the key (as a path such as `lines[0].stations[1].devices[0].port`) and
the problem, so the CLI can print one line and exit non-zero, never a
traceback. See config/site.example.toml for a commented example.
"""

from __future__ import annotations

import os
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from linectl import tomlfile
from linectl.scheduler.assign import DEFAULT_POLICY, AssignmentPolicy
from linectl.scheduler.assign import policy as assign_policy

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
    # No inf or nan: an infinite timeout or walk would wait for ever.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# A file or device path: a NUL byte would make the OS calls on it raise ValueError
# wherever they run (opening a port, a stat), far from the config.
def _no_nul(path: str) -> str:
    if "\0" in path:
        raise ValueError("a path must not contain a NUL byte")
    return path


PathStr = Annotated[str, Field(min_length=1), AfterValidator(_no_nul)]


class TcpTransport(_Model):
    kind: Literal["tcp"] = "tcp"
    host: str = "127.0.0.1"
    # 0 is for the simulator only: "any free port", replaced by the bound one.
    port: int = Field(ge=0, le=65535)


class RtuTransport(_Model):
    """Modbus RTU on a serial line (RS-485 or RS-232)."""

    kind: Literal["rtu"] = "rtu"
    device: PathStr
    baudrate: int = Field(default=19200, gt=0, le=4_000_000)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1


class SerialTransport(_Model):
    """A plain RS-232 port for the byte-framed instruments (gas, smoke, headlamp)."""

    kind: Literal["serial"] = "serial"
    device: PathStr
    baudrate: int = Field(default=9600, gt=0, le=4_000_000)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1


Transport = Annotated[TcpTransport | RtuTransport | SerialTransport, Field(discriminator="kind")]


class DeviceConfig(_Model):
    id: str = Field(min_length=1)
    model: Literal["rbt-modbus", "lineio-modbus", "nha503", "nht6", "hlt-ascii"]
    transport: Transport
    unit: int = Field(default=1, ge=0, le=247)
    timeout_s: float = Field(
        default=1.0, gt=0, le=60, description="per-request timeout, real seconds"
    )

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
        models: set[str] = set()
        for d in self.devices:
            serves = DEVICE_MODELS[d.model][0]
            if serves != self.kind:
                raise ValueError(f"device {d.id} ({d.model}) is not a {self.kind} instrument")
            if d.model in models:
                # The procedure drives one instrument of each model; a second would sit unused.
                raise ValueError(f"device {d.id}: a station has one {d.model}, this one has two")
            models.add(d.model)
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


class AssignmentConfig(_Model):
    """How a call is drawn (linectl.scheduler.assign): a named policy, its parameters
    overridable. Nothing here can name a driver, only how many."""

    policy: Literal["idle", "window", "hold", "joint"] = DEFAULT_POLICY
    window: int | None = Field(default=None, ge=1, le=10, description="k: first k queued")
    min_idle: int | None = Field(default=None, ge=1, le=20, description="m: idle drivers")
    hold_s: float | None = Field(default=None, ge=0, le=600, description="T: clock seconds")

    def build(self) -> AssignmentPolicy:
        return assign_policy(
            self.policy, window=self.window, min_idle=self.min_idle, hold_s=self.hold_s
        )


class CheckinConfig(_Model):
    """How a driver's return to the start is known. `timer`: walk_back_s after he left
    his vehicle. `input`: a button or card reader on a spare discrete input of the
    line I/O, one address per driver's card (`inputs`). `console`: an operator's
    action, journaled with who pressed it. With `input` or `console`, walk_back_s
    is when a driver who has not checked in is reported late."""

    mode: Literal["timer", "input", "console"] = "timer"
    inputs: dict[str, int] = Field(
        default_factory=dict, description="driver id -> line I/O discrete input address"
    )


class LineConfig(_Model):
    id: str = Field(min_length=1)
    io: DeviceConfig
    stations: list[StationConfig] = Field(min_length=1)
    proxy_drivers: list[ProxyDriverConfig] = Field(min_length=1)
    walk_back_s: float = Field(
        default=40.0,
        ge=0,
        le=3600,
        description="clock seconds for a proxy driver to walk back to the start",
    )
    assignment: AssignmentConfig = AssignmentConfig()
    checkin: CheckinConfig = CheckinConfig()

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
        if self.checkin.mode == "input":
            ids = {d.id for d in self.proxy_drivers}
            if set(self.checkin.inputs) != ids:
                raise ValueError(
                    "checkin.inputs must give every proxy driver of the line an input"
                    f" (drivers {sorted(ids)}, inputs for {sorted(self.checkin.inputs)})"
                )
            _unique("checkin input", [str(a) for a in self.checkin.inputs.values()])
            for drv, addr in self.checkin.inputs.items():
                if addr < 0 or addr >= 8 * len(self.stations) or addr % 8 in (0, 1):
                    raise ValueError(
                        f"checkin.inputs.{drv}: {addr} is not a spare input of this line"
                        " (8*s+2 .. 8*s+7 for a station s)"
                    )
        return self

    def station_kinds(self) -> list[str]:
        return [s.kind for s in self.stations]

    def devices(self) -> list[DeviceConfig]:
        """The station instruments of the line (not its I/O module)."""
        return [d for s in self.stations for d in s.devices]

    def device_models(self) -> set[str]:
        return {d.model for s in self.stations for d in s.devices}


class DatabaseConfig(_Model):
    url: str = "sqlite:///linectl.db"
    # Below this much free space under the SQLite file the status says low_space.
    min_free_mb: float = Field(default=500.0, ge=0)
    # Results the broker acknowledged are kept this long in the outbox, then pruned.
    delivered_outbox_days: int = Field(default=30, ge=1, le=3650)


class LimitsConfig(_Model):
    dir: PathStr = str(DEFAULT_LIMITS_DIR)
    limit_set: Literal["a", "b"] = "a"
    beam_position: Literal["record", "judge"] = "record"


class EmissionConfig(_Model):
    idle_band_rpm: tuple[
        Annotated[int, Field(ge=0, le=10_000)], Annotated[int, Field(ge=0, le=10_000)]
    ] = (
        500,
        1100,
    )
    # Bounded: each repeat or acceleration is minutes of a vehicle on the station.
    max_phase_repeats: int = Field(default=2, ge=0, le=10)
    purge_accelerations: int = Field(default=2, ge=0, le=10)

    @model_validator(mode="after")
    def _band_ordered(self) -> EmissionConfig:
        lo, hi = self.idle_band_rpm
        if not lo < hi:
            raise ValueError(f"idle_band_rpm must be [low, high] with low < high, got [{lo}, {hi}]")
        return self


class MqttConfig(_Model):
    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = "linectl"
    client_id: str | None = None
    username: str | None = None
    # Secrets never sit in the config: name an environment variable or a file.
    password_env: str | None = None
    password_file: PathStr | None = None
    ca_file: PathStr | None = None
    cert_file: PathStr | None = None
    key_file: PathStr | None = None
    keepalive_s: int = Field(default=30, ge=5, le=65535)  # MQTT keeps it in 16 bits


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


AlarmPriority = Literal["high", "medium", "low"]
# Each alarm condition's priority unless `[alarms.priorities]` says otherwise.
DEFAULT_ALARM_PRIORITIES: dict[str, AlarmPriority] = {
    "device_down": "high",
    "mqtt_down": "medium",
    "outbox_stale": "medium",
    "disk_low": "high",
    "station_blocked": "medium",
    "line_idle": "medium",
    "driver_late": "medium",
}


class AlarmsConfig(_Model):
    """When a condition becomes an alarm, and how it is shown (linectl.alarms)."""

    # Condition -> priority; conditions not named keep DEFAULT_ALARM_PRIORITIES.
    priorities: dict[str, AlarmPriority] = {}
    # Clock seconds a condition must last before it is an alarm (none: at once).
    device_down_s: float = Field(default=1.0, ge=0, le=3600)
    # Real seconds between asking idle devices whether they answer (drivers/liveness.py).
    probe_idle_s: float = Field(default=1.0, gt=0, le=600)
    mqtt_down_s: float = Field(default=10.0, ge=0, le=3600)
    outbox_stale_minutes: float = Field(default=10.0, gt=0, le=1440)
    station_blocked_s: float = Field(default=600.0, gt=0, le=86400)
    line_idle_minutes: float = Field(default=15.0, gt=0, le=1440)
    # A proxy driver not checked in walk_back_s after leaving his vehicle is late
    # (checkin input/console); late for this many clock seconds more: an alarm.
    late_back_s: float = Field(default=120.0, ge=0, le=86400)
    # The longest an operator may shelve an alarm for.
    shelve_max_minutes: int = Field(default=480, ge=1, le=10080)
    # More than flood_count alarms raised in flood_window_minutes: an alarm flood.
    flood_count: int = Field(default=10, ge=1)
    flood_window_minutes: float = Field(default=10.0, gt=0)
    # Places (device, station or line ids) taken out of service: their alarms are
    # kept as out_of_service, never annunciated.
    out_of_service: list[str] = []

    @model_validator(mode="after")
    def _known(self) -> AlarmsConfig:
        unknown = set(self.priorities) - set(DEFAULT_ALARM_PRIORITIES)
        if unknown:
            raise ValueError(
                f"unknown alarm condition {sorted(unknown)[0]!r} in priorities: use one of "
                + ", ".join(DEFAULT_ALARM_PRIORITIES)
            )
        return self

    def priority(self, kind: str) -> AlarmPriority:
        return self.priorities.get(kind, DEFAULT_ALARM_PRIORITIES[kind])


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
    alarms: AlarmsConfig = AlarmsConfig()
    # A retest is refused (retest_expired) this many days after the first result;
    # none: no limit. Fractions of a day are allowed.
    retest_within_days: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _site_fits(self) -> SiteConfig:
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError, OSError):
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
        _buses_fit([d for ln in self.lines for d in (ln.io, *ln.devices())])
        return self

    def tz(self) -> tzinfo | None:
        """The site's local time zone (None: the machine's)."""
        return ZoneInfo(self.timezone) if self.timezone else None

    def line(self, line_id: str) -> LineConfig:
        for ln in self.lines:
            if ln.id == line_id:
                return ln
        raise KeyError(line_id)


def _buses_fit(devices: list[DeviceConfig]) -> None:
    """Devices that share a wire must be able to: Modbus units sharing a TCP gateway
    or an RTU line need distinct unit ids and (RTU) one set of line settings; an
    RS-232 instrument owns its port alone. Found here, in one line naming the
    devices, rather than when the daemon opens them."""
    modbus: dict[tuple[str, ...], DeviceConfig] = {}
    ports: dict[str, DeviceConfig] = {}
    for d in devices:
        t = d.transport
        if isinstance(t, SerialTransport | RtuTransport):
            path = os.path.abspath(t.device)
            other = ports.setdefault(path, d)
            if other is not d and (isinstance(t, SerialTransport) or other.transport != t):
                raise ValueError(
                    f"devices {other.id} and {d.id} both use {t.device}: "
                    + (
                        "an RS-232 port serves one instrument"
                        if isinstance(t, SerialTransport)
                        or isinstance(other.transport, SerialTransport)
                        else "one RTU line needs one baud rate, parity, byte size and stop bits"
                    )
                )
        if isinstance(t, SerialTransport) or (isinstance(t, TcpTransport) and t.port == 0):
            continue  # port 0: each device on a free port of its own (the simulator)
        key = (
            ("tcp", t.host, str(t.port), str(d.unit))
            if isinstance(t, TcpTransport)
            else ("rtu", os.path.abspath(t.device), str(d.unit))
        )
        other = modbus.setdefault(key, d)
        if other is not d:
            raise ValueError(
                f"devices {other.id} and {d.id} are both unit {d.unit} on one Modbus bus"
            )


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
        raw = tomlfile.load(p)
    except tomlfile.TomlError as e:
        raise ConfigError(f"{p}: {'no such config file' if e.missing else e}") from None
    _resolve_paths(raw, p.parent)
    return parse_site_config(raw, str(p))


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Relative paths in a config file mean: relative to that file's folder."""

    def fix(table: Any, key: str) -> None:
        if isinstance(table, dict) and isinstance(table.get(key), str):
            v = table[key]
            # A path with a NUL byte is left for the validation to refuse.
            if v and "\0" not in v and not Path(v).is_absolute():
                # Joined, not resolved: a serial device is often a symlink
                # (/dev/serial/by-id/..., the simulator's pty links) that must be
                # followed at each open, not pinned to its target at load time.
                table[key] = os.path.normpath(base.absolute() / v)

    def items(value: Any) -> list[Any]:
        # Anything but a list is left for the validation to refuse, by name.
        return value if isinstance(value, list) else []

    fix(raw.get("limits"), "dir")
    for key in ("ca_file", "cert_file", "key_file", "password_file"):
        fix(raw.get("mqtt"), key)
    for key in ("cert_file", "key_file"):
        fix(raw.get("http"), key)
    for line in items(raw.get("lines")):
        if not isinstance(line, dict):
            continue
        devices = [line.get("io")]
        for st in items(line.get("stations")):
            if isinstance(st, dict) and isinstance(st.get("devices"), list):
                devices += st["devices"]
        for d in devices:
            if isinstance(d, dict):
                fix(d.get("transport"), "device")
