"""The Redis layout, its URL options and its Lua scripts (pure; no redis import).

Layout (stable; other tools may read it)::

    <prefix>:{<name>}            HASH, field = key, value = JSON text (unscoped state)
    <prefix>:{<name>:<scope>}    HASH, the same for a scoped state
    <key>:lock                   STRING, a token, while transaction()/modify() runs;
                                 plain writes wait while it exists

The braces are a Cluster hash tag: a state's data and lock keys share a slot,
so every script touches one slot and never fails with CROSSSLOT. A name never
contains ``:`` and a scope never contains a brace, so the key is unambiguous.
Expiry is the key's own TTL (PEXPIRE), set in the same script as the write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from ._errors import ConfigError
from ._keys import StateKey
from ._urls import redact

_PREFIX = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


@dataclass(frozen=True)
class RedisOptions:
    """What a Redis URL says beyond what redis-py parses itself."""

    client_url: str
    """The URL handed to redis-py (our own options removed, cluster scheme mapped)."""
    cluster: bool
    prefix: str = "qstate"
    timeout: float = 5.0
    """Socket connect/read timeout: the bound on any one operation during an outage."""
    lease: float = 10.0
    """How long a transaction()/modify() lock lives if its holder dies."""
    lock_wait: float = 15.0
    """How long a write waits for a transaction's lock (longer than the lease)."""


def parse_url(url: str) -> RedisOptions:
    """Split a Redis URL into redis-py's part and qstate's options."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"not a Redis URL: {redact(url)!r}; use redis://host:6379/0")
    scheme = scheme.lower()
    cluster = scheme in CLUSTER_SCHEMES
    client_scheme = CLUSTER_SCHEMES.get(scheme, scheme)
    base, _, query = rest.partition("?")
    passthrough = []
    found: dict[str, float | str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "prefix":
            if not _PREFIX.fullmatch(value):
                raise ConfigError(f"prefix {value!r}: use 1-64 characters from A-Z a-z 0-9 _ . -")
            found[name] = value
        elif name in ("timeout", "lease", "lock_wait"):
            try:
                seconds = float(value)
            except ValueError:
                raise ConfigError(f"{name} must be a number of seconds, not {value!r}") from None
            if not 0 < seconds <= 3600:
                raise ConfigError(f"{name} must be between 0 and 3600 seconds")
            found[name] = seconds
        else:
            passthrough.append((name, value))
    client_url = f"{client_scheme}://{base}"
    if passthrough:
        client_url += "?" + urlencode(passthrough)
    return RedisOptions(client_url, cluster, **found)  # type: ignore[arg-type]


def data_key(prefix: str, key: StateKey) -> str:
    """The HASH holding a state."""
    name, scope = key
    return f"{prefix}:{{{name}:{scope}}}" if scope else f"{prefix}:{{{name}}}"


def lock_key(data: str) -> str:
    """The lock of a state, in the same Cluster slot as its data."""
    return data + ":lock"


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
# Every write script takes KEYS = {data, lock}. A plain write refuses to run
# while a transaction holds the lock (the client waits and retries), so plain
# writes never slip between a transaction's read and its commit: the same
# guarantee the memory and file backends give. Arguments are chunked in
# HSET/HDEL calls because Lua's unpack() has a stack limit.

_UNLESS_LOCKED = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('QSTATE_LOCKED ' .. redis.call('PTTL', KEYS[2]))
end
"""

SET = _UNLESS_LOCKED + "return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])"
"""ARGV: field, value. The hottest write, kept as short as a script can be."""

UPDATE = (
    _UNLESS_LOCKED
    + """
local key = KEYS[1]
for i = 3, #ARGV, 2000 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 1999, #ARGV)))
end
if ARGV[1] ~= '' then redis.call('PEXPIRE', key, ARGV[1]) end
if ARGV[2] == '1' then return redis.call('HGETALL', key) end
return 0
"""
)
"""ARGV: ttl_ms or '', '1' to return the state, then field, value pairs."""

DELETE = (
    _UNLESS_LOCKED
    + """
local removed = 0
for i = 2, #ARGV, 1000 do
  removed = removed + redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if removed > 0 and ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return removed
"""
)
"""ARGV: ttl_ms or '', then the fields. Returns how many existed."""

CLEAR = _UNLESS_LOCKED + "return redis.call('DEL', KEYS[1])"
"""Returns 1 if the state existed."""

INCR = (
    _UNLESS_LOCKED
    + """
local ttl = ARGV[3]
local is_float = string.find(ARGV[2], '[.eE]') ~= nil
if not is_float then
  -- the common case, an integer on an integer (or a missing key): HINCRBY does
  -- it all; it refuses anything else (a float, a string, null), handled below
  local v = redis.pcall('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
  if type(v) == 'number' then
    if v > 9007199254740991 or v < -9007199254740991 then
      redis.call('HINCRBY', KEYS[1], ARGV[1], -tonumber(ARGV[2]))  -- undo, unseen
      return redis.error_reply('QSTATE_RANGE')
    end
    if ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
    return v
  end
end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local n = 0
if cur and cur ~= 'null' then
  if string.match(cur, '^%-?%d+$') then
    n = tonumber(cur)
  elseif string.match(cur, '^%-?%d+%.%d+$')
      or string.match(cur, '^%-?%d+%.?%d*[eE][%+%-]?%d+$') then
    n = tonumber(cur)
    is_float = true
  else
    return redis.error_reply('QSTATE_NOT_A_NUMBER ' .. string.sub(cur, 1, 1))
  end
end
local r = n + tonumber(ARGV[2])
local text
if is_float then
  if r ~= r or r == math.huge or r == -math.huge then
    return redis.error_reply('QSTATE_OVERFLOW')
  end
  text = string.format('%.17g', r)
  if not string.find(text, '[%.eEn]') then text = text .. '.0' end
else
  if r > 9007199254740991 or r < -9007199254740991 then
    return redis.error_reply('QSTATE_RANGE')
  end
  text = string.format('%.0f', r)
end
redis.call('HSET', KEYS[1], ARGV[1], text)
if ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return text
"""
)
"""ARGV: field, amount (JSON text: a float has a '.' or an exponent), then
ttl_ms if the state expires. Every argument sent costs the client time, so
nothing that can be derived is sent.

Returns the new value: an integer reply for integers (exact below 2**53), else
JSON text; a float result is printed with 17 significant digits, which reads
back as the same double, with '.0' added so that it stays a float.
"""

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

COMMIT = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local removed = tonumber(ARGV[3])
for i = 4, 3 + removed, 1000 do
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 999, 3 + removed)))
end
for i = 4 + removed, #ARGV, 2000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 1999, #ARGV)))
end
if ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
redis.call('DEL', KEYS[2])
return 1
"""
"""KEYS: data, lock. ARGV: token, ttl_ms or '', n, n removed fields, changed pairs.

Applies the difference between the document read by ACQUIRE and the new one,
if the lock is still ours; otherwise (-1: the lease expired, and other writers
may have come in) writes nothing. Plain writes wait while the lock exists, so
holding the lock means nothing else changed the state; only the changed fields
are sent and written, and the TTL is kept when no new one is given.
"""

RELEASE = """
if redis.call('GET', KEYS[2]) == ARGV[1] then return redis.call('DEL', KEYS[2]) end
return 0
"""
"""KEYS: data, lock. ARGV: token. Gives the lock up if it is still ours."""
