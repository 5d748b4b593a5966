"""The Redis layout, its URL options and its Lua scripts (pure; no redis import).

Layout (stable; other tools may read it)::

    <prefix>:{<name>}            HASH, field = key, value = JSON text (unscoped state)
    <prefix>:{<name>:<scope>}    HASH, the same for a scoped state
    <key>:lock                   STRING, a token, while transaction()/modify() runs;
                                 plain writes wait while it exists
    <key>:log                    STREAM, the state's change log: one entry per
                                 revision, ID <epoch>-<rev>, fields t (Unix ms) and
                                 c (JSON: [{"key": k, "old": v, "new": v}, ...])
    <key>:rev                    HASH, the revision counter: rev (the latest) and
                                 epoch (Unix ms when this count began)

The braces are a Cluster hash tag: a state's data and lock keys share a slot,
so every script touches one slot and never fails with CROSSSLOT. A name never
contains ``:`` and a scope never contains a brace, so the key is unambiguous.
Expiry is the key's own TTL (PEXPIRE), set in the same script as the write.

Every write script that changes a state appends to its log in the same script
(``XADD ... MAXLEN ~ N``, exact below 100), so the revision is atomic with the
write. N is the writer's ``history=``; the counter stores it (field ``keep``)
for writers that have none, so they keep the same number. The
revision comes from ``HINCRBY`` on the counter (reading the stream's last entry
instead cost the script more than the XADD itself). The entry ID carries the
revision: ``<epoch>-<rev>``, where the epoch is the Unix
time in ms at which the count began, so ``XREAD`` from ``<epoch>-<rev>``
returns exactly the changes after ``rev``, and a state re-created after its
log expired (a new epoch, a higher ID) is seen by a connected watcher, never
skipped. The log and its counter have no TTL while the state has none. While
it has one, the log expires with the state (its history goes with it) and the
counter ``LINGER`` seconds later, so a state written again soon after keeps
counting. Once a write removed the state, both expire after ``LINGER``: its
last change, the removal, stays visible that long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode

from ..._changes import LINGER, LOG_SIZE, MAX_HISTORY
from ..._errors import ConfigError
from ..._keys import StateKey
from ..._urls import redact, split_credentials

_PREFIX = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_HOST = re.compile(r"[A-Za-z0-9_.\-]*|\[[0-9A-Fa-f:.%A-Za-z]+\]")

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
SCHEMES = {"redis", "rediss", "unix", *CLUSTER_SCHEMES}

DEFAULT_MAX_CONNECTIONS = 50
"""Connections a registry opens to one server at most (``?max_connections=``)."""

_SECONDS_OPTIONS = ("timeout", "lease", "lock_wait")

REDIS_PY_OPTIONS = frozenset(
    {"socket_keepalive", "socket_read_size", "health_check_interval", "client_name"}
)
"""Query options passed on to redis-py (it checks their values)."""
SSL_OPTIONS = frozenset(
    {
        "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data",
        "ssl_ca_path", "ssl_check_hostname", "ssl_password", "ssl_min_version",
        "ssl_ciphers", "ssl_include_verify_flags", "ssl_exclude_verify_flags",
        "ssl_validate_ocsp", "ssl_validate_ocsp_stapled", "ssl_ocsp_expected_cert",
    }
)  # fmt: skip
"""redis-py's TLS options, for ``rediss://`` URLs."""
_OWN_TIMING = ("socket_timeout", "socket_connect_timeout", "retry_on_timeout", "retry_on_error")


@dataclass(frozen=True)
class RedisOptions:
    """What a Redis URL says, checked, split into redis-py's part and qstate's."""

    client_url: str = field(repr=False)
    """The URL handed to redis-py: qstate's options removed, the cluster scheme
    mapped, the user info percent-encoded (it holds the password: never print it)."""
    cluster: bool
    prefix: str = "qstate"
    timeout: float = 5.0
    """The bound on any one call during an outage: waiting for a connection and
    the round trips together."""
    lease: float = 10.0
    """How long a transaction()/modify() lock lives if its holder dies."""
    lock_wait: float = 15.0
    """How long a write waits for a transaction's lock (longer than the lease)."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Connections the registry opens at most; more concurrent calls wait for one."""
    history: int | None = None
    """How many changes of each state its log keeps (``None``: the number stored
    with the log, else LOG_SIZE)."""
    password: str | None = field(default=None, repr=False)
    """Kept to scrub it from any text redis-py produces (it should not, but)."""
    passthrough: tuple[str, ...] = ()
    """Names of the query options left for redis-py."""


def parse_url(url: str) -> RedisOptions:
    """Check a Redis URL and split it into redis-py's part and qstate's options.

    Parsed here, once, rather than by redis-py, so that every malformed URL is a
    ConfigError naming what is wrong, and so that a password is never part of
    a message, whatever characters it holds (see ``split_credentials``).
    """
    head, user, password, rest = split_credentials(url)
    scheme = head[:-3].lower()
    if scheme not in SCHEMES:
        raise ConfigError(f"not a Redis URL: {redact(url)!r}; use redis://host:6379/0")
    shown = redact(url)
    if "#" in rest:
        raise ConfigError(
            f"{shown!r} has a '#' outside its password: a Redis URL has no fragment "
            "(percent-encode a '#' in a password as %23)"
        )
    cluster = scheme in CLUSTER_SCHEMES
    location, _, query = rest.partition("?")
    found: dict[str, float | int | str] = {}
    passthrough: list[tuple[str, str]] = []
    db: str | None = None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "prefix":
            if not _PREFIX.fullmatch(value):
                raise ConfigError(f"prefix {value!r}: use 1-64 characters from A-Z a-z 0-9 _ . -")
            found[name] = value
        elif name in _SECONDS_OPTIONS:
            found[name] = _seconds(name, value)
        elif name == "max_connections":
            found[name] = _count(name, value, 1, 100_000)
        elif name == "history":
            found[name] = _count(name, value, 1, MAX_HISTORY)
        elif name == "db":
            db = value
        elif name in ("password", "username"):
            raise ConfigError(
                f"put the {name} in the URL's user info (redis://user:password@host:6379/0), "
                "not in its query"
            )
        elif name in _OWN_TIMING:
            raise ConfigError(
                f"{name}: qstate sets socket timeouts from ?timeout= and never retries "
                "a write on its own (a resent incr could apply twice); use ?timeout="
            )
        elif name in REDIS_PY_OPTIONS or (name in SSL_OPTIONS and scheme.startswith("rediss")):
            if not value:
                raise ConfigError(f"option {name} has no value")
            passthrough.append((name, value))
        else:
            known = sorted(
                {"prefix", "db", "max_connections", "history"}
                | {*_SECONDS_OPTIONS, *REDIS_PY_OPTIONS}
            )
            raise ConfigError(
                f"unknown Redis URL option {name!r}; known: {', '.join(known)}"
                + (", and ssl_* options with rediss://" if not scheme.startswith("rediss") else "")
            )
    if scheme == "unix":
        if not location.startswith("/"):
            raise ConfigError(
                f"{shown!r}: a unix:// URL names a socket path: unix:///path/redis.sock"
            )
        address = quote(location, safe="/")
    else:
        hostport, _, path = location.partition("/")
        address = _host_port(hostport, shown)
        if path:
            if db is not None:
                raise ConfigError(f"{shown!r} names the database twice (path and ?db=)")
            db = path
    path = ""
    if db is not None:
        number = _count("the database number", db, 0, 1_000_000)
        if cluster and number:
            raise ConfigError("Redis Cluster has only database 0")
        if scheme == "unix":
            passthrough.insert(0, ("db", str(number)))
        elif not cluster:
            path = f"/{number}"
    userinfo = ""
    if user is not None:
        userinfo = quote(user, safe="")
        if password is not None:
            userinfo += ":" + quote(password, safe="")
        userinfo += "@"
    client_url = f"{CLUSTER_SCHEMES.get(scheme, scheme)}://{userinfo}{address}{path}"
    if passthrough:
        client_url += "?" + urlencode(passthrough)
    return RedisOptions(
        client_url,
        cluster,
        password=password or None,
        passthrough=tuple(name for name, _ in passthrough if name != "db"),
        **found,  # type: ignore[arg-type]
    )


def _host_port(hostport: str, shown: str) -> str:
    """``host:port`` checked (a bracketed IPv6 address is fine), as redis-py wants it."""
    if hostport.startswith("["):
        host, bracket, port_text = hostport.partition("]")
        host += bracket
        if not bracket or (port_text and not port_text.startswith(":")):
            raise ConfigError(f"{shown!r}: an IPv6 address must be written [address]:port")
        port_text = port_text[1:]
    else:
        host, _, port_text = hostport.partition(":")
    if not _HOST.fullmatch(host):
        raise ConfigError(f"{shown!r}: {host!r} is not a host name or address")
    if port_text or hostport.endswith(":"):
        _count("the port", port_text, 1, 65535)
        return hostport
    return host


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}") from None
    if not 0.001 <= seconds <= 3600:  # Redis expiries count whole milliseconds
        raise ConfigError(f"{name} must be between 0.001 and 3600 seconds, not {value!r}")
    return seconds


def _count(what: str, value: str, low: int, high: int) -> int:
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ConfigError(f"{what} must be a whole number from {low} to {high}, not {value!r}")
    return int(value)


def data_key(prefix: str, key: StateKey) -> str:
    """The HASH holding a state."""
    name, scope = key
    return f"{prefix}:{{{name}:{scope}}}" if scope else f"{prefix}:{{{name}}}"


def lock_key(data: str) -> str:
    """The lock of a state, in the same Cluster slot as its data."""
    return data + ":lock"


def log_key(data: str) -> str:
    """The change log (a STREAM) of a state, in the same Cluster slot as its data."""
    return data + ":log"


def counter_key(data: str) -> str:
    """The revision counter (a HASH: rev, epoch) of a state, in its Cluster slot."""
    return data + ":rev"


def parse_log_id(raw: bytes | str) -> tuple[int, int]:
    """A log entry ID as ``(epoch, rev)``."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    epoch, _, rev = text.partition("-")
    return int(epoch), int(rev)


def parse_data_key(prefix: str, raw: str) -> StateKey | None:
    """The state a data key belongs to; ``None`` for lock keys and foreign keys."""
    start = f"{prefix}:{{"
    if not (raw.startswith(start) and raw.endswith("}")):
        return None
    tag = raw[len(start) : -1]
    name, colon, scope = tag.partition(":")
    if "{" in tag or "}" in tag or not name or (colon and not scope):
        return None
    return StateKey(name, scope)


def scan_pattern(prefix: str, name_prefix: str) -> str:
    """SCAN MATCH pattern for data keys whose state name starts with ``name_prefix``."""
    escaped = re.sub(r"([*?\[\]\\])", r"\\\1", name_prefix)
    return f"{prefix}:{{{escaped}*"


# -- Lua ------------------------------------------------------------------
# Every script takes KEYS = {data, lock, log, counter}. A plain write refuses to run
# while a transaction holds the lock (the client waits and retries), so plain
# writes never slip between a transaction's read and its commit: the same
# guarantee the memory and file backends give. Arguments are chunked in
# HSET/HDEL calls because Lua's unpack() has a stack limit.

_LOG = """
-- Every write script's last two arguments: how many changes the log keeps ('': the
-- number stored in the counter by a writer that knew, else LOG_SIZE), who writes.
local QORIGIN = table.remove(ARGV)
local QKEEP = table.remove(ARGV)
local function qentry(field, old, new)
  local s = '{"key":' .. cjson.encode(field)
  if old and not pcall(cjson.decode, old) then old = cjson.encode(old) end  -- not ours: a string
  if old then s = s .. ',"old":' .. old end
  if new then s = s .. ',"new":' .. new end
  return s .. '}'
end
local function qlog(entries, expiry_may_change)
  local log = KEYS[3]
  local counter = KEYS[4]
  if #entries > 0 then
    local now = redis.call('TIME')
    local ms = now[1] .. string.format('%03d', math.floor(now[2] / 1000))
    local rev = redis.call('HINCRBY', counter, 'rev', 1)
    local epoch, keep = ms, QKEEP
    if rev == 1 then
      if QKEEP ~= '' then redis.call('HSET', counter, 'epoch', ms, 'keep', QKEEP)
      else redis.call('HSET', counter, 'epoch', ms) end
      expiry_may_change = true  -- a new counter and log: they need the state's expiry
    else
      local stored = redis.call('HMGET', counter, 'epoch', 'keep')
      epoch = stored[1] or ms
      if QKEEP == '' then keep = stored[2] or ''  -- a writer without history=: the log's own
      elseif stored[2] ~= QKEEP then redis.call('HSET', counter, 'keep', QKEEP) end
    end
    if keep == '' then keep = 'LOG_SIZE' end
    local id = epoch .. '-' .. string.format('%.0f', rev)
    -- Exact below 100: XADD's '~' trims whole stream nodes, ~40 entries each.
    redis.call('XADD', log, 'MAXLEN', tonumber(keep) < 100 and '=' or '~', keep, id, 't', ms,
               'c', '[' .. table.concat(entries, ',') .. ']', 'o', QORIGIN)
  end
  -- also without entries: a TTL refresh that changed no value moves the expiry
  if not expiry_may_change then return end
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl == -1 then
    redis.call('PERSIST', log)
    redis.call('PERSIST', counter)
  else
    if pttl > 0 then  -- the log expires with its state; the count goes on a while
      redis.call('PEXPIRE', log, pttl)
      redis.call('PEXPIRE', counter, pttl + LINGER_MS)
    else
      redis.call('PEXPIRE', log, LINGER_MS)
      redis.call('PEXPIRE', counter, LINGER_MS)
    end
  end
end
""".replace("LINGER_MS", str(int(LINGER * 1000))).replace("LOG_SIZE", str(LOG_SIZE))
"""Lua helpers every write script starts with: ``qentry`` makes one changed
key's JSON from stored JSON texts (``false``: absent), and ``qlog``, called
after the write, appends the change with the next revision and, when the
write may have changed the state's expiry or brought it into existence, sets
the log's expiry from the state's (see the module docstring). A write that
overwrites keys of an existing state without a TTL leaves both expiries as
they were, so the hottest writes skip that step."""

_UNLESS_LOCKED = (
    _LOG
    + """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('QSTATE_LOCKED ' .. redis.call('PTTL', KEYS[2]))
end
"""
)

SET = (
    _UNLESS_LOCKED
    + """
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
qlog({qentry(ARGV[1], old, ARGV[2])}, not old)
return 0
"""
)
"""ARGV: field, value. The hottest write, kept as short as a script can be."""

UPDATE = (
    _UNLESS_LOCKED
    + """
local key = KEYS[1]
local entries = {}
local created = ARGV[1] ~= ''
for i = 3, #ARGV, 2 do
  local old = redis.call('HGET', key, ARGV[i])
  created = created or not old
  entries[#entries + 1] = qentry(ARGV[i], old, ARGV[i + 1])
end
for i = 3, #ARGV, 2000 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 1999, #ARGV)))
end
if ARGV[1] ~= '' then redis.call('PEXPIRE', key, ARGV[1]) end
qlog(entries, created)
if ARGV[2] == '1' then return redis.call('HGETALL', key) end
return 0
"""
)
"""ARGV: ttl_ms or '', '1' to return the state, then field, value pairs."""

DELETE = (
    _UNLESS_LOCKED
    + """
local entries = {}
for i = 2, #ARGV do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if old then
    redis.call('HDEL', KEYS[1], ARGV[i])
    entries[#entries + 1] = qentry(ARGV[i], old, false)
  end
end
if #entries > 0 and ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
qlog(entries, true)
return #entries
"""
)
"""ARGV: ttl_ms or '', then the fields. Returns how many existed."""

CLEAR = (
    _UNLESS_LOCKED
    + """
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return 0 end
local entries = {}
for i = 1, #flat, 2 do entries[#entries + 1] = qentry(flat[i], flat[i + 1], false) end
redis.call('DEL', KEYS[1])
qlog(entries, true)
return 1
"""
)
"""Returns 1 if the state existed."""

INCR = (
    _UNLESS_LOCKED
    + """
local ttl = ARGV[3]
local old = redis.call('HGET', KEYS[1], ARGV[1])
local is_float = string.find(ARGV[2], '[.eE]') ~= nil
if not is_float then
  -- the common case, an integer on an integer (or a missing key): HINCRBY does
  -- it exactly over the signed 64-bit range and refuses to overflow it; it also
  -- refuses anything that is not an integer (a float, a string, null): below
  local v = redis.pcall('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
  if type(v) == 'number' then
    local exact = v
    -- a Lua number is a double: beyond 2**53 send the exact stored text instead
    if v >= 9007199254740992 or v <= -9007199254740992 then
      exact = redis.call('HGET', KEYS[1], ARGV[1])
      if exact == '-9223372036854775808' then  -- -2**63: outside ±(2**63 - 1)
        redis.call('HINCRBY', KEYS[1], ARGV[1], string.sub(ARGV[2], 2))  -- undo, unseen
        return redis.error_reply('QSTATE_OVERFLOW')
      end
    end
    if ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
    local text = exact
    if type(exact) == 'number' then text = string.format('%.0f', exact) end
    qlog({qentry(ARGV[1], old, text)}, ttl or not old)
    return exact
  end
  if string.find(v['err'], 'overflow', 1, true) then
    return redis.error_reply('QSTATE_OVERFLOW')
  end
end
local cur = old
local text
if not cur or cur == 'null' then
  -- null counts as 0: the result is the amount itself, sent as exact JSON text
  text = ARGV[2]
elseif string.match(cur, '^%-?%d+$') and not is_float then
  -- an integer HINCRBY refused yet did not overflow (say '-0'): small, exact
  text = string.format('%.0f', tonumber(cur) + tonumber(ARGV[2]))
elseif string.match(cur, '^%-?%d+$') or string.match(cur, '^%-?%d+%.%d+$')
    or string.match(cur, '^%-?%d+%.?%d*[eE][%+%-]?%d+$') then
  local r = tonumber(cur) + tonumber(ARGV[2])  -- a float result: doubles are exact enough
  if r ~= r or r == math.huge or r == -math.huge then
    return redis.error_reply('QSTATE_OVERFLOW')
  end
  text = string.format('%.17g', r)
  if not string.find(text, '[%.eEn]') then text = text .. '.0' end
else
  return redis.error_reply('QSTATE_NOT_A_NUMBER ' .. string.sub(cur, 1, 1))
end
redis.call('HSET', KEYS[1], ARGV[1], text)
if ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
qlog({qentry(ARGV[1], old, text)}, ttl or not old)
return text
"""
)
"""ARGV: field, amount (JSON text: a float has a '.' or an exponent), then
ttl_ms if the state expires. Every argument sent costs the client time, so
nothing that can be derived is sent.

Returns the new value: an integer reply for integers below 2**53 in magnitude,
else JSON text (exact for every 64-bit integer); a float result is printed with
17 significant digits, which reads back as the same double, with '.0' added so
that it stays a float. Integer overflow past ±(2**63 - 1) is refused by
HINCRBY itself, before anything is written.
"""

REPLACE = (
    _UNLESS_LOCKED
    + """
local key = KEYS[1]
local before = redis.call('HGETALL', key)
local old = {}
for i = 1, #before, 2 do old[before[i]] = before[i + 1] end
local same_keys = false
if #before == #ARGV - 1 then
  same_keys = true
  for i = 1, #before, 2 do
    if before[i] ~= ARGV[i + 1] then same_keys = false break end
  end
  if not same_keys and redis.call('OBJECT', 'ENCODING', key) == 'hashtable' then
    same_keys = true  -- a big hash keeps no order: the same keys in any order will do
    for i = 2, #ARGV, 2 do
      if not old[ARGV[i]] then same_keys = false break end
    end
  end
end
local entries = {}
if same_keys then  -- write only the values that changed
  local changed = {}
  for i = 2, #ARGV, 2 do
    local was = old[ARGV[i]]
    if was ~= ARGV[i + 1] then
      entries[#entries + 1] = qentry(ARGV[i], was, ARGV[i + 1])
      changed[#changed + 1] = ARGV[i]
      changed[#changed + 1] = ARGV[i + 1]
    end
  end
  for i = 1, #changed, 2000 do
    redis.call('HSET', key, unpack(changed, i, math.min(i + 1999, #changed)))
  end
  if ARGV[1] ~= '' then redis.call('PEXPIRE', key, ARGV[1]) end
  qlog(entries, ARGV[1] ~= '' or #before == 0)
  return 0
end
for i = 2, #ARGV, 2 do
  local was = old[ARGV[i]]
  if was ~= ARGV[i + 1] then entries[#entries + 1] = qentry(ARGV[i], was or false, ARGV[i + 1]) end
  old[ARGV[i]] = nil
end
for i = 1, #before, 2 do
  if old[before[i]] then entries[#entries + 1] = qentry(before[i], before[i + 1], false) end
end
local pttl = redis.call('PTTL', key)
redis.call('DEL', key)  -- written anew, so that a small hash reads back in the new order
for i = 2, #ARGV, 2000 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 1999, #ARGV)))
end
if #ARGV > 1 then
  if ARGV[1] ~= '' then redis.call('PEXPIRE', key, ARGV[1])
  elseif pttl > 0 then redis.call('PEXPIRE', key, pttl) end
end
qlog(entries, true)
return 0
"""
)
"""ARGV: ttl_ms or '', then field, value pairs (none: the state is removed).

Makes the state exactly the given pairs in one step, without a transaction's
lock; without a new TTL the state keeps the expiry it had, as a transaction
does. A state with other keys, or a small one (a listpack, which keeps an
order) with the same keys in another order, is written anew, so that its keys
read back in the given order; otherwise (a dialog's next step, or a big hash,
which keeps no order) only the changed values are written.
"""

SNAPSHOT = """
return {redis.call('HGETALL', KEYS[1]), redis.call('HGET', KEYS[4], 'rev') or '0'}
"""
"""The state and its revision, read together (one script: atomic)."""

ACQUIRE = """
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('HGETALL', KEYS[1])}
end
return {0, redis.call('PTTL', KEYS[2])}
"""
"""KEYS: data, lock. ARGV: token, lease_ms.

Takes the state's lock and reads the state in one step: ``{1, flat}``, or
``{0, lock_pttl}`` while another transaction holds the lock.
"""

COMMIT_DONE, COMMIT_LEASE_LOST, COMMIT_STATE_GONE = 1, -1, -2
"""COMMIT's replies: written; the lease expired (nothing written); the state is
gone since ACQUIRE, by expiry or another tool (nothing written, the lock kept)."""

COMMIT = (
    (
        _LOG
        + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return COMMIT_LEASE_LOST end
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return COMMIT_STATE_GONE end
local removed = tonumber(ARGV[4])
local entries = {}
for i = 5 + removed, #ARGV, 2 do
  entries[#entries + 1] = qentry(ARGV[i], redis.call('HGET', KEYS[1], ARGV[i]), ARGV[i + 1])
end
for i = 5, 4 + removed do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if old then entries[#entries + 1] = qentry(ARGV[i], old, false) end
end
for i = 5, 4 + removed, 1000 do
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 999, 4 + removed)))
end
for i = 5 + removed, #ARGV, 2000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 1999, #ARGV)))
end
if ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
redis.call('DEL', KEYS[2])
qlog(entries, true)
return COMMIT_DONE
"""
    )
    .replace("COMMIT_DONE", str(COMMIT_DONE))
    .replace("COMMIT_LEASE_LOST", str(COMMIT_LEASE_LOST))
    .replace("COMMIT_STATE_GONE", str(COMMIT_STATE_GONE))
)
"""KEYS: data, lock, log, counter. ARGV: token, ttl_ms or '', '1' if ACQUIRE read
any field, n, removed fields, changed pairs.

Applies the difference between the document read by ACQUIRE and the new one,
if the lock is still ours; otherwise (LEASE_LOST: other writers may have come
in) writes nothing. STATE_GONE, nothing written either: the state expired (or
another tool deleted it) since ACQUIRE, so the difference means nothing; the
client sends the whole document instead, or, when there is nothing to write,
just gives the lock back. Plain writes wait while the lock exists, so holding
the lock means nothing else changed the state; only the changed fields are
sent and written, and the TTL is kept when no new one is given.
"""

RELEASE = """
if redis.call('GET', KEYS[2]) == ARGV[1] then return redis.call('DEL', KEYS[2]) end
return 0
"""
"""KEYS: data, lock. ARGV: token. Gives the lock up if it is still ours."""
